"""One boot of the proof's guest: QEMU (TCG) in the test namespace with the controller's ENIs as virtio NICs in a
chosen PCI order, the root disk on NVMe (as on Nitro), EC2's SMBIOS identity, and two serial ports (console, the
guest probe's reports). `-no-reboot` makes a guest reboot end the process, so every boot is one `Boot`."""

from __future__ import annotations

import json
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.boot import network, seed
from tests.imds.metadata import Instance

PROBE_PREFIX = "OSA-PROBE "
FIRST_SLOT = 0x10
CMDLINE = "root=LABEL=root ro console=ttyS0,115200 earlyprintk=ttyS0,115200 consoleblank=0"


@dataclass
class Boot:
    name: str
    instance: Instance
    permuted: bool
    image_dir: Path
    disk: Path
    run_dir: Path
    memory_mib: int = 2048
    process: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    ended: float = 0.0
    peak_rss_kib: int = 0
    slots: dict[str, str] = field(default_factory=dict)

    @property
    def console(self) -> Path:
        return self.run_dir / f"{self.name}.console.log"

    @property
    def probe_log(self) -> Path:
        return self.run_dir / f"{self.name}.probe.log"

    @property
    def qmp(self) -> Path:
        return self.run_dir / f"{self.name}.qmp.sock"

    def command(self) -> list[str]:
        cmd = [
            "qemu-system-x86_64", "-machine", "pc,accel=tcg", "-smp", "2", "-m", str(self.memory_mib),
            "-nodefaults", "-display", "none", "-no-reboot", "-rtc", "base=utc",
            "-kernel", str(self.image_dir / "vmlinuz"), "-initrd", str(self.image_dir / "initrd.img"),
            "-append", CMDLINE,
            "-drive", f"file={self.disk},if=none,id=root,format=raw,cache=writeback",
            "-device", f"nvme,serial=vol{self.instance.instance_id[2:]},drive=root",
            "-smbios", seed.smbios_system(self.instance),
            "-serial", f"file:{self.console}", "-serial", f"file:{self.probe_log}",
            "-qmp", f"unix:{self.qmp},server=on,wait=off",
        ]
        for slot, eni in enumerate(seed.nic_order(self.instance, self.permuted), start=FIRST_SLOT):
            index = eni.device_number
            self.slots[eni.mac] = f"0x{slot:02x}"
            cmd += ["-netdev", f"tap,id=n{index},ifname={network.tap_name(index)},script=no,downscript=no",
                    "-device", f"virtio-net-pci,netdev=n{index},mac={eni.mac},addr=0x{slot:02x}"]
        return cmd

    def start(self) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        for path in (self.console, self.probe_log, self.qmp):
            path.unlink(missing_ok=True)
        log = open(self.run_dir / f"{self.name}.qemu.log", "wb")  # noqa: SIM115 - held by the child
        self.started = time.time()
        self.process = subprocess.Popen(["ip", "netns", "exec", network.NS, *self.command()],
                                        stdout=log, stderr=subprocess.STDOUT)

    def alive(self) -> bool:
        self._sample_rss()
        return self.process is not None and self.process.poll() is None

    def _sample_rss(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        try:
            status = Path(f"/proc/{self.process.pid}/status").read_text()
        except OSError:
            return
        for line in status.splitlines():
            if line.startswith("VmHWM:"):
                self.peak_rss_kib = max(self.peak_rss_kib, int(line.split()[1]))

    def reports(self) -> list[dict[str, object]]:
        if not self.probe_log.exists():
            return []
        # Only finished lines: the guest may be writing the last one right now.
        lines = self.probe_log.read_text(errors="replace").replace("\r", "").split("\n")[:-1]
        found = []
        for line in lines:
            if line.startswith(PROBE_PREFIX):
                try:
                    found.append(json.loads(line[len(PROBE_PREFIX):]))
                except json.JSONDecodeError:
                    continue  # a line garbled on the serial port: the report is missing, and its check says so
        return found

    def report(self, mode: str) -> dict[str, object] | None:
        found = [r for r in self.reports() if r.get("mode") == mode]
        return found[-1] if found else None

    def wait(self, until: str, timeout: float) -> bool:
        """Until the guest has reported `until` ("up") or QEMU has exited ("exit"); False on timeout."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            running = self.alive()
            if until == "exit" and not running:
                self.ended = self.ended or time.time()
                return True
            if until != "exit" and (self.report(until) or not running):
                return self.report(until) is not None
            time.sleep(2)
        return False

    def powerdown(self, timeout: float = 180) -> bool:
        """ACPI power button (what `aws ec2 stop-instances` sends); False if the guest did not power off."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as qmp:
            qmp.connect(str(self.qmp))
            qmp.recv(65536)
            for command in ("qmp_capabilities", "system_powerdown"):
                qmp.sendall(json.dumps({"execute": command}).encode() + b"\n")
                time.sleep(0.5)
                qmp.recv(65536)
        return self.wait("exit", timeout)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)

    def ended_by(self) -> str:
        """What the kernel said last: a reboot request, a power-off, or neither (killed/crashed)."""
        text = self.console.read_text(errors="replace") if self.console.exists() else ""
        tail = text[-4000:]
        if "reboot: Restarting system" in tail:
            return "reboot"
        if "reboot: Power down" in tail:
            return "poweroff"
        return "unknown"
