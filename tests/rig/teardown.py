"""`down`: undo everything state.json lists, in an order that works after a crash too."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import threading
from pathlib import Path

from . import config, nodes, state, vpc_services
from .sh import log, ok, pid_alive, pid_cmdline, run

# What each recorded pid must look like before we signal it (never a stranger that reused the number).
_PID_SIGNATURES = {"acng": "apt-cacher-ng", "internet-http": "http.server", **vpc_services.SIGNATURES}


def stop_nodes() -> None:
    """Every node on record, not only this COMPUTE_COUNT's: a rig brought up with more compute nodes goes whole."""
    threads = [threading.Thread(target=nodes.stop, args=(spec,)) for spec in nodes.known_specs()]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def down(keep_files: bool = False) -> None:
    stop_nodes()
    data = state.load()
    for name, pid in list(data["pids"].items()):
        sig = _PID_SIGNATURES.get(name, "node-launch.sh" if name.startswith("node:") else None)
        if sig and pid_alive(pid) and sig in pid_cmdline(pid):
            os.kill(pid, signal.SIGTERM)
        state.set_item("pids", name, None)
    for mount in reversed(data["mounts"]):
        run(["umount", "-l", mount], check=False)
        state.remove("mounts", mount)
    for link in data["links"]:
        if ok(["ip", "link", "show", "dev", link]):
            run(["ip", "link", "del", link], check=False)
        state.remove("links", link)
    for ns in data["netns"]:
        if Path(f"/run/netns/{ns}").exists():
            run(["ip", "netns", "del", ns], check=False)
        state.remove("netns", ns)
    for family, table in data["nft"]:
        if ok(["nft", "list", "table", family, table]):
            run(["nft", "delete", "table", family, table], check=False)
        state.remove("nft", [family, table])
    for bridge in data["bridges"]:
        if ok(["ip", "link", "show", "dev", bridge]):
            run(["ip", "link", "del", bridge], check=False)
        state.remove("bridges", bridge)
    for dev, backing in data["loops"].items():
        now = run(["losetup", "-n", "-O", "BACK-FILE", dev], check=False).stdout.strip()
        if now and Path(now.replace(" (deleted)", "")) == Path(backing):
            run(["losetup", "-d", dev], check=False)
        state.set_item("loops", dev, None)
    for cgroup in data["cgroups"]:
        for hierarchy in ("systemd", "unified", "memory"):
            _rmdir_tree(Path("/sys/fs/cgroup") / hierarchy / cgroup)
        state.remove("cgroups", cgroup)
    for hierarchy in ("systemd", "unified", "memory"):
        _rmdir_tree(Path("/sys/fs/cgroup") / hierarchy / "rig", only_if_empty=True)
    state.set_value("nodes", None)
    if not keep_files:
        for path in (config.NODES_DIR, config.DISKS_DIR, config.ARTIFACTS, nodes.RUN_DIR):
            if path.exists():
                shutil.rmtree(path)
        for path in (config.SECRETS, config.ENI_TABLE):
            path.unlink(missing_ok=True)
    log("down: nodes, bridges, namespaces, nft tables, loop devices and cgroups removed"
        " (kept: base image, test image, apt cache, logs, report)")


def _rmdir_tree(path: Path, only_if_empty: bool = False) -> None:
    if not path.is_dir():
        return
    for child in sorted((p for p in path.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
        with contextlib.suppress(OSError):
            child.rmdir()
    try:
        path.rmdir()
    except OSError as exc:
        if not only_if_empty:
            log(f"down: cannot remove cgroup {path}: {exc}")
