"""Host side: packages, kernel modules, the two subnet bridges, the apt cache, the host firewall."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

from . import config, state
from .sh import RigError, log, ok, pid_alive, run

HERE = Path(__file__).resolve().parent


def ensure_packages() -> None:
    run(["bash", str(HERE / "host-setup.sh")], timeout=1800)


def link_exists(name: str) -> bool:
    return ok(["ip", "link", "show", "dev", name])


def ensure_bridge(name: str, address: str | None = None) -> None:
    if not link_exists(name):
        state.add("bridges", name)
        run(["ip", "link", "add", name, "type", "bridge", "stp_state", "0", "forward_delay", "0"])
    Path(f"/proc/sys/net/ipv6/conf/{name}/disable_ipv6").write_text("1\n")
    if address and address.split("/")[0] not in run(["ip", "-4", "-o", "addr", "show", "dev", name]).stdout:
        run(["ip", "addr", "add", address, "dev", name])
    run(["ip", "link", "set", name, "up"])


def ensure_host_firewall() -> None:
    """Nothing routed between the rig's bridges and the host's real interfaces, in either direction.

    The host holds 172.31.32.2 (the apt cache) on bridge A; it accepts only the cache port and ICMP from there.
    """
    bridges = f"{{ {config.BRIDGE_A}, {config.BRIDGE_B} }}"
    ruleset = f"""
table inet {config.NFT_HOST_TABLE}
delete table inet {config.NFT_HOST_TABLE}
table inet {config.NFT_HOST_TABLE} {{
  chain forward {{
    type filter hook forward priority -10; policy accept;
    iifname {bridges} oifname != {bridges} counter drop
    oifname {bridges} iifname != {bridges} counter drop
  }}
  chain input {{
    type filter hook input priority -10; policy accept;
    iifname {bridges} ct state established,related accept
    iifname {bridges} tcp dport {config.CACHE_PORT} accept
    iifname {bridges} icmp type echo-request accept
    iifname {bridges} counter drop
  }}
}}
"""
    state.add("nft", ["inet", config.NFT_HOST_TABLE])
    run(["nft", "-f", "-"], input=ruleset)


def _acng_conf() -> Path:
    config.ACNG_DIR.mkdir(parents=True, exist_ok=True)
    conf = config.ACNG_DIR / "acng.conf"
    config.CACHE_DIR.mkdir(parents=True, exist_ok=True)
    logdir = config.BUILD / "logs" / "acng"
    logdir.mkdir(parents=True, exist_ok=True)
    for path in (config.CACHE_DIR, logdir):
        run(["chown", "-R", "apt-cacher-ng:apt-cacher-ng", str(path)], check=False)
    # No Remap lines: the Debian package's remapping to a mirror list fails here; clients ask for
    # http://deb.debian.org/... through the proxy and the cache stores it under that name.
    conf.write_text(
        f"CacheDir: {config.CACHE_DIR}\n"
        f"LogDir: {logdir}\n"
        "SupportDir: /usr/lib/apt-cacher-ng\n"
        f"Port: {config.CACHE_PORT}\n"
        f"BindAddress: 127.0.0.1 {config.CACHE_IP}\n"
        f"PidFile: {config.ACNG_DIR / 'acng.pid'}\n"
        "ExThreshold: 4\n"
        "ReportPage: acng-report.html\n"
    )
    return conf


def cache_pid() -> int | None:
    pid = state.load()["pids"].get("acng")
    return pid if pid_alive(pid) and "apt-cacher-ng" in _comm(pid) else None


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def ensure_cache() -> None:
    if cache_pid():
        return
    conf = _acng_conf()
    pidfile = config.ACNG_DIR / "acng.pid"
    pidfile.unlink(missing_ok=True)
    run(["/usr/sbin/apt-cacher-ng", "-c", str(conf.parent), "ForeGround=0"])
    for _ in range(50):
        if pidfile.exists() and pidfile.read_text().strip().isdigit():
            break
        time.sleep(0.1)
    else:
        raise RigError(f"apt-cacher-ng did not write its pid file; see {config.SHOWN_BUILD}/logs/acng/")
    pid = int(pidfile.read_text().strip())
    state.set_item("pids", "acng", pid)
    url = f"http://127.0.0.1:{config.CACHE_PORT}/acng-report.html"
    for _ in range(50):
        if subprocess.run(["curl", "-sf", "-o", "/dev/null", url]).returncode == 0:
            break
        time.sleep(0.1)
    log(f"apt cache (apt-cacher-ng pid {pid}) on {config.APT_PROXY}, store {config.CACHE_DIR}")


def stop_cache() -> None:
    pid = cache_pid()
    if pid:
        os.kill(pid, 15)
    state.set_item("pids", "acng", None)


def ensure_host() -> None:
    if os.geteuid() != 0:
        raise RigError("the rig needs root")
    config.BUILD.mkdir(parents=True, exist_ok=True)
    ensure_packages()
    ensure_bridge(config.BRIDGE_A, f"{config.CACHE_IP}/24")
    ensure_bridge(config.BRIDGE_B)
    ensure_host_firewall()
    ensure_cache()
