"""Proofs after the install that no step can give about itself (issue "The AWS network fix"):

- the floating IP reached from the probe side, i.e. from the rig's internet through the internet gateway's 1:1 map
  of its Elastic IP (a node cannot stand outside the VPC);
- no file under /etc on any node that holds a secret is readable by others (secret_files.py);
- the library's db_ensure converges on the real MariaDB: lost grants and a rotated password (db_converge.py);
- a re-run of the network fix that changes nothing (the step's last line says "nothing changed");
- a controller reboot after which the router reaches the probe and the floating IP answers again, with the
  provider interface still on its new MAC and the provider bridge's map again naming the router's gateway port;
- a user's own router and a floating IP Neutron picks, reached from the internet namespace (the generalised
  network fix: any pool address on any router);
- an instance directly on the provider network, its own pool address reached from the internet namespace (the
  backhaul to the compute node and the owner map from the DHCP hosts file);
- the APIs as a remote operator sees them: a token from Keystone on the Elastic IP, every public endpoint of its
  catalog https on the Elastic IP and answering there with a certificate the cloud's CA vouches for, noVNC too
  (from the internet namespace: the host never routes it; the CA from the artifact store, as an operator gets it);
- plain http on the Elastic IP: Horizon's address redirects to https, the API ports refuse it;
- the openstack CLI from there, as the README tells an operator to set it up (remote_cli.py);
- Horizon in a real browser from there, over https: admin and demo log in and open the instance list, the network
  topology, volumes and the object store (horizon_browser.py; screenshots in build/rig/browser/).

Each adds CHECK entries to report.json like the steps' own.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from stacks import step_catalog
from stacks.step_catalog import Step

from . import config, db_converge, horizon_browser, nodes, remote_cli, secret_files, vpc
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


def _in_internet(*cmd: str, input: str | None = None) -> str:
    """A command in the rig's internet namespace (where a client in allowed_cidr stands); its stdout."""
    return run(["ip", "netns", "exec", config.NS_INTERNET, *cmd], check=False, input=input).stdout.strip()


def _reached_from_outside(eip: str, wait: float) -> tuple[bool, dict[str, str]]:
    """From the internet namespace, `eip` answers ping (the reply from that address) and serves the test image's
    page over TCP. TCP is the stronger half: an ICMP reply passes the controller's conntrack as INVALID, untouched,
    even without the MASQUERADE exemption; a TCP stream does not."""
    seen = {"ping": "no output", "http": "no answer"}

    def answered() -> bool:
        ping = _in_internet("ping", "-c", "3", "-W", "2", eip)
        seen["ping"] = ping.splitlines()[-1] if ping else "no output"
        page = _in_internet("curl", "-s", "--max-time", "10", f"http://{eip}/")
        seen["http"] = page or "no answer"
        return f"from {eip}:" in ping and page == TEST_IMAGE_PAGE

    return _until(wait, answered), seen


def _elastic_ip_of(private: str) -> str:
    eni = vpc.find_eni(vpc.load_eni_table(), PROVIDER_ENI)
    return next((pub for pub, priv in vpc.elastic_ip_pairs([eni]) if priv == private), "")


def floating_ip_from_outside(name: str, step: str, wait: float = 60) -> dict[str, Any]:
    """The first floating IP (verify-instance's) reached through its Elastic IP from the internet namespace."""
    eni = vpc.find_eni(vpc.load_eni_table(), PROVIDER_ENI)
    if len(eni["addresses"]) < 2:
        return {
            **_check(name, True, "the provider ENI has no secondary address (no floating IP pool)", step),
            "ok": None,
            "status": "skip",
        }
    private = eni["addresses"][1]
    eip = _elastic_ip_of(private)
    passed, seen = _reached_from_outside(eip, wait)
    return _check(
        name,
        passed,
        f"{config.NS_INTERNET} ({config.PROBE_IP}) -> {eip} (EIP of floating IP {private} on verify-instance): "
        f"ping {seen['ping']}; HTTP GET / {seen['http']!r}",
        step,
    )


def _walkthrough(action: str, timeout: float) -> subprocess.CompletedProcess[str]:
    """steps/lib's walkthrough functions on the controller with demo's credentials (demo-openrc, internal
    endpoints), as a user logged in there would type them."""
    lib = step_catalog.library(step_catalog.STEPS_DIR / "lib", ("checks", "walkthrough"))
    script = (f'{lib}\nset -euo pipefail\nOSA_STEP=rig-proof\nload_facts\nmkdir -p "$OSA_RUN"\n'
              f". /root/demo-openrc\n{action}\n")
    return nodes.node_run(config.node("controller"), ["bash", "-s"], input=script, timeout=timeout)


