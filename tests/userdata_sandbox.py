"""Runs a rendered `userdata/node.sh` for real on this machine, inside a private mount namespace whose /etc and
/var/log are overlays (the host's stay untouched), with stubs for what only a booting EC2 instance has: IMDSv2,
systemctl, apt-get, hostnamectl, the disks. Every stubbed call is recorded in order, so tests can say what ran
before what; the files the script wrote are the overlay's upper layer.

The SSM agent package is played as the official one behaves: its postinst starts the unit at once, and the
systemctl stub honours a drop-in's ConditionPathExists= as systemd would (a start whose condition fails is skipped).
Needs root (mount namespaces); tests skip without it.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

#: The controller's ENIs as EC2's IMDS lists them: MAC -> (device index, local-ipv4s, subnet CIDR).
CONTROLLER_ENIS = {
    "02:00:00:00:00:0a": (0, "172.31.32.11", "172.31.32.0/24"),
    "02:00:00:00:00:0b": (1, "172.31.33.12\n172.31.33.50", "172.31.33.0/24"),
    "02:00:00:00:00:0c": (2, "172.31.33.11", "172.31.33.0/24"),
}
COMPUTE_ENIS = {
    "02:00:00:00:00:1a": (0, "172.31.32.21", "172.31.32.0/24"),
    "02:00:00:00:00:1b": (1, "172.31.33.22", "172.31.33.0/24"),
}
AGENT_DROP_INS = "/etc/systemd/system/amazon-ssm-agent.service.d"

STUB = r"""#!/bin/bash
# One stub for every command a first boot needs from EC2 or systemd; it records each call in order.
name=$(basename "$0")
state=$SANDBOX/state
record() { printf '%s\n' "$*" >> "$SANDBOX/calls.log"; }
counted_failure() {  # fail the first N calls of a kind (N from the environment variable named $1)
  local limit=${!1:-0} count
  count=$(( $(cat "$state/$1" 2>/dev/null || echo 0) + 1 ))
  echo "$count" > "$state/$1"
  (( count <= limit ))
}
agent_condition_met() {  # systemd's ConditionPathExists= of the agent's drop-ins
  local path
  for path in $(sed -n 's/^ConditionPathExists=//p' "$AGENT_DROP_INS"/*.conf 2>/dev/null); do
    [[ -e $path ]] || return 1
  done
}
case $name in
  curl)
    for url in "$@"; do [[ $url == http* ]] && break; done
    if [[ $url == http://169.254.169.254/* ]]; then
      path=${url#http://169.254.169.254/latest/}
      [[ $path == api/token ]] && { echo token; exit 0; }
      path=${path#meta-data/}
      [[ $path == */ ]] && path+=index
      cat "$SANDBOX/imds/$path" 2>/dev/null || exit 22
      exit 0
    fi
    record "curl $url"
    if counted_failure CURL_FAILS; then exit 22; fi ;;
  apt-get)
    record "apt-get $* [agent-drop-in: $(cat "$AGENT_DROP_INS"/*.conf 2>/dev/null | tr '\n' ' ')]"
    [[ " $* " == *" update "* ]] && counted_failure APT_UPDATE_FAILS && exit 100
    if [[ " $* " == *" install "* && " $* " != *" --download-only "* ]]; then
      counted_failure APT_INSTALL_FAILS && exit 100
      # the official package's postinst: enable and start the agent right away
      [[ " $* " == *amazon-ssm-agent.deb* ]] && systemctl start amazon-ssm-agent
    fi
    [[ " $* " == *" --download-only "* ]] && counted_failure APT_INSTALL_FAILS && exit 100
    exit 0 ;;
  systemctl)
    if [[ $1 == start && $2 == amazon-ssm-agent ]]; then
      if agent_condition_met; then record "systemctl $* -> started"; else record "systemctl $* -> skipped"; fi
    else
      record "systemctl $*"
    fi ;;
  findmnt) echo /dev/nvme0n1p1 ;;
  lsblk) echo nvme0n1 ;;
  *) record "$name $*" ;;
