"""The boot proof: a real Debian 12 kernel with systemd, udev and cloud-init boots the controller three times in
QEMU (TCG) with the real rendered userdata served by the emulated IMDSv2, and the checks in checks.py judge it.

boot1: first boot, NICs in attachment order: cloud-init (Ec2) runs the multipart; its cloud-config reboots.
boot2: the boot after that reboot, same order: pinned names, networkd, policy routing; pinged from outside.
boot3: a later boot with the NICs rotated across PCI slots: same names, nothing rewritten.
Report: build/boot/report.json (checks, figures); logs and serial output under build/boot/run/.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import time
from dataclasses import asdict
from pathlib import Path

from stacks import step_catalog
from stacks.config import load_config
from tests.boot import agent_standin, checks, network, seed
from tests.boot.qemu import Boot
from tests.imds.metadata import Instance

REPO = Path(__file__).resolve().parents[2]
BUILD = REPO / "build" / "boot"
IMAGE_DIR = BUILD / "image"
RUN_DIR = BUILD / "run"
REPORT = BUILD / "report.json"
RIG_CACHE = "127.0.0.1:3142"  # the rig's apt-cacher-ng (tests/rig/host.py), when it runs
# Our own when the rig's is down: another port, so a rig started meanwhile can still bind its own.
OWN_CACHE = "127.0.0.1:3143"
FIRST_BOOT_TIMEOUT = 3600  # the controller's prefetch under TCG dominates
BOOT_TIMEOUT = 1200


def log(message: str) -> None:
    print(f"[boot-proof {time.strftime('%H:%M:%S')}] {message}", flush=True)


def ensure_host() -> None:
    if os.geteuid() != 0:
        raise SystemExit("the boot proof needs root (network namespace, taps)")
    missing = [tool for tool in ("qemu-system-x86_64", "dnsmasq", "debootstrap", "dpkg-deb", "sfdisk", "nft")
               if not shutil.which(tool)]
    if missing:
        log(f"installing {missing} (Debian packages qemu-system-x86, dnsmasq-base)")
        subprocess.run(["apt-get", "install", "-y", "-q", "--no-install-recommends", "qemu-system-x86",
                        "dnsmasq-base", "debootstrap", "nftables", "fdisk"], check=True,
                       env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))


def _cache_answers(address: str) -> bool:
    return subprocess.run(["curl", "-sf", "-o", "/dev/null", f"http://{address}/acng-report.html"]).returncode == 0


def ensure_cache() -> tuple[str, int | None]:
    """The rig's apt cache when it runs; else one of our own on loopback (same store). Returns (address, our pid)."""
    if _cache_answers(RIG_CACHE):
        return RIG_CACHE, None
    host, port = OWN_CACHE.split(":")
    conf = BUILD / "acng"
    conf.mkdir(parents=True, exist_ok=True)
    pidfile = conf / "acng.pid"
    (conf / "acng.conf").write_text(
        "CacheDir: /var/cache/apt-cacher-ng\n"
        f"LogDir: {conf}\nSupportDir: /usr/lib/apt-cacher-ng\nPort: {port}\n"
        f"BindAddress: {host}\nPidFile: {pidfile}\nExThreshold: 4\nReportPage: acng-report.html\n")
    subprocess.run(["/usr/sbin/apt-cacher-ng", "-c", str(conf), "ForeGround=0"], check=True)
    for _ in range(100):
        if _cache_answers(OWN_CACHE) and pidfile.exists():
            log(f"started apt-cacher-ng on {OWN_CACHE} (the rig's is not running)")
            return OWN_CACHE, int(pidfile.read_text().strip())
        time.sleep(0.1)
    raise SystemExit(f"apt-cacher-ng did not answer on {OWN_CACHE}; see {conf}")


def ensure_image(rebuild: bool, cache: str) -> float | None:
    """Builds the disk once (cached); returns the build's seconds, or None when cached."""
    if (IMAGE_DIR / ".complete").exists() and not rebuild:
        return None
    log("building the guest image (debootstrap bookworm + cloud kernel + cloud-init, through the apt cache)")
    t0 = time.monotonic()
    subprocess.run(["bash", str(Path(__file__).parent / "build-image.sh"), str(IMAGE_DIR), f"http://{cache}",
                    seed.APT_PROXY], check=True)
    return round(time.monotonic() - t0, 1)


def required_facts() -> set[str]:
    """Every fact a step that runs on the controller requires (require_vars in its composed script)."""
    names: set[str] = set()
    for step in step_catalog.load_steps():
        if "controller" in step.roles:
            script = step_catalog.compose_script(step)
            for call in re.findall(r"^[^#\n]*\brequire_vars ([A-Z0-9_ ]+)", script, re.M):
                names.update(call.split())
    return names


def boot(name: str, instance: Instance, permuted: bool, disk: Path) -> Boot:
    b = Boot(name, instance, permuted, IMAGE_DIR, disk, RUN_DIR)
    log(f"{name}: QEMU (TCG) with NICs in {'rotated' if permuted else 'attachment'} PCI order")
    b.start()
    return b