def _walkthrough_from_outside(
    name: str, step: str, up: str, down: str, target: Callable[[list[str]], tuple[str, str]]
) -> dict[str, Any]:
    """`up` (walkthrough.sh's functions, as demo) on the controller; the Elastic IP of the private address `target`
    picks from its last line (with a description) reached from the internet namespace; `down` whatever happened,
    so the pool stays free."""
    result = _walkthrough(up, timeout=1200)
    try:
        last = (result.stdout.strip().splitlines()[-1:] or [""])[0].split()
        try:
            if result.returncode != 0:
                raise ValueError(f"exit {result.returncode}")
            private, described = target(last)
        except ValueError as error:
            tail = " | ".join((result.stdout + result.stderr).strip().splitlines()[-3:])
            return _check(name, False, f"{up} as demo failed ({error}): {tail}", step)
        eip = _elastic_ip_of(private)
        if not eip:
            return _check(name, False, f"{private} has no Elastic IP in the emulated VPC", step)
        passed, seen = _reached_from_outside(eip, 120)
        return _check(
            name,
            passed,
            f"{config.NS_INTERNET} -> {eip} (EIP of {described}): ping {seen['ping']}; HTTP GET / {seen['http']!r}",
            step,
        )
    finally:
        down_result = _walkthrough(down, timeout=600)
        if down_result.returncode != 0:
            log(f"{down} failed: {(down_result.stdout + down_result.stderr).strip()[-400:]}")


def user_floating_ip_from_outside(name: str, step: str) -> dict[str, Any]:
    """The install guide's "Launch an instance" as demo with a router of its own (gateway: a pool address Neutron
    picks) and a floating IP Neutron picks; that floating IP's Elastic IP reached from the internet namespace.
    Everything is removed afterwards, so the pool stays free."""

    def target(fields: list[str]) -> tuple[str, str]:
        fip, addr, router = fields  # ValueError unless three
        return fip, f"{fip}, picked by Neutron, on demo's router {router[:8]} to proof-user-instance {addr}"

    return _walkthrough_from_outside(
        name, step, "walkthrough_up proof-user 172.16.3.0/24", "walkthrough_down proof-user", target
    )


def provider_instance_from_outside(name: str, step: str) -> dict[str, Any]:
    """The install guide's provider-network instance as demo (directly on network provider, on a compute node): its
    pool address's Elastic IP reached from the internet namespace, through the provider ENI, the network fix's owner
    map (the DHCP hosts file) and the backhaul to the compute. Removed afterwards."""

    def target(fields: list[str]) -> tuple[str, str]:
        (addr,) = fields  # ValueError unless one
        return addr, f"{addr}, proof-provider-instance's own address on provider"

    return _walkthrough_from_outside(
        name, step, "provider_up proof-provider", "walkthrough_down proof-provider", target
    )


def public_catalog_problems(catalog: list[dict[str, Any]], elastic_ip: str) -> list[str]:
    """What is wrong with a token's catalog for a client outside the VPC: a service without a public endpoint, or
    one whose public endpoint is not https on the Elastic IP."""
    problems = []
    for service in catalog:
        public = [e["url"] for e in service.get("endpoints", []) if e.get("interface") == "public"]
        if not public:
            problems.append(f"{service.get('type')}: no public endpoint")
        problems += [f"{service.get('type')}: {url}" for url in public
                     if urlsplit(url).hostname != elastic_ip or urlsplit(url).scheme != "https"]  # fmt: skip
    return problems


def _https(*args: str, input: str | None = None) -> str:
    """curl in the internet namespace trusting only the cloud's CA, as an operator with OS_CACERT."""
    return _in_internet("curl", "-s", "--cacert", str(config.PUBLIC_TLS_CA), *args, input=input)


def public_endpoints_from_outside(name: str, step: str) -> dict[str, Any]:
    """From the internet namespace, as a client in allowed_cidr would: admin gets a token from Keystone's public
    endpoint (https on the Elastic IP), every public endpoint in its catalog is https on the Elastic IP, and each
    answers there, as does noVNC's page (any HTTP status from the service; 000 is no answer or a certificate the
    CA does not vouch for, for that name; 502-504 the proxy's, for a service it cannot reach)."""
    eip = config.ELASTIC_IP
    auth = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": "admin", "domain": {"name": "Default"}, "password": nodes.rig_secrets()["ADMIN_PASS"]}}},
        "scope": {"project": {"name": "admin", "domain": {"name": "Default"}}}}}
    reply = _https("--max-time", "30", "-H", "Content-Type: application/json", "--data-binary", "@-",
                   f"https://{eip}:5000/v3/auth/tokens", input=json.dumps(auth))
    try:
        catalog = json.loads(reply)["token"]["catalog"]
    except (ValueError, KeyError, TypeError):
        return _check(name, False, f"no token from https://{eip}:5000/v3 in {config.NS_INTERNET} (CA "
                                   f"{config.PUBLIC_TLS_CA}): {reply[:200]!r}", step)  # fmt: skip
    problems = public_catalog_problems(catalog, eip)
    urls = {s["type"]: e["url"] for s in catalog for e in s.get("endpoints", [])
            if e.get("interface") == "public" and urlsplit(e["url"]).hostname == eip}  # fmt: skip
    urls["console"] = f"https://{eip}:6080/vnc_auto.html"
    answers = {}
    for kind, url in sorted(urls.items()):
        parts = urlsplit(url)
        target = url if kind == "console" else f"{parts.scheme}://{parts.netloc}/"
        answers[kind] = _https("-o", "/dev/null", "-w", "%{http_code}", "--max-time", "15", target)
        if answers[kind] in ("", "000"):
            problems.append(f"{kind}: {target} does not answer with a certificate the CA vouches for")
        elif answers[kind] in ("502", "503", "504"):
            problems.append(f"{kind}: the proxy on {parts.netloc} reaches no service ({answers[kind]})")
    detail = (f"{config.NS_INTERNET} -> https://{eip}:5000/v3: token ok; {len(catalog)} services, public endpoints "
              f"https on {eip}, HTTP " + ", ".join(f"{k} {v}" for k, v in answers.items()))
    if problems:
        detail = "; ".join(problems) + " | " + detail
    return {**_check(name, not problems, detail, step), "node": "vpc"}


