#!/usr/bin/env python3
"""Runs inside the boot proof's guest: reports the node's state as one JSON line on the second serial port.

`up`: after cloud-init and the network (names, addresses, rules, facts, cloud-init's state, the agent).
`down`: at every shutdown (the first boot's reboot included): hashes of the files the userdata writes.
Only the Python standard library and the image's tools: this file is copied into the image as is.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPORT_PORT = "/dev/ttyS1"
HASHED = ("/etc/openstack-aws", "/etc/systemd/network", "/etc/hosts", "/etc/hostname", "/etc/netplan",
          "/etc/cloud/cloud.cfg.d")
USERDATA_LOG = Path("/var/log/openstack-aws-userdata.log")
AGENT_LOG = Path("/var/log/amazon-ssm-agent-standin.log")


def sh(*cmd: str) -> str:
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    return done.stdout.strip() or done.stderr.strip()


def sh_json(*cmd: str) -> object:
    try:
        return json.loads(sh(*cmd) or "null")
    except json.JSONDecodeError:
        return None


def tree_hash(path: str) -> str:
    """sha256 over every file's path and content (sorted), so a rewrite with other content shows."""
    digest = hashlib.sha256()
    root = Path(path)
    files = sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else [root] if root.exists() else []
    for file in files:
        digest.update(str(file).encode() + b"\0" + file.read_bytes() + b"\0")
    return digest.hexdigest()


def read(path: str | Path) -> str:
    p = Path(path)
    return p.read_text() if p.exists() else ""


def common() -> dict[str, object]:
    return {
        "boot_id": read("/proc/sys/kernel/random/boot_id").strip(),
        "uptime_s": float(read("/proc/uptime").split()[0]),
        "time": time.time(),
        "hashes": {path: tree_hash(path) for path in HASHED},
        "userdata_runs": read(USERDATA_LOG).count("userdata done for"),
        "agent_starts": read(AGENT_LOG).splitlines(),
    }


def up() -> dict[str, object]:
    dpkg_lists = Path("/var/lib/dpkg/info")
    return {
        "hostname": sh("hostname"),
        "etc_hosts": read("/etc/hosts"),
        "links": sh_json("ip", "-j", "-d", "link", "show"),
        "pci_slot": {n: os.path.basename(os.path.realpath(f"/sys/class/net/{n}/device/.."))
                     for n in os.listdir("/sys/class/net") if os.path.exists(f"/sys/class/net/{n}/device")},
        "kernel_renames": sh("journalctl", "-b", "0", "-k", "--no-pager", "-g", "renamed from"),
        "addresses": sh_json("ip", "-j", "-4", "addr", "show"),
        "rules": sh_json("ip", "-j", "rule", "show"),
        "table_200": sh_json("ip", "-j", "route", "show", "table", "200"),
        "main_routes": sh_json("ip", "-j", "route", "show"),
        "networkctl": sh("networkctl", "list", "--no-pager", "--no-legend"),
        "node_env": read("/etc/openstack-aws/node.env"),
        "cluster_env": read("/etc/openstack-aws/cluster.env"),
        "cloud_init_status": sh("cloud-init", "status", "--long"),
        "cloud_init_network_cfg": read("/etc/cloud/cloud.cfg.d/99-custom-networking.cfg"),
        "netplan_files": sorted(os.listdir("/etc/netplan")) if os.path.isdir("/etc/netplan") else [],
        "run_networkd_files": sorted(os.listdir("/run/systemd/network")) if os.path.isdir("/run/systemd/network")
        else [],
        "cloud_init_instance": read("/var/lib/cloud/data/instance-id").strip(),
        "cloud_init_log_tail": read("/var/log/cloud-init.log").splitlines()[-400:],
        "userdata_log": read(USERDATA_LOG).splitlines()[-60:],
        "agent_active": sh("systemctl", "is-active", "amazon-ssm-agent"),
        "agent_enabled": sh("systemctl", "is-enabled", "amazon-ssm-agent"),
        "boots": sh("journalctl", "--list-boots", "--no-pager"),
        "mtime_ns": {p: os.stat(p).st_mtime_ns for p in ("/etc/hostname", "/etc/hosts") if os.path.exists(p)},
        "dpkg_list_mtime_ns": {f.stem: f.stat().st_mtime_ns for f in dpkg_lists.glob("*.list")},
        "mem_kib": read("/proc/meminfo").splitlines()[:3],
    }


def main() -> None:
    mode = sys.argv[1]
    report: dict[str, object] = {"mode": mode, **common()}
    if mode == "up":
        report.update(up())
    with open(REPORT_PORT, "w") as port:
        port.write("OSA-PROBE " + json.dumps(report) + "\n")


if __name__ == "__main__":
    main()
