"""The provider backhaul under Neutron's openvswitch backend (Debian 13: steps/lib/optional/neutron.sh's script with
its OVS_BRIDGE argument), run for real in network namespaces; ovs-vsctl is a stand-in that keeps the bridge's ports
in a file (this machine has no Open vSwitch), so what is proven is the script's side: the veth pair that joins the
controller's Linux provider bridge to the OVS bridge, the compute's backhaul as the OVS bridge's port, both up, and
a second run that changes nothing."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.step_text import written_file

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root: network namespaces, VXLAN, bridges")

LIB = ROOT / "steps" / "lib" / "optional" / "neutron.sh"
SCRIPT = "/usr/local/sbin/openstack-aws-provider-backhaul"
#: ovs-vsctl as far as the script uses it, with one file of ports per bridge under $OVS_STATE.
FAKE_OVS_VSCTL = """#!/bin/bash
set -eu
case "$1" in
    get) echo netdev ;;
    list-ports) cat "$OVS_STATE/$2" 2>/dev/null || true ;;
    add-port) echo "$3" >>"$OVS_STATE/$2" ;;
    *) echo "fake ovs-vsctl: $*" >&2; exit 1 ;;
esac
"""


def _run(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "backhaul").write_text(written_file(LIB, SCRIPT))
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "ovs-vsctl").write_text(FAKE_OVS_VSCTL)
    (bin_dir / "ovs-vsctl").chmod(0o755)
    for node, mgmt_ip, provider_if in (("ctl", "10.98.0.1", "prov0"), ("cmp", "10.98.0.2", "prov1")):
        etc = tmp_path / node
        (etc / "ovs").mkdir(parents=True)
        (etc / "node.env").write_text(f"MGMT_IP={mgmt_ip}\nPROVIDER_IF={provider_if}\n")
        (etc / "cluster.env").write_text('CONTROLLER_IP=10.98.0.1\nCOMPUTE_IPS="10.98.0.2"\n')
    script = f"""
set -u
c=osa-octl-$$; n=osa-ocmp-$$
trap 'ip netns del $c; ip netns del $n' EXIT
for ns in $c $n; do ip netns add $ns; done
run() {{ ip netns exec "$1" env PATH={bin_dir}:$PATH OSA_ETC={tmp_path}/"$2" OVS_STATE={tmp_path}/"$2"/ovs \\
    bash {tmp_path}/backhaul "${{@:3}}" | paste -sd'|'; }}
ip -n $c link add mgmt0 type veth peer name mgmt0 netns $n
ip -n $c addr add 10.98.0.1/24 dev mgmt0
ip -n $n addr add 10.98.0.2/24 dev mgmt0
ip -n $c link add prov0 type veth peer name prov0-peer
ip -n $n link add prov1 type veth peer name prov1-peer
for ns in $c $n; do ip -n $ns link set mgmt0 up; done
echo "controller-first $(run $c ctl osa-provider br-test br-ex)"
echo "controller-second $(run $c ctl osa-provider br-test br-ex)"
echo "compute-first $(run $n cmp osa-provider '' br-ex)"
echo "compute-second $(run $n cmp osa-provider '' br-ex)"
echo "controller-brif $(ip netns exec $c ls /sys/class/net/br-test/brif | sort | paste -sd' ')"
echo "controller-ovs $(paste -sd' ' {tmp_path}/ctl/ovs/br-ex)"
echo "compute-ovs $(paste -sd' ' {tmp_path}/cmp/ovs/br-ex)"
echo "veth-up $(ip -n $c -o link show osa-prov-ovs | grep -c 'state UP\\|,UP')"
echo "compute-prov1 $(ip -n $n -o link show prov1 | grep -o 'master [a-z0-9-]*' || echo nomaster)"
"""
    out = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=60, check=True).stdout
    return dict(line.split(" ", 1) if " " in line else (line, "") for line in out.splitlines())


def test_the_backhaul_joins_the_ovs_bridge_once(tmp_path: Path) -> None:
    seen = _run(tmp_path)
    first = seen["controller-first"]
    assert "osa-prov-lb: veth to osa-prov-ovs (br-ex)" in first, first
    assert "br-test: osa-prov-lb added" in first and "br-ex: osa-prov-ovs added" in first, first
    assert seen["controller-brif"] == "osa-prov-lb osa-provider prov0"
    assert seen["controller-ovs"] == "osa-prov-ovs", "the Linux bridge's side is not OVS's port"
    assert seen["veth-up"] == "1"
    # a compute has no Linux provider bridge: the backhaul itself is the OVS bridge's port, its own ENI unused
    assert "br-ex: osa-provider added" in seen["compute-first"], seen["compute-first"]
    assert seen["compute-ovs"] == "osa-provider"
    assert seen["compute-prov1"] == "nomaster"
    assert seen["controller-second"] == "" and seen["compute-second"] == "", seen
