"""Proofs after the install that no step can give about itself (issue "The AWS network fix"):

- the floating IP reached from the probe side, i.e. from the rig's internet through the internet gateway's 1:1 map
  of its Elastic IP (a node cannot stand outside the VPC);
- a re-run of the network fix that changes nothing (the step's last line says "nothing changed");
- a controller reboot after which the router reaches the probe and the floating IP answers again, with the
  provider interface still on its new MAC and the router's gateway port on the ENI's.

Each adds CHECK entries to report.json like the steps' own.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

from stacks.step_catalog import Step

from . import config, nodes, vpc
from .config import NodeSpec
from .sh import log, run

RunStep = Callable[[Step, NodeSpec], Any]  # runner.run_step_on for one node: a Result with .ok, .tail, .seconds
REBOOT_WAIT = 600  # seconds for the controller's agents to rebuild the router after a reboot
PROVIDER_ENI = "controller:1"


def _check(name: str, passed: bool, detail: str, step: str) -> dict[str, Any]:
    return {
        "name": name,
        "ok": passed,
        "status": "ok" if passed else "fail",
        "detail": detail,
        "node": "vpc" if "outside" in name else "controller",
        "step": step,
    }


def _until(seconds: float, probe: Callable[[], bool], pause: float = 5) -> bool:
    deadline = time.monotonic() + seconds
    while True:
        if probe():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(pause)


#: What the rig's test image serves on port 80 (tests/rig/build-test-image.sh)
TEST_IMAGE_PAGE = "rig-test-image-ok"


def floating_ip_from_outside(name: str, step: str, wait: float = 60) -> dict[str, Any]:
    """From the internet namespace, the first floating IP's Elastic IP answers ping (the reply from that EIP) and
    serves the test image's page over TCP. TCP is the stronger half: an ICMP reply passes the controller's
    conntrack as INVALID, untouched, even without the MASQUERADE exemption; a TCP stream does not."""
    eni = vpc.find_eni(vpc.load_eni_table(), PROVIDER_ENI)
    if len(eni["addresses"]) < 2:
        return {
            **_check(name, True, "the provider ENI has no secondary address (no floating IP pool)", step),
            "ok": None,
            "status": "skip",
        }
    private = eni["addresses"][1]
    eip = next(pub for pub, priv in vpc.elastic_ip_pairs([eni]) if priv == private)
    seen = {"ping": "no output", "http": "no answer"}

    def in_internet(*cmd: str) -> str:
        return run(["ip", "netns", "exec", config.NS_INTERNET, *cmd], check=False).stdout.strip()

    def answered() -> bool:
        ping = in_internet("ping", "-c", "3", "-W", "2", eip)
        seen["ping"] = ping.splitlines()[-1] if ping else "no output"
        page = in_internet("curl", "-s", "--max-time", "10", f"http://{eip}/")
        seen["http"] = page or "no answer"
        return f"from {eip}:" in ping and page == TEST_IMAGE_PAGE

    passed = _until(wait, answered)
    return _check(
        name,
        passed,
        f"{config.NS_INTERNET} ({config.PROBE_IP}) -> {eip} (EIP of floating IP {private} on verify-instance): "
        f"ping {seen['ping']}; HTTP GET / {seen['http']!r}",
        step,
    )


def _node_ok(spec: NodeSpec, script: str) -> bool:
    return nodes.node_run(spec, ["bash", "-c", script], timeout=30).returncode == 0


ROUTER_NS = "ns=$(ip netns list | awk '/^qrouter-/ {print $1; exit}'); [ -n \"$ns\" ] || exit 3; "


def network_fix_rerun(run_step: RunStep, steps: list[Step]) -> tuple[list[Any], list[dict[str, Any]]]:
    step = next(s for s in steps if s.name == "network-fix")
    result = run_step(step, config.node("controller"))
    result.step = "network-fix (re-run)"
    done = [line for line in result.tail if "] done in " in line]
    unchanged = result.ok and bool(done) and done[-1].endswith("nothing changed")
    detail = done[-1].split("] ", 1)[-1] if done else f"no 'done' line (exit {result.rc})"
    return [result], [_check("network-fix-rerun-unchanged", unchanged, detail, result.step)]


def controller_reboot() -> list[dict[str, Any]]:
    spec = config.node("controller")
    step = "controller reboot"
    t0 = time.monotonic()
    nodes.reboot(spec)
    router_up = _until(
        REBOOT_WAIT,
        lambda: _node_ok(spec, ROUTER_NS + f'ip netns exec "$ns" ping -c 1 -W 2 {config.PROBE_IP} >/dev/null'),
    )
    took = round(time.monotonic() - t0)
    checks = [
        _check(
            "after-reboot-router-ping-probe",
            router_up,
            f"router namespace reaches {config.PROBE_IP} {took}s after 'systemctl reboot'"
            if router_up
            else f"router namespace cannot reach {config.PROBE_IP} {REBOOT_WAIT}s after boot",
            step,
        )
    ]
    eni_mac = spec.enis[1].mac
    macs = nodes.node_run(
        spec,
        [
            "bash",
            "-c",
            ROUTER_NS + "cat /sys/class/net/eth1/address; "
            "ip netns exec \"$ns\" sh -c 'cat /sys/class/net/qg-*/address'",
        ],
        timeout=30,
    )
    eth1_mac, qg_mac = ([*macs.stdout.split(), "", ""])[:2]
    checks.append(
        _check(
            "after-reboot-macs",
            eth1_mac not in ("", eni_mac) and qg_mac == eni_mac,
            f"eth1 {eth1_mac or '?'} (ENI MAC {eni_mac} freed), router gateway port {qg_mac or '?'}",
            step,
        )
    )
    checks.append(floating_ip_from_outside("after-reboot-floating-ip-from-outside", step, wait=REBOOT_WAIT / 2))
    return checks


def after_install(run_step: RunStep, steps: list[Step]) -> tuple[list[Any], list[dict[str, Any]]]:
    """All proofs, in order; RIG_NO_REBOOT=1 leaves out the reboot (minutes) when iterating on a step."""
    log("proofs from outside the nodes: floating IP from the probe side, network-fix re-run, controller reboot")
    checks = [floating_ip_from_outside("floating-ip-from-outside", "verify")]
    results, rerun_checks = network_fix_rerun(run_step, steps)
    checks += rerun_checks
    if os.environ.get("RIG_NO_REBOOT") == "1":
        log("RIG_NO_REBOOT=1: controller reboot proof left out")
    else:
        checks += controller_reboot()
    return results, checks
