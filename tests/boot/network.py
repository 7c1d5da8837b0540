"""The boot proof's emulated VPC: one network namespace holding subnet A and B bridges, the guest's tap NICs, the
VPC's DHCP (dnsmasq, fixed leases by MAC), IMDSv2 on 169.254.169.254, the SSM agent stand-in over HTTP and the apt
relay on the service address. Nothing in it is bridged to a real interface and it has no route off the machine.

The VPC's source check is an nft bridge rule per tap: a frame leaving an ENI with another address is dropped and
counted, which is what makes the policy-routing proof mean something.
"""

from __future__ import annotations

import ipaddress
import json
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.boot import seed
from tests.imds.metadata import Instance, document

NS = "osa-boot"
BRIDGES = {"a": "osabrA", "b": "osabrB"}
#: An address outside both subnets, as a client on the internet would be: the proof pings pub0 from it.
OUTSIDE_IP = "198.51.100.7"
NFT_TABLE = "osaboot"


def run(cmd: list[str], *, check: bool = True, ns: bool = False, **kw: object) -> subprocess.CompletedProcess[str]:
    full = ["ip", "netns", "exec", NS, *cmd] if ns else cmd
    return subprocess.run(full, check=check, text=True, capture_output=True, **kw)  # type: ignore[call-overload]


def tap_name(eni_index: int) -> str:
    return f"osatap{eni_index}"


