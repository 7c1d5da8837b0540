"""The datapath step's Open vSwitch pieces (steps/15-datapath.sh, steps/lib/optional/ovs.sh) on their own text with
the real library and stand-ins for what this machine lacks (ovs-vsctl, networkctl, systemd, ethtool). The datapath
itself (Open vSwitch 3.5 on the userspace datapath in Debian 13 containers) is proven by `make rig OS_RELEASE=trixie`
(README, "Debian 13 in the rig")."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.conftest import ROOT
from tests.step_text import written_file

LIB = ROOT / "steps" / "lib"
OVS = LIB / "optional" / "ovs.sh"
VENV_BIN = ROOT / ".venv" / "bin"


def _bash(script: str, tmp: Path) -> subprocess.CompletedProcess[str]:
    prologue = (f'set -euo pipefail\n. "{LIB}/common.sh"\n. "{LIB}/openstack.sh"\n. "{OVS}"\n'
                f'OSA_RUN="{tmp}"; OSA_STEP=test; OSA_T0=$SECONDS\n')  # fmt: skip
    env = {**os.environ, "PATH": f"{tmp / 'bin'}:{VENV_BIN}:{os.environ['PATH']}"}
    return subprocess.run(["bash", "-c", prologue + script], capture_output=True, text=True, env=env)


def _stub(tmp: Path, name: str, body: str) -> None:
    (tmp / "bin").mkdir(exist_ok=True)
    path = tmp / "bin" / name
    path.write_text(f"#!/bin/bash\n{body}\n")
    path.chmod(0o755)


def test_the_backend_follows_the_release(tmp_path: Path) -> None:
    for codename, backend in (("bookworm", "linuxbridge"), ("trixie", "openvswitch")):
        release = tmp_path / f"os-release-{codename}"
        release.write_text(f'PRETTY_NAME="Debian"\nVERSION_CODENAME={codename}\nID=debian\n')
        proc = _bash(f'OSA_OS_RELEASE="{release}"\nneutron_backend', tmp_path)
        assert proc.returncode == 0 and proc.stdout.strip() == backend, proc.stderr


def test_instance_ports_get_checksumming_off_as_they_appear(tmp_path: Path) -> None:
    """The service's script on a node with a bridge, a namespace veth and an instance's hybrid plug: the devices
    present and those `ip monitor` announces later, qvb/qvo/tap only (ids as Nova names them)."""
    script = tmp_path / "checksums"
    script.write_text(written_file(OVS, "/usr/local/sbin/openstack-aws-ovs-checksums"))
    sys_net = tmp_path / "sys"
    for dev in ("lo", "br-int", "qvb1c9140d4-5d", "osa-provider"):
        (sys_net / dev).mkdir(parents=True)
    _stub(tmp_path, "ethtool", f'echo "$*" >>"{tmp_path}/ethtool"')
    _stub(tmp_path, "ip", "printf '%s\\n' "
          "'14: qvo45ab512a-9e@qvb45ab512a-9e: <BROADCAST,MULTICAST> mtu 1450 qdisc noop' "
          "'15: tap45ab512a-9e: <BROADCAST,MULTICAST> mtu 1450 qdisc noop' "
          "'16: ns-5fcb02de-89@if2: <BROADCAST,MULTICAST> mtu 1450' "
          "'Deleted 14: qvo45ab512a-9e@qvb45ab512a-9e: <BROADCAST,MULTICAST> mtu 1450'")  # fmt: skip
    text = script.read_text().replace("/sys/class/net/", f"{sys_net}/")
    env = {**os.environ, "PATH": f"{tmp_path / 'bin'}:{os.environ['PATH']}"}
    subprocess.run(["bash", "-c", text], env=env, check=True, timeout=10)
    assert (tmp_path / "ethtool").read_text().splitlines() == [
        "-K qvb1c9140d4-5d tx off", "-K qvo45ab512a-9e tx off", "-K tap45ab512a-9e tx off"]


def test_the_underlay_moves_the_management_address_to_br_mgmt_once(tmp_path: Path) -> None:
    """ovs_mgmt_underlay with OVSDB, networkd and systemd stood in: networkd files that give br-mgmt the ENI's
    address and gateway (and MGMT_IF none), the ingress drop on MGMT_IF, MGMT_IF added once; a second run changes
    nothing."""
    net, ports = tmp_path / "network", tmp_path / "ports"
    net.mkdir()
    _stub(tmp_path, "ovs-vsctl", f'case "$1" in br-exists) exit 1 ;; list-ports) cat "{ports}" 2>/dev/null ;;\n'
          f'add-port) echo "$3" >>"{ports}" ;; get) echo netdev ;; esac; echo "ovs-vsctl $*" >>"{tmp_path}/calls"')
    _stub(tmp_path, "ovs-appctl", "exit 0")
    for tool in ("networkctl", "systemctl", "nft"):
        _stub(tmp_path, tool, f'echo "{tool} $*" >>"{tmp_path}/calls"')
    _stub(tmp_path, "ip", f'case "$*" in "-4 -o addr show dev br-mgmt") echo "9: br-mgmt inet 10.97.0.11/24" ;;\n'
          f'*) echo "ip $*" >>"{tmp_path}/calls" ;; esac')
    lib = tmp_path / "ovs.sh"
    lib.write_text(OVS.read_text().replace("/etc/systemd/network", str(net))
                   .replace("/usr/local/lib/openstack-aws", str(tmp_path / "lib"))
                   .replace("/etc/systemd/system", str(tmp_path)))  # fmt: skip
    mtu = tmp_path / "mtu"
    mtu.write_text("9001\n")
    run = (f'. "{lib}"\ncat() {{ if [[ "${{1:-}}" == /sys/class/net/* ]]; then command cat "{mtu}"; else command cat "$@"; '
           'fi; }\nsvc_apply() { :; }\nMGMT_IF=mgmt0 MGMT_MAC=02:00:0a:61:00:0b MGMT_IP=10.97.0.11 '
           'MGMT_CIDR=10.97.0.0/24 MGMT_GW=10.97.0.1\novs_mgmt_underlay\n_osa_changes')
    first = _bash(run, tmp_path)
    assert first.returncode == 0, first.stderr
    bridge = (net / "04-osa-mgmt-bridge.network").read_text()
    assert "Name=br-mgmt" in bridge and "Address=10.97.0.11/24" in bridge and "Gateway=10.97.0.1" in bridge
    assert "MTUBytes=9001" in bridge
    port = (net / "04-osa-mgmt-port.network").read_text()
    assert "Name=mgmt0" in port and "Address=" not in port and "DHCP" not in port
    nft = (tmp_path / "lib" / "ovs-underlay.nft").read_text()
    assert 'hook ingress device "mgmt0" priority 0; policy drop;' in nft
    unit = (tmp_path / "openstack-aws-ovs-underlay.service").read_text()
    # before networking without sysinit.target's ordering: else a cycle through networkd and cloud-init's network
    # stage, and systemd drops that stage at the next boot
    assert "DefaultDependencies=no" in unit and "Before=network-pre.target" in unit
    calls = (tmp_path / "calls").read_text()
    assert "other_config:hwaddr=02:00:0a:61:00:0b" in calls and "ovs-vsctl add-port br-mgmt mgmt0" in calls
    assert "networkctl reload" in calls
    assert ports.read_text() == "mgmt0\n"
    (tmp_path / "calls").write_text("")
    again = _bash(run, tmp_path)
    assert again.returncode == 0, again.stderr
    # the bridge exists only in the stand-in's answer to br-exists (1: never), so ovs_bridge re-adds it; the rest
    # is what a re-run must leave alone
    assert "add-port" not in (tmp_path / "calls").read_text() and "networkctl" not in (tmp_path / "calls").read_text()
    assert ports.read_text() == "mgmt0\n"