def run_proof(rebuild_image: bool = False) -> int:
    ensure_host()
    # A stop (Ctrl-C, also when started in the background, or SIGTERM) must still take the namespace down.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    cache, cache_pid = ensure_cache()
    try:
        return _run(rebuild_image, cache)
    finally:
        if cache_pid:
            os.kill(cache_pid, signal.SIGTERM)


def _run(rebuild_image: bool, cache: str) -> int:
    build_s = ensure_image(rebuild_image, cache)
    if RUN_DIR.exists():
        shutil.rmtree(RUN_DIR)
    RUN_DIR.mkdir(parents=True)
    instance = seed.controller_instance(load_config({}))
    disk = RUN_DIR / "disk.img"
    subprocess.run(["cp", "--sparse=always", str(IMAGE_DIR / "disk.img"), str(disk)], check=True)
    deb = agent_standin.build(RUN_DIR / "www" / "amazon-ssm-agent.deb")
    net = network.TestNetwork(instance, RUN_DIR)
    boots: dict[str, Boot] = {}
    figures: dict[str, object] = {"image_build_s": build_s}
    ping = subprocess.CompletedProcess[str]([], 1, "", "not run")
    try:
        net.up(deb, cache)
        b1 = boots["boot1"] = boot("boot1", instance, False, disk)
        if not b1.wait("exit", FIRST_BOOT_TIMEOUT):
            raise RuntimeError(f"boot1 did not end within {FIRST_BOOT_TIMEOUT} s; see {b1.console}")
        figures["boot1_to_reboot_s"] = round(b1.ended - b1.started, 1)
        log(f"boot1 ended ({b1.ended_by()}) after {figures['boot1_to_reboot_s']} s")
        if "Failed to run module scripts-user" in b1.console.read_text(errors="replace"):
            raise RuntimeError(f"the userdata script failed in boot1; see {b1.console}")
        for name, permuted in (("boot2", False), ("boot3", True)):
            b = boots[name] = boot(name, instance, permuted, disk)
            if not b.wait("up", BOOT_TIMEOUT):
                raise RuntimeError(f"{name}: no report within {BOOT_TIMEOUT} s (ended: {b.ended_by()}); see {b.console}")
            figures[f"{name}_to_report_s"] = round(time.time() - b.started, 1)
            log(f"{name}: up after {figures[f'{name}_to_report_s']} s")
            if name == "boot2":
                ping = net.ping_from_outside(instance.enis[2].local_ipv4s[0])
                log(f"ping pub0 from outside: rc {ping.returncode}")
            time.sleep(15)  # a node that would reboot again does it now
            if not b.alive():
                log(f"{name}: QEMU exited by itself ({b.ended_by()})")
            elif not b.powerdown():
                log(f"{name}: no power-off after the ACPI button; stopping QEMU")
                b.kill()
            log(f"{name}: ended ({b.ended_by()})")
        counters = net.source_check_counters()
    finally:
        for b in boots.values():
            b.kill()
        net.down()
    return _judge(instance, boots, figures, ping, counters)


def _judge(instance: Instance, boots: dict[str, Boot], figures: dict[str, object],
           ping: subprocess.CompletedProcess[str], counters: str) -> int:
    ups = {name: b.report("up") for name, b in boots.items() if name != "boot1"}
    ups = {k: v for k, v in ups.items() if v}
    downs = {name: b.report("down") for name, b in boots.items()}
    downs = {k: v for k, v in downs.items() if v}
    reports = [r for b in boots.values() for r in b.reports()]
    boot1_id = (downs.get("boot1") or {}).get("boot_id", "")
    boot2 = ups.get("boot2", {})
    found = [
        checks.check_hostname_first(boot2, int(boots["boot1"].started * 1e9)),
        checks.check_names(instance, ups),
        checks.check_facts(instance, boot2, required_facts()),
        checks.check_policy_routing(instance, boot2, ping.returncode == 0, counters),
        checks.check_cloud_init_network(ups),
        checks.check_one_reboot({n: b.ended_by() for n, b in boots.items()}, reports),
        checks.check_unchanged(downs),
        checks.check_agent(ups),
        checks.check_agent_not_before_reboot(reports, boot1_id),
    ]
    figures["qemu_peak_rss_mib"] = {n: round(b.peak_rss_kib / 1024) for n, b in boots.items()}
    figures["guest_memory"] = boot2.get("mem_kib")
    figures["guest_uptime_at_report_s"] = {n: up.get("uptime_s") for n, up in ups.items()}
    figures["boot1_guest_uptime_at_reboot_s"] = (downs.get("boot1") or {}).get("uptime_s")
    result = {"checks": [asdict(c) for c in found], "figures": figures, "ping_from_outside": ping.stdout[-400:],
              "ended_by": {n: b.ended_by() for n, b in boots.items()}}
    REPORT.write_text(json.dumps(result, indent=2) + "\n")
    for c in found:
        print(f"{'ok  ' if c.ok else 'FAIL'} {c.name}\n     {c.detail[:600]}")
    print(json.dumps(figures, indent=2))
    log(f"report: {REPORT}")
    return 0 if all(c.ok for c in found) else 1
