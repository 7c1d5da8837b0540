"""A stand-in for the SSM agent's .deb: same package and unit name, a postinst that enables and starts the unit as
the official package's does (so userdata's handling of that start is exercised), and a daemon that only records
each start (boot id, uptime) in /var/log/amazon-ssm-agent-standin.log, which the guest probe reports."""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

CONTROL = """Package: amazon-ssm-agent
Version: 3.3.0.0-bootproof
Architecture: amd64
Maintainer: openstack-aws boot proof <noreply@example.invalid>
Description: stand-in for the Amazon SSM agent (records its starts, does nothing else)
"""
POSTINST = """#!/bin/sh
set -e
# As the official package: reload, enable and start the agent right away.
systemctl daemon-reload
systemctl enable amazon-ssm-agent
systemctl start amazon-ssm-agent
"""
UNIT = """[Unit]
Description=amazon-ssm-agent (boot proof stand-in)
After=network-online.target

[Service]
Type=simple
ExecStart=/usr/bin/amazon-ssm-agent
Restart=always
RestartSec=5

[Install]
WantedBy=multi-user.target
"""
DAEMON = """#!/bin/sh
echo "start boot=$(cat /proc/sys/kernel/random/boot_id) uptime=$(cut -d' ' -f1 /proc/uptime)" \\
  >> /var/log/amazon-ssm-agent-standin.log
exec sleep infinity
"""


def build(out: Path) -> Path:
    """Writes OUT (the .deb) and returns it."""
    files = {
        "DEBIAN/control": (CONTROL, 0o644),
        "DEBIAN/postinst": (POSTINST, 0o755),
        "lib/systemd/system/amazon-ssm-agent.service": (UNIT, 0o644),
        "usr/bin/amazon-ssm-agent": (DAEMON, 0o755),
    }
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for rel, (text, mode) in files.items():
            path = root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            path.chmod(mode)
        out.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["dpkg-deb", "--root-owner-group", "-Zgzip", "--build", str(root), str(out)],
                       check=True, capture_output=True)
    return out
