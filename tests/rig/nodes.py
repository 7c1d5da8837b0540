"""The nodes: base image, per-node root file systems, data disks, boot, exec."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shlex
import shutil
import signal
import subprocess
import time
from pathlib import Path

from . import ami, config, state
from .config import NodeSpec
from .sh import RigError, log, pid_alive, run

HERE = Path(__file__).resolve().parent
RUN_DIR = config.BUILD / "run"
BASE_PACKAGES = (
    "systemd,systemd-sysv,dbus,iproute2,ifupdown,ca-certificates,python3,crudini,curl,gnupg,"
    "iputils-ping,procps,kmod,less,netbase"
)
#: Bumped when the base image's content changes: `up` rebuilds an older one (when no node runs on it).
BASE_VERSION = "2 (cloud-init, networkd DHCP, NIC and disk stand-in)"
SSM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


# ---------------------------------------------------------------- base image
def ensure_base() -> None:
    if config.BASE_MARKER.exists():
        if BASE_VERSION in config.BASE_MARKER.read_text():
            return
        running = [spec.name for spec in config.NODES if launcher_pid(spec)]
        if running:  # their overlays stand on it: rebuild after `down`
            log(f"the base image is older than version {BASE_VERSION!r}, but {', '.join(running)} run on it")
            return
    tmp = config.BUILD / "base.tmp"
    if tmp.exists():
        shutil.rmtree(tmp)
    log(f"building the base image (debootstrap {config.OS_RELEASE} minbase through the cache)")
    t0 = time.monotonic()
    env = dict(os.environ, http_proxy=f"http://127.0.0.1:{config.CACHE_PORT}")
    run(["debootstrap", "--variant=minbase", f"--include={BASE_PACKAGES}", config.OS_RELEASE, str(tmp),
         "http://deb.debian.org/debian"], env=env, timeout=1800)
    _configure_base(tmp)
    if config.BASE.exists():
        shutil.rmtree(config.BASE)
    tmp.rename(config.BASE)
    config.BASE_MARKER.write_text(f"version {BASE_VERSION}, built {time.strftime('%Y-%m-%dT%H:%M:%S')}\n")
    log(f"base image ready in {time.monotonic() - t0:.0f}s")


def _configure_base(root: Path) -> None:
    """What every node shares: apt through the host cache, the Debian sources an AMI has, interface naming."""
    (root / "etc/apt/sources.list").write_text("")
    rel = config.OS_RELEASE
    (root / "etc/apt/sources.list.d/debian.sources").write_text(
        f"Types: deb\nURIs: http://deb.debian.org/debian\nSuites: {rel} {rel}-updates\nComponents: main\n"
        "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\n"
        f"Types: deb\nURIs: http://deb.debian.org/debian-security\nSuites: {rel}-security\nComponents: main\n"
        "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n")
    (root / "etc/apt/apt.conf.d/01rig-proxy").write_text(
        f'// rig: packages come only through the host cache\nAcquire::http::Proxy "{config.APT_PROXY}";\n'
        'Acquire::https::Proxy "DIRECT";\n'
        '// the archive this machine reaches may be a dated snapshot\n'
        'Acquire::Check-Valid-Until "false";\n')
    (root / "etc/network/interfaces").write_text(
        "# rig: like a Debian cloud image, per-interface files come from interfaces.d\n"
        "source /etc/network/interfaces.d/*\n\nauto lo\niface lo inet loopback\n")
    ami.configure_base(root)
    # resolv.conf: no DNS server in the rig (names are in /etc/hosts; apt goes through the proxy by URL)
    resolv = root / "etc/resolv.conf"
    if resolv.is_symlink() or resolv.exists():
        resolv.unlink()
    resolv.write_text("# rig: no DNS server; names are in /etc/hosts\noptions timeout:1 attempts:1\n")


# ---------------------------------------------------------------- topology (COMPUTE_COUNT)
def on_record() -> set[str]:
    """Names of the nodes an earlier `up` made and `down` has not removed: recorded launchers and root file
    systems, whatever COMPUTE_COUNT that `up` ran with."""
    names = {key.removeprefix("node:") for key in state.load()["pids"] if key.startswith("node:")}
    if config.NODES_DIR.is_dir():
        names |= {path.name for path in config.NODES_DIR.iterdir() if path.is_dir()}
    return names


def known_specs() -> list[NodeSpec]:
    """This topology's nodes, then any other node still on record (e.g. compute3 of an earlier COMPUTE_COUNT=3)."""
    wanted = {spec.name for spec in config.NODES}
    names = (on_record() | set(state.load().get("nodes", []))) - wanted
    return [*config.NODES, *(spec for spec in map(config.any_node, sorted(names)) if spec is not None)]


