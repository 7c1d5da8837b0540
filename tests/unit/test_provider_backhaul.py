"""The provider network's backhaul (steps/lib/optional/neutron.sh), run for real in network namespaces.

The script is taken from the library as the neutron steps write it. Two namespaces play the controller and a compute
node, joined by a veth as the management network; each gets its facts files. The controller's run builds the
provider bridge (PROVIDER_IF, the backhaul, and an older install's brq… with a router's tap folded in), the compute's
the backhaul alone (its own provider interface released from the bridge an older install put it in). A router port
on the controller's bridge and an instance port on the compute's network bridge then share one layer 2; a second run
changes nothing; a changed node list converges."""

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


def _facts(etc: Path, mgmt_ip: str, provider_if: str, computes: str) -> None:
    etc.mkdir(exist_ok=True)
    (etc / "node.env").write_text(f"MGMT_IP={mgmt_ip}\nPROVIDER_IF={provider_if}\n")
    (etc / "cluster.env").write_text(f'CONTROLLER_IP=10.99.0.1\nCOMPUTE_IPS="{computes}"\n')


def _scenario(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "backhaul").write_text(written_file(LIB, SCRIPT))
    ctl, cmp = tmp_path / "controller", tmp_path / "compute"
    _facts(ctl, "10.99.0.1", "prov0", "10.99.0.2 10.99.0.3")
    _facts(cmp, "10.99.0.2", "prov1", "10.99.0.2 10.99.0.3")
    script = f"""
set -u
c=osa-ctl-$$; n=osa-cmp-$$; r=osa-rtr-$$; i=osa-inst-$$
trap 'for ns in $c $n $r $i; do ip netns del $ns; done' EXIT
for ns in $c $n $r $i; do ip netns add $ns; ip -n $ns link set lo up; done
# a run's output lines, then its exit status
run() {{ ip netns exec "$1" env OSA_ETC="$2" bash {tmp_path}/backhaul "${{@:3}}"; echo "rc=$?"; }}
# what a run could change: the devices with their settings and masters (not their timers), the static forwarding
# entries
state() {{ ip netns exec "$1" sh -c 'ip -d -o link show; bridge fdb show | grep permanent' |
    sed -E 's/ state [A-Z]+ / /; s/[a-z_]+_timer +[0-9.]+//g' | sort; }}
# the management network (jumbo, as the VPC's): the compute's address comes late, after its first run
ip -n $c link add mgmt0 mtu 9001 type veth peer name mgmt0 netns $n
ip -n $n link set mgmt0 mtu 9001
ip -n $c addr add 10.99.0.1/24 dev mgmt0
for ns in $c $n; do ip -n $ns link set mgmt0 up; done
# an install before the backhaul: the controller's provider interface and a router's tap in the agent's brq…,
# the compute's provider interface in another brq…
ip -n $c link add prov0 type veth peer name prov0-peer
ip -n $c link add tapqg type veth peer name qg-test netns $r
ip -n $c link add brqold type bridge
for dev in prov0 tapqg; do ip -n $c link set $dev master brqold; ip -n $c link set $dev up; done
ip netns exec $c iptables -t raw -I PREROUTING -i brqold -j CT --notrack
ip -n $n link add prov1 type veth peer name prov1-peer
ip -n $n link add brqold1 type bridge
ip -n $n link set prov1 master brqold1
ip -n $r addr add 172.31.33.51/24 dev qg-test
ip -n $r link set qg-test up
echo "controller-first $(run $c {ctl} osa-provider br-test | paste -sd'|')"
echo "compute-first $(run $n {cmp} osa-provider | paste -sd'|')"
ip -n $n addr add 10.99.0.2/24 dev mgmt0
# the compute's linuxbridge agent puts the backhaul into its network bridge with the instance's tap
ip -n $n link add brqnet type bridge
ip -n $n link set osa-provider master brqnet
ip -n $n link add tapinst type veth peer name eth0 netns $i
ip -n $n link set tapinst master brqnet
for dev in tapinst brqnet; do ip -n $n link set $dev up; done
ip -n $i addr add 172.31.33.54/24 dev eth0
ip -n $i link set eth0 up
echo "controller-brif $(ip netns exec $c ls /sys/class/net/br-test/brif | sort | paste -sd' ')"
echo "old-bridge $(ip -n $c link show brqold >/dev/null 2>&1 && echo present || echo gone)"
echo "notrack $(ip netns exec $c iptables -t raw -S PREROUTING | grep -o -- '-i [a-z-]* -j CT --notrack' | paste -sd'|')"
echo "compute-prov1 $(ip -n $n -o link show prov1 | grep -o 'master [a-z0-9]*' || echo nomaster)"
echo "compute-fdb $(ip netns exec $n bridge fdb show dev osa-provider | awk '$1 == "00:00:00:00:00:00" {{print $3}}' | sort | paste -sd' ')"
echo "link $(ip -n $n -d -o link show osa-provider | grep -o ' mtu [0-9]*\\|vxlan id [0-9]* local [0-9.]*\\|dstport [0-9]*' | paste -sd' ')"
echo "ipv6-off $(ip netns exec $c cat /proc/sys/net/ipv6/conf/br-test/disable_ipv6 /proc/sys/net/ipv6/conf/osa-provider/disable_ipv6 /proc/sys/net/ipv6/conf/prov0/disable_ipv6 | paste -sd' ')"
echo "ping $(ip netns exec $i ping -c 2 -W 2 172.31.33.51 >/dev/null 2>&1 && echo reached || echo unreached)"
before_c=$(state $c); before_n=$(state $n)
echo "controller-again $(run $c {ctl} osa-provider br-test | paste -sd'|')"
echo "compute-again $(run $n {cmp} osa-provider | paste -sd'|')"
diff <(echo "$before_c"; echo "$before_n") <(state $c; state $n) && echo "unchanged yes"
# a later deploy: compute 10.99.0.3 is gone, 10.99.0.4 came
sed -i 's/10.99.0.3/10.99.0.4/' {ctl}/cluster.env {cmp}/cluster.env
echo "controller-nodes $(run $c {ctl} osa-provider br-test | paste -sd'|')"
echo "controller-fdb $(ip netns exec $c bridge fdb show dev osa-provider | awk '$1 == "00:00:00:00:00:00" {{print $3}}' | sort | paste -sd' ')"
# a backhaul whose parameters differ is made again, and goes back into the bridge that held it
ip -n $n link set osa-provider mtu 1400
echo "compute-replaced $(run $n {cmp} osa-provider | paste -sd'|')"
echo "compute-master $(ip -n $n -o link show osa-provider | grep -o 'master [a-z0-9]*')"
echo "ping-after $(ip netns exec $i ping -c 2 -W 2 172.31.33.51 >/dev/null 2>&1 && echo reached || echo unreached)"
"""
    proc = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=120)
    out = proc.stdout + proc.stderr
    return {k: v for k, _, v in (line.partition(" ") for line in out.splitlines()) if k} | {"_out": out}