@dataclass
class TestNetwork:
    instance: Instance
    run_dir: Path
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def up(self, agent_deb: Path, host_cache: str) -> None:
        self.down()
        run(["ip", "netns", "add", NS])
        steps = [
            ["ip", "link", "set", "lo", "up"],
            ["ip", "addr", "add", "169.254.169.254/32", "dev", "lo"],
            ["ip", "addr", "add", f"{OUTSIDE_IP}/32", "dev", "lo"],
            ["sysctl", "-qw", "net.ipv4.ip_forward=1"],
        ]
        a, b = self.instance.enis[0].subnet_cidr, self.instance.enis[2].subnet_cidr
        for key, cidr, extra in (("a", a, [seed.SERVICE_IP]), ("b", b, [])):
            bridge = BRIDGES[key]
            steps += [["ip", "link", "add", bridge, "type", "bridge", "stp_state", "0", "forward_delay", "0"],
                      ["ip", "addr", "add", f"{seed.gateway(cidr)}/{cidr.split('/')[1]}", "dev", bridge],
                      *(["ip", "addr", "add", f"{ip}/{cidr.split('/')[1]}", "dev", bridge] for ip in extra),
                      ["ip", "link", "set", bridge, "up"]]
        for eni in self.instance.enis:
            tap = tap_name(eni.device_number)
            bridge = BRIDGES["a" if eni.subnet_cidr == a else "b"]
            steps += [["ip", "tuntap", "add", "dev", tap, "mode", "tap"],
                      ["ip", "link", "set", tap, "master", bridge, "up"]]
        for step in steps:
            run(step, ns=True)
        run(["nft", "-f", "-"], ns=True, input=self._source_check())
        self._start_services(agent_deb, host_cache)

    def _source_check(self) -> str:
        rules = []
        for eni in self.instance.enis:
            allowed = ", ".join(("0.0.0.0", *eni.local_ipv4s))
            tap = tap_name(eni.device_number)
            rules.append(f'iifname "{tap}" ether type ip ip saddr != {{ {allowed} }} counter drop')
            rules.append(f'iifname "{tap}" ip protocol icmp icmp type echo-reply counter accept')
        body = "\n    ".join(rules)
        return (f"table bridge {NFT_TABLE} {{\n  chain forward {{\n    type filter hook forward priority 0;\n"
                f"    {body}\n  }}\n  chain input {{\n    type filter hook input priority 0;\n    {body}\n  }}\n}}\n")

    def _start_services(self, agent_deb: Path, host_cache: str) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        logs = self.run_dir / "logs"
        logs.mkdir(exist_ok=True)
        imds_data = self.run_dir / "imds.json"
        imds_data.write_text(json.dumps({"*": document(self.instance)}))
        www = agent_deb.parent
        sock = self.run_dir / "apt-cache.sock"
        py = sys.executable
        dnsmasq = ["dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null", "--port=0", "--bind-interfaces",
                   f"--interface={BRIDGES['a']}", f"--interface={BRIDGES['b']}", "--log-dhcp",
                   f"--dhcp-leasefile={self.run_dir / 'dnsmasq.leases'}", f"--pid-file={self.run_dir / 'dnsmasq.pid'}"]
        for key, cidr in (("a", self.instance.enis[0].subnet_cidr), ("b", self.instance.enis[2].subnet_cidr)):
            net = cidr.split("/")[0]
            dnsmasq += [f"--dhcp-range=set:{key},{net},static,{_netmask(cidr)},3600",
                        f"--dhcp-option=tag:{key},option:router,{seed.gateway(cidr)}"]
        for lease in seed.dhcp_leases(self.instance):
            dnsmasq.append(f"--dhcp-host={lease.mac},{lease.address}")
        commands = {
            "dnsmasq": ["ip", "netns", "exec", NS, *dnsmasq],
            "imds": ["ip", "netns", "exec", NS, py, "-m", "tests.imds", "--data", str(imds_data),
                     "--bind", "169.254.169.254", "--port", "80"],
            "agent-http": ["ip", "netns", "exec", NS, py, "-m", "http.server", str(seed.AGENT_PORT),
                           "--bind", seed.SERVICE_IP, "--directory", str(www)],
            "relay-host": [py, "-m", "tests.boot.relay", f"unix:{sock}", f"tcp:{host_cache}"],
            "relay-ns": ["ip", "netns", "exec", NS, py, "-m", "tests.boot.relay",
                         f"tcp:{seed.SERVICE_IP}:3142", f"unix:{sock}"],
        }
        for name, cmd in commands.items():
            out = open(logs / f"{name}.log", "wb")  # noqa: SIM115 - the child holds it for its lifetime
            self.processes.append(subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT))
        probes = [["curl", "-sf", "-o", "/dev/null", "-X", "PUT", "-H", "X-aws-ec2-metadata-token-ttl-seconds: 60",
                   "http://169.254.169.254/latest/api/token"],
                  ["curl", "-sf", "-o", "/dev/null", seed.AGENT_URL],
                  ["curl", "-sf", "-o", "/dev/null", "-x", seed.APT_PROXY, "http://deb.debian.org/debian/dists/bookworm/Release"]]
        deadline = time.monotonic() + 30
        while probes and time.monotonic() < deadline:
            dead = [name for (name, _), p in zip(commands.items(), self.processes, strict=True) if p.poll() is not None]
            if dead:
                raise RuntimeError(f"test network services exited: {dead}; see {logs}")
            if run(probes[0], ns=True, check=False).returncode == 0:
                probes.pop(0)
            else:
                time.sleep(0.5)
        if probes:
            raise RuntimeError(f"test network service not answering: {probes[0][-1]}; see {logs}")

    def source_check_counters(self) -> str:
        return run(["nft", "list", "table", "bridge", NFT_TABLE], ns=True, check=False).stdout

    def ping_from_outside(self, address: str) -> subprocess.CompletedProcess[str]:
        return run(["ping", "-c", "3", "-W", "2", "-I", OUTSIDE_IP, address], ns=True, check=False)

    def down(self) -> None:
        for p in self.processes:
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    p.kill()
        self.processes.clear()
        if run(["ip", "netns", "list"]).stdout.split().count(NS):
            run(["ip", "netns", "delete", NS], check=False)


def _netmask(cidr: str) -> str:
    return str(ipaddress.ip_network(cidr).netmask)