def check_topology() -> None:
    """Refuse to change the node set of a rig that is up. Each node learns the others (hosts, COMPUTE_IPS) once,
    from its userdata at first boot, so a node added later is unknown to the rest, and one left out stays in
    theirs."""
    present = on_record()
    if not present:
        return
    before = set(state.load().get("nodes") or present)  # a rig made before "nodes" was recorded: what exists
    wanted = {spec.name for spec in config.NODES}
    if before != wanted:
        raise RigError(
            f"the rig is up with {', '.join(sorted(before))}, but COMPUTE_COUNT={config.COMPUTE_COUNT} means "
            f"{', '.join(spec.name for spec in config.NODES)}: `make rig-down` first, or run with the same "
            "COMPUTE_COUNT as before")


def claim_topology() -> None:
    check_topology()
    state.set_value("nodes", [spec.name for spec in config.NODES])


# ---------------------------------------------------------------- per-node root file system
def rootfs(spec: NodeSpec) -> Path:
    return config.NODES_DIR / spec.name / "root"


def _env_file(values: dict[str, str]) -> str:
    return "".join(f"{k}={shlex.quote(v)}\n" for k, v in values.items())


def override_env() -> dict[str, str]:
    """What the rig has instead of Secrets Manager, S3, cirros, the internet's apt mirrors and a public probe name:
    /etc/openstack-aws/override.env, which the steps read after the cluster.env userdata writes (steps/README.md).
    Every other fact comes from the real userdata, against the rig's IMDS (tests/rig/instances.py)."""
    return {
        "SECRET_SOURCE": f"file:{config.NODE_CONF_DIR}/secrets.json",
        "ARTIFACT_STORE": f"dir:{config.NODE_ARTIFACTS}",
        "TEST_IMAGE_URL": f"file://{config.NODE_TEST_IMAGE}",
        "APT_PROXY": config.APT_PROXY,
        "PROBE_NAME": config.PROBE_NAME,
    }


def rig_secrets() -> dict[str, str]:
    """One set of random passwords per rig (kept until `down`), so re-runs on the same nodes agree. A key a later
    release added is filled in and the others kept, as the stack's seeder does on an update."""
    values = json.loads(config.SECRETS.read_text()) if config.SECRETS.exists() else {}
    missing = [key for key in config.SECRET_KEYS if not values.get(key)]
    if missing:
        values |= {key: secrets.token_hex(16) for key in missing}
        config.SECRETS.write_text(json.dumps(values, indent=1) + "\n")
        config.SECRETS.chmod(0o600)
    return values


def write_node_config(spec: NodeSpec, root: Path) -> None:
    """What the rig provides from outside the instance: its hardware (NICs, disks), the secrets (Secrets Manager's
    part) and the override facts. Hostname, /etc/hosts, networking, node.env and cluster.env are userdata's."""
    (root / ami.HW_FILE).write_text(ami.hw_file(spec, loop_devices(spec)))
    conf = root / config.NODE_CONF_DIR.lstrip("/")
    conf.mkdir(parents=True, exist_ok=True)
    (conf / "override.env").write_text("# rig: replaces these cluster facts (tests/rig/nodes.py)\n"
                                       + _env_file(override_env()))
    sec = conf / "secrets.json"
    sec.write_text(json.dumps(rig_secrets(), indent=1) + "\n")
    sec.chmod(0o600)
    for path in (config.NODE_ARTIFACTS, "/root/rig-steps"):
        (root / path.lstrip("/")).mkdir(parents=True, exist_ok=True)
    (root / config.NODE_TEST_IMAGE.lstrip("/")).touch()


def ensure_rootfs(spec: NodeSpec) -> bool:
    """Give a node its root file system: an overlay of the base image (measured: a copy takes 3-8 s per node,
    the overlay none). False when the node already existed (its upper layer is kept until `down`)."""
    top = config.NODES_DIR / spec.name
    upper, work, root = top / "upper", top / "work", rootfs(spec)
    created = not upper.exists()
    for path in (upper, work, root):
        path.mkdir(parents=True, exist_ok=True)
    if not os.path.ismount(root):
        state.add("mounts", str(root))
        run(["mount", "-t", "overlay", "overlay", "-o",
             f"lowerdir={config.BASE},upperdir={upper},workdir={work}", str(root)])
    write_node_config(spec, root)  # rewritten each time: loop device names can change between boots
    return created


# ---------------------------------------------------------------- data disks
def disk_files(spec: NodeSpec) -> list[Path]:
    return [config.DISKS_DIR / f"{spec.name}-{i}.img" for i in range(len(spec.disks_gib))]