def public_http_from_outside(name: str, step: str) -> dict[str, Any]:
    """Plain http on the Elastic IP: Horizon's address redirects to the same page on https, and every API port
    speaks only TLS (Apache answers a plain request with 400, so it never reaches a service)."""
    eip = config.ELASTIC_IP
    redirect = _in_internet("curl", "-s", "-o", "/dev/null", "-w", "%{http_code} %{redirect_url}", "--max-time",
                            "15", f"http://{eip}/auth/login/")  # fmt: skip
    problems = [] if redirect == f"301 https://{eip}/auth/login/" else [f"http://{eip}/auth/login/: {redirect!r}"]
    plain = {port: _in_internet("curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "15",
                                f"http://{eip}:{port}/") for port, _, step in config.public_tls() if step != "horizon"}
    problems += [f"http://{eip}:{port}/ answers {code or 'nothing'}" for port, code in plain.items() if code != "400"]
    detail = (f"{config.NS_INTERNET}: http://{eip}/auth/login/ -> {redirect}; plain http on "
              + ", ".join(f"{port} {code}" for port, code in plain.items()))
    if problems:
        detail = "; ".join(problems) + " | " + detail
    return {**_check(name, not problems, detail, step), "node": "vpc"}


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
    gateway = spec.enis[1].ip
    seen = nodes.node_run(
        spec,
        [
            "bash",
            "-c",
            # the provider interface by the name userdata pinned to the ENI's MAC (node.env)
            ROUTER_NS + ". /etc/openstack-aws/node.env; cat \"/sys/class/net/$PROVIDER_IF/address\"; "
            "ip netns exec \"$ns\" sh -c 'cat /sys/class/net/qg-*/address'; "
            "nft list map bridge osa_provider owner | tr -d ' ,' | grep -o 'elements=.*'",
        ],
        timeout=30,
    )
    eth1_mac, qg_mac, owners = ([*seen.stdout.split(), "", "", ""])[:3]
    checks.append(
        _check(
            "after-reboot-provider-translation",
            eth1_mac not in ("", eni_mac) and bool(qg_mac) and f"{gateway}:{qg_mac}" in owners,
            f"provider interface {eth1_mac or '?'} (ENI MAC {eni_mac} only as the bridge's translation), router "
            f"gateway port {qg_mac or '?'}, map owner: {owners or 'missing'}",
            step,
        )
    )
    checks.append(floating_ip_from_outside("after-reboot-floating-ip-from-outside", step, wait=REBOOT_WAIT / 2))
    return checks


def from_outside(step: str = "verify") -> list[dict[str, Any]]:
    """What a user outside the VPC sees (rig and make local): the floating IP, the public APIs, Horizon."""
    secrets = nodes.rig_secrets()
    cert = config.PUBLIC_TLS_CERT.read_text() if config.PUBLIC_TLS_CERT.exists() else ""
    return [floating_ip_from_outside("floating-ip-from-outside", step),
            user_floating_ip_from_outside("user-floating-ip-from-outside", step),
            provider_instance_from_outside("provider-instance-from-outside", step),
            public_endpoints_from_outside("public-endpoints-from-outside", step),
            public_http_from_outside("public-http-from-outside", step),
            _check("openstack-cli-from-outside", *remote_cli.openstack_cli_from_outside(), step),
            *horizon_browser.horizon_checks(config.NS_INTERNET, f"https://{config.ELASTIC_IP}",
                                            {"admin": secrets["ADMIN_PASS"], "demo": secrets["DEMO_PASS"]},
                                            config.BUILD / "browser", step,
                                            trust_spki=horizon_browser.spki_sha256(cert) if cert else "")]


def after_install(run_step: RunStep, steps: list[Step]) -> tuple[list[Any], list[dict[str, Any]]]:
    """All proofs, in order; RIG_NO_REBOOT=1 leaves out the reboot (minutes) when iterating on a step."""
    log("proofs from outside the nodes: floating IP from the probe side, network-fix re-run, controller reboot")
    checks = from_outside()
    checks += [secret_files.secrets_not_readable_by_others(), db_converge.db_ensure_converges()]
    results, rerun_checks = network_fix_rerun(run_step, steps)
    checks += rerun_checks
    if os.environ.get("RIG_NO_REBOOT") == "1":
        log("RIG_NO_REBOOT=1: controller reboot proof left out")
    else:
        checks += controller_reboot()
    return results, checks