@pytest.fixture(scope="module")
def seen(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return _scenario(tmp_path_factory.mktemp("provider-backhaul"))


def test_the_controllers_bridge_takes_the_old_bridges_ports_and_the_backhaul(seen: dict[str, str]) -> None:
    assert seen["controller-brif"] == "osa-provider prov0 tapqg", seen["_out"]
    assert seen["old-bridge"] == "gone"
    assert seen["notrack"] == "-i br-test -j CT --notrack", "SNAT keeps working until network-fix runs again"
    assert seen["ipv6-off"] == "1 1 0", "no IPv6 on the bridge and the backhaul (the host is not reachable there)"
    assert seen["controller-first"].split("|") == [
        "osa-provider: VXLAN 1001 from 10.99.0.1, UDP port 4790",
        "osa-provider: floods to 10.99.0.2",
        "osa-provider: floods to 10.99.0.3",
        "br-test: created",
        "br-test: the network fix's NOTRACK rule moved here from brqold",
        "br-test: took brqold's ports (prov0 and the taps), brqold deleted",
        "br-test: osa-provider added",
        "rc=0",
    ]


def test_the_compute_gets_the_backhaul_before_its_address_and_releases_its_provider_interface(
    seen: dict[str, str],
) -> None:
    assert seen["compute-first"].split("|") == [
        "osa-provider: VXLAN 1001 from 10.99.0.2, UDP port 4790",
        "osa-provider: floods to 10.99.0.1",
        "osa-provider: floods to 10.99.0.3",
        "prov1: out of brqold1 (the provider network rides osa-provider)",
        "rc=0",
    ], seen["_out"]
    assert seen["compute-prov1"] == "nomaster"
    assert seen["compute-fdb"] == "10.99.0.1 10.99.0.3", "every other node, never itself"
    assert seen["link"] == " mtu 1500 vxlan id 1001 local 10.99.0.2 dstport 4790"


def test_a_router_port_on_the_controller_and_an_instance_on_the_compute_share_layer_2(seen: dict[str, str]) -> None:
    assert seen["ping"] == "reached", seen["_out"]


def test_a_second_run_changes_nothing(seen: dict[str, str]) -> None:
    assert seen["controller-again"] == seen["compute-again"] == "rc=0", seen["_out"]
    assert seen["unchanged"] == "yes"


def test_a_changed_node_list_converges_and_a_changed_device_is_made_again_in_its_bridge(seen: dict[str, str]) -> None:
    assert seen["controller-nodes"].split("|") == [
        "osa-provider: floods to 10.99.0.4",
        "osa-provider: no longer floods to 10.99.0.3 (not a node any more)",
        "rc=0",
    ], seen["_out"]
    assert seen["controller-fdb"] == "10.99.0.2 10.99.0.4"
    assert seen["compute-replaced"].split("|") == [
        "osa-provider: VXLAN 1001 from 10.99.0.2, UDP port 4790",
        "osa-provider: back in brqnet",
        "osa-provider: floods to 10.99.0.1",
        "osa-provider: floods to 10.99.0.4",
        "rc=0",
    ]
    assert seen["compute-master"] == "master brqnet"
    assert seen["ping-after"] == "reached"