esac
exit 0
"""
STUBBED = ("curl", "apt-get", "systemctl", "findmnt", "lsblk", "hostnamectl", "sleep", "dpkg", "iptables",
           "iptables-save", "nft", "sysctl", "ip", "reboot")  # fmt: skip

DRIVER = r"""set -euo pipefail
mount -t tmpfs tmpfs "$SANDBOX/layers"
for dir in /etc /var/log; do
  mkdir -p "$SANDBOX/layers$dir/upper" "$SANDBOX/layers$dir/work"
  mount -t overlay overlay -o "lowerdir=$dir,upperdir=$SANDBOX/layers$dir/upper,workdir=$SANDBOX/layers$dir/work" "$dir"
done
mkdir -p /etc/cloud/cloud.cfg.d /etc/systemd/network  # as in Debian's AMI
# The AMI's release, whatever this machine runs (on Debian a symlink into /usr: removed in the overlay, not followed)
rm -f /etc/os-release
printf 'PRETTY_NAME="Debian GNU/Linux"\nNAME="Debian GNU/Linux"\nID=debian\nVERSION_CODENAME=%s\n' "$AMI_RELEASE" \
  > /etc/os-release
rc=0
PATH="$SANDBOX/bin:$PATH" bash "$SANDBOX/node.sh" > "$SANDBOX/output.log" 2>&1 || rc=$?
cp -a "$SANDBOX/layers/etc/upper" "$SANDBOX/etc"
cp -a /var/log/openstack-aws-userdata.log "$SANDBOX/userdata.log" 2>/dev/null || true
exit "$rc"
"""


@dataclass
class FirstBoot:
    returncode: int
    calls: list[str]  # the stubbed commands, in the order the script ran them
    etc: Path  # what the script wrote under /etc (the overlay's upper layer)
    output: str

    def index(self, prefix: str) -> int:
        """Position of the first recorded call starting with `prefix`."""
        return next(i for i, call in enumerate(self.calls) if call.startswith(prefix))

    def written(self, path: str) -> str:
        return (self.etc / path.removeprefix("/etc/")).read_text()


def run_first_boot(
    script: str, enis: dict[str, tuple[int, str, str]], work: Path, *, ami_release: str = "bookworm", **env: str
) -> FirstBoot:
    """Runs `script` (a rendered userdata) as the first boot of a node with these ENIs, on an AMI whose
    /etc/os-release names `ami_release`; `env` sets the stubs' failure counts (CURL_FAILS, APT_UPDATE_FAILS,
    APT_INSTALL_FAILS)."""
    (work / "bin").mkdir(parents=True)
    (work / "state").mkdir()
    (work / "layers").mkdir()
    stub = work / "bin" / "stub"
    stub.write_text(STUB)
    stub.chmod(0o755)
    for name in STUBBED:
        (work / "bin" / name).symlink_to(stub)
    macs = work / "imds" / "network" / "interfaces" / "macs"
    macs.mkdir(parents=True)
    (macs / "index").write_text("".join(f"{mac}/\n" for mac in enis))
    for mac, (index, addresses, cidr) in enis.items():
        (macs / mac).mkdir()
        (macs / mac / "device-number").write_text(str(index))
        (macs / mac / "local-ipv4s").write_text(addresses)
        (macs / mac / "subnet-ipv4-cidr-block").write_text(cidr)
    (work / "node.sh").write_text(script)
    environment = {**os.environ, **env, "SANDBOX": str(work), "AGENT_DROP_INS": AGENT_DROP_INS,
                   "AMI_RELEASE": ami_release}  # fmt: skip
    proc = subprocess.run(["unshare", "--mount", "--propagation", "private", "bash", "-c", DRIVER],
                          env=environment, capture_output=True, text=True, timeout=120)  # fmt: skip
    calls_log = work / "calls.log"
    calls = calls_log.read_text().splitlines() if calls_log.exists() else []
    output = (work / "output.log").read_text() if (work / "output.log").exists() else proc.stderr
    return FirstBoot(proc.returncode, calls, work / "etc", output)
