"""What the VPC serves each instance, run in the VPC router's namespace: IMDSv2 on 169.254.169.254 (each node sees
its own instance, userdata included: tests/rig/instances.py) and DHCP with a fixed lease per ENI MAC. The SSM agent
stand-in package lies on the fake internet's web server, reached through the NAT gateway as S3 would be."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

from . import config, instances, state
from .sh import log, pid_alive, pid_cmdline, run

IMDS_IP = "169.254.169.254"
IMDS_DATA = config.BUILD / "imds.json"
DHCP_LEASES = config.BUILD / "run" / "dhcp.leases"
WWW = config.BUILD / "internet-www"
#: What a recorded pid's command line must contain before the rig signals it (teardown too).
SIGNATURES = {"imds": "tests.imds", "dhcp": "dnsmasq", "dns": "dnsmasq"}


def resolver_args() -> list[str]:
    """The VPC's resolver at base + 2 (config.VPC_DNS): it knows one name, PROBE_NAME -> the probe address, and has
    no upstream, so no query ever leaves this machine (others get REFUSED)."""
    return ["dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null", "--no-resolv", "--no-hosts",
            "--bind-interfaces", f"--listen-address={config.VPC_DNS}", "--user=root", "--pid-file=",
            f"--host-record={config.PROBE_NAME},{config.PROBE_IP}", "--log-queries", "--log-facility=-"]


def dnsmasq_args() -> list[str]:
    """The VPC's DHCP: every ENI's MAC gets its primary address; only device index 0 gets a router, as cloud-init
    on the AMI gives the default route to the primary ENI alone."""
    args = ["dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null", "--port=0", "--bind-interfaces",
            "--interface=subA", "--interface=subB", "--dhcp-authoritative", "--user=root", "--pid-file=",
            f"--dhcp-leasefile={DHCP_LEASES}", "--log-dhcp", "--log-facility=-",
            "--dhcp-option=tag:secondary,option:router", "--dhcp-option=option:mtu,9001",
            f"--dhcp-option=option:dns-server,{config.VPC_DNS}"]
    for gateway in (config.GW_A, config.GW_B):
        args.append(f"--dhcp-range={gateway.rsplit('.', 1)[0]}.0,static,255.255.255.0,12h")
    for spec in config.NODES:
        args += [f"--dhcp-host={e.mac},{'' if e.index == 0 else 'set:secondary,'}{e.ip}" for e in spec.enis]
    return args


def _stop(name: str) -> None:
    pid = state.load()["pids"].get(name)
    if pid_alive(pid) and SIGNATURES[name] in pid_cmdline(pid):
        os.kill(pid, signal.SIGTERM)
    state.set_item("pids", name, None)


def _start(name: str, argv: list[str]) -> None:
    logf = open(config.LOGS / f"vpc-{name}.log", "ab")  # noqa: SIM115 (handed to the child)
    proc = subprocess.Popen(["ip", "netns", "exec", config.NS_ROUTER, *argv], cwd=config.REPO,
                            stdin=subprocess.DEVNULL, stdout=logf, stderr=logf, start_new_session=True)
    state.set_item("pids", name, proc.pid)


def ensure() -> None:
    """Start (or, when what they serve changed, restart) the IMDS and DHCP servers; build the agent package."""
    config.LOGS.mkdir(parents=True, exist_ok=True)
    DHCP_LEASES.parent.mkdir(parents=True, exist_ok=True)
    instances.build_agent(WWW)
    run(["ip", "netns", "exec", config.NS_ROUTER, "ip", "addr", "replace", f"{IMDS_IP}/32", "dev", "lo"])
    old = IMDS_DATA.read_text() if IMDS_DATA.exists() else ""
    instances.write_imds_data(IMDS_DATA)
    if IMDS_DATA.read_text() != old or not pid_alive(state.load()["pids"].get("imds")):
        _stop("imds")
        _start("imds", [sys.executable, "-m", "tests.imds", "--data", str(IMDS_DATA), "--bind", IMDS_IP,
                        "--port", "80"])
        log(f"vpc: IMDSv2 on {IMDS_IP} serves {len(config.NODES)} instances with their rendered userdata")
    if not pid_alive(state.load()["pids"].get("dhcp")):
        _start("dhcp", dnsmasq_args())
        log("vpc: DHCP leases by ENI MAC (dnsmasq in the router namespace)")
    run(["ip", "netns", "exec", config.NS_ROUTER, "ip", "addr", "replace", f"{config.VPC_DNS}/32", "dev", "lo"])
    if not pid_alive(state.load()["pids"].get("dns")):
        _start("dns", resolver_args())
        log(f"vpc: resolver {config.VPC_DNS} answers {config.PROBE_NAME} (nothing forwarded)")