def _loop_of(path: Path) -> str | None:
    out = run(["losetup", "-j", str(path), "-O", "NAME", "-n"], check=False).stdout.split()
    return out[0] if out else None


def ensure_disks(spec: NodeSpec) -> list[str]:
    config.DISKS_DIR.mkdir(parents=True, exist_ok=True)
    devices = []
    for path, size in zip(disk_files(spec), spec.disks_gib, strict=True):
        if not path.exists():
            run(["truncate", "-s", f"{size}G", str(path)])
        dev = _loop_of(path)
        if not dev:
            dev = run(["losetup", "--find", "--show", str(path)]).stdout.strip()
        state.set_item("loops", dev, str(path))
        devices.append(dev)
    return devices


def loop_devices(spec: NodeSpec) -> list[str]:
    return [d for d in (_loop_of(p) for p in disk_files(spec)) if d]


# ---------------------------------------------------------------- boot and exec
def launch_file(spec: NodeSpec) -> Path:
    return RUN_DIR / f"{spec.name}.launch"


def leader_file(spec: NodeSpec) -> Path:
    return RUN_DIR / f"{spec.name}.leader"


def launcher_pid(spec: NodeSpec) -> int | None:
    pid = state.load()["pids"].get(f"node:{spec.name}")
    return pid if pid_alive(pid) and "node-launch.sh" in _cmdline(pid) else None


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def leader(spec: NodeSpec) -> int | None:
    try:
        pid = int(leader_file(spec).read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if pid_alive(pid) else None


def _nspawn_args(spec: NodeSpec, disks: list[str]) -> list[str]:
    args = [f"--bind={config.ARTIFACTS}:{config.NODE_ARTIFACTS}",
            f"--bind-ro={config.TEST_IMAGE}:{config.NODE_TEST_IMAGE}",
            "--bind=/dev/net/tun"]
    if os.environ.get("RIG_KVM") == "1" and Path("/dev/kvm").exists():
        args.append("--bind=/dev/kvm")
    args += [f"--bind={d}" for d in disks]
    return args


def launch(spec: NodeSpec) -> bool:
    """Boot the node unless it runs; True when it was booted now (its userdata is still to run)."""
    if launcher_pid(spec):
        return False
    RUN_DIR.mkdir(parents=True, exist_ok=True)
    config.LOGS.mkdir(parents=True, exist_ok=True)
    config.ARTIFACTS.mkdir(parents=True, exist_ok=True)
    if not config.TEST_IMAGE.exists():
        config.TEST_IMAGE.touch()
    disks = ensure_disks(spec)
    ensure_rootfs(spec)
    cgroup = f"rig/{spec.name}"
    state.add("cgroups", cgroup)
    ifaces = [f"{spec.host_if(e.index)} {spec.cont_if(e.index)} {e.mac} {e.bridge}" for e in spec.enis]
    for eni in spec.enis:
        state.add("links", spec.host_if(eni.index))
    launch_file(spec).write_text(
        f"NODE={shlex.quote(spec.name)}\nROOTFS={shlex.quote(str(rootfs(spec)))}\n"
        f"LEADER_FILE={shlex.quote(str(leader_file(spec)))}\nCGROUP={shlex.quote(cgroup)}\n"
        f"IFACES=({' '.join(shlex.quote(i) for i in ifaces)})\n"
        f"NSPAWN_ARGS=({' '.join(shlex.quote(a) for a in _nspawn_args(spec, disks))})\n")
    logf = open(config.LOGS / f"{spec.name}.console.log", "ab")  # noqa: SIM115 (handed to the child)
    proc = subprocess.Popen(["bash", str(HERE / "node-launch.sh"), str(launch_file(spec))],
                            stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT, start_new_session=True)
    state.set_item("pids", f"node:{spec.name}", proc.pid)
    log(f"{spec.name}: launcher pid {proc.pid}")
    return True


def wait_booted(spec: NodeSpec, timeout: float = 180) -> int:
    deadline = time.monotonic() + timeout
    pid = None
    while time.monotonic() < deadline:
        pid = leader(spec)
        if pid:
            break
        if not launcher_pid(spec):
            raise RigError(f"{spec.name}: the launcher exited; see {config.SHOWN_BUILD}/logs/{spec.name}.console.log")
        time.sleep(0.2)
    if not pid:
        raise RigError(f"{spec.name}: no container after {timeout:.0f}s; see {config.SHOWN_BUILD}/logs/{spec.name}.console.log")
    status = ""
    while time.monotonic() < deadline:  # early on systemd's socket may not exist yet: ask again
        left = max(5.0, deadline - time.monotonic())
        proc = subprocess.run(["timeout", str(int(left)), "nsenter", "-t", str(pid), "-a",
                               "systemctl", "is-system-running", "--wait"], capture_output=True, text=True)
        status = proc.stdout.strip()
        if status in ("running", "degraded", "maintenance", "stopping"):
            break
        time.sleep(0.5)
    if status not in ("running", "degraded"):
        raise RigError(f"{spec.name}: system state {status or 'unknown'!r} after boot")
    if status == "degraded":
        failed = node_run(spec, ["systemctl", "--failed", "--no-legend", "--plain"]).stdout.strip()
        log(f"{spec.name}: booted degraded: {failed}")
    return pid


def agent_ping(spec: NodeSpec) -> float | None:
    """When the SSM agent userdata installed became active in this boot (its first ping, epoch seconds); None while
    it is not running: not installed yet, stopped by userdata, the node down or between the boots of a reboot."""
    try:
        shown = node_run(spec, ["systemctl", "show", "amazon-ssm-agent.service", "--timestamp=unix",
                                "--property=ActiveState,ActiveEnterTimestamp"], timeout=10)
    except (RigError, subprocess.TimeoutExpired):
        return None
    props = dict(line.split("=", 1) for line in shown.stdout.splitlines() if "=" in line)
    stamp = props.get("ActiveEnterTimestamp", "")
    return float(stamp[1:]) if props.get("ActiveState") == "active" and stamp.startswith("@") else None


def wait_agent(spec: NodeSpec, timeout: float = 1800) -> float:
    """Wait until the node's agent pings (cloud-init ran userdata and rebooted the node once): what the state
    machine waits for before its first step. Returns the seconds waited."""
    t0 = time.monotonic()
    while agent_ping(spec) is None:
        if not launcher_pid(spec):
            raise RigError(f"{spec.name}: the launcher exited; see {config.SHOWN_BUILD}/logs/{spec.name}.console.log")
        if time.monotonic() - t0 > timeout:
            raise RigError(f"{spec.name}: no SSM agent after {timeout:.0f}s: see /var/log/cloud-init-output.log "
                           f"and /var/log/openstack-aws-userdata.log on the node (exec {spec.name})")
        time.sleep(2)
    return time.monotonic() - t0


def node_cmd(spec: NodeSpec, argv: list[str], env: dict[str, str] | None = None) -> list[str]:
    pid = leader(spec)
    if not pid:
        raise RigError(f"{spec.name} is not running")
    base_env = {"PATH": SSM_PATH, "HOME": "/root"} | (env or {})
    return ["nsenter", "-t", str(pid), "-a", "env", "-i", *(f"{k}={v}" for k, v in base_env.items()), *argv]


def node_run(spec: NodeSpec, argv: list[str], check: bool = False, input: str | None = None,
             timeout: float | None = None) -> subprocess.CompletedProcess[str]:
    return run(node_cmd(spec, argv), check=check, input=input, quiet=True, timeout=timeout)


def reboot(spec: NodeSpec) -> None:
    """Reboot a node from inside (systemctl reboot); the launcher boots it again with fresh veths."""
    old = leader(spec)
    node_run(spec, ["systemctl", "reboot"])
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and leader(spec) in (old, None):
        time.sleep(0.5)
    if leader(spec) in (old, None):
        raise RigError(f"{spec.name} did not restart within 120 s of 'systemctl reboot' (see {config.SHOWN_BUILD}/logs)")
    wait_booted(spec)
    log(f"{spec.name}: rebooted (leader pid {old} -> {leader(spec)})")


def stop(spec: NodeSpec, timeout: float = 60) -> None:
    pid = state.load()["pids"].get(f"node:{spec.name}")
    if pid and pid_alive(pid) and "node-launch.sh" in _cmdline(pid):
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        if pid_alive(pid):
            _kill_tree(pid)
    state.set_item("pids", f"node:{spec.name}", None)
    leader_file(spec).unlink(missing_ok=True)


def reset_to_launch_state(spec: NodeSpec) -> None:
    """What EC2's replace-root-volume does to an instance: stop it, drop everything it wrote since launch (its
    overlay's upper layer; the base image is the AMI) and start it again; data disks and ENIs stay."""
    stop(spec)
    root = rootfs(spec)
    if os.path.ismount(root):
        run(["umount", str(root)])
    for layer in (config.NODES_DIR / spec.name / name for name in ("upper", "work")):
        if layer.exists():
            shutil.rmtree(layer)
    launch(spec)


def _children(pid: int) -> list[int]:
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            out += [int(c) for c in (task / "children").read_text().split()]
    return out


def _kill_tree(pid: int) -> None:
    """SIGKILL a process we started and everything below it (nspawn, the container)."""
    for child in _children(pid):
        _kill_tree(child)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
