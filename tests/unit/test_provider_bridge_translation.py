"""The network fix's MAC translation on the provider bridge, loaded for real in network namespaces.

The ruleset and the owner-map script are taken from steps/95-network-fix.sh as the step writes them. A namespace
plays the controller (bridge with the provider interface, a router's gateway port and an instance's port), one the
router (qrouter-…, its gateway address and a floating IP on qg-…), one an instance on the provider network (known
only from the DHCP agent's hosts file), one the VPC side of the provider ENI. The VPC side must see only the ENI's
MAC, for every address a router or an instance holds, only once the owner map names the address, and only for the
pool's addresses; DHCP and IMDS never reach it."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.step_text import written_file

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root: network namespaces and nft")

STEP = ROOT / "steps" / "95-network-fix.sh"
ENI_MAC = "02:00:ac:1f:21:0c"
QG_MAC = "fa:16:3e:00:00:51"
INSTANCE_MAC = "fa:16:3e:00:00:54"
POOL = "172.31.33.51 172.31.33.52 172.31.33.54"
#: the DHCP agent's hosts file (neutron/agent/linux/dhcp.py, _output_hosts_file): the router's gateway port (.51,
#: under another MAC: the qg- port wins), the instance (.54, in the pool, and .60, outside it: never mapped), a
#: line with a tag and a port with a client id (their addresses outside the pool), the DHCP port's address (never)
HOSTS = f"""fa:16:3e:99:99:51,host-172-31-33-51.openstacklocal,172.31.33.51
{INSTANCE_MAC},host-172-31-33-54.openstacklocal,172.31.33.54
{INSTANCE_MAC},host-172-31-33-60.openstacklocal,172.31.33.60,set:port-1234
fa:16:3e:00:00:61,id:client-61,host-172-31-33-61.openstacklocal,172.31.33.61,set:port-5678
fa:16:3e:00:00:03,host-172-31-33-3.openstacklocal,172.31.33.3
"""


def _heredoc(target: str) -> str:
    return written_file(STEP, target)


def _host_filter() -> str:
    """The netfix script's rules that keep the provider bridge from reaching the host (INPUT, routed FORWARD)."""
    lines = _heredoc("/usr/local/sbin/openstack-aws-netfix").splitlines()
    start = next(n for n, line in enumerate(lines) if line.startswith("iptables -C INPUT -i $PROVIDER_BRIDGE "))
    return "\n".join(lines[start : start + 3]).replace("$PROVIDER_BRIDGE", "br0") + "\n"


def _scenario(tmp_path: Path) -> str:
    ruleset = _heredoc("/usr/local/lib/openstack-aws/provider-bridge.nft")
    (tmp_path / "provider.nft").write_text(ruleset.replace("$PROVIDER_IF", "prov0").replace("$PROVIDER_MAC", ENI_MAC))
    (tmp_path / "owners").write_text(_heredoc("/usr/local/sbin/openstack-aws-provider-owners"))
    (tmp_path / "host").write_text(HOSTS)
    (tmp_path / "host-filter").write_text(_host_filter())
    script = f"""
set -u
br=osa-br-$$; vpc=osa-vpc-$$; r=qrouter-osatest-$$; i=osa-inst-$$
trap 'ip netns del $br; ip netns del $vpc; ip netns del $r; ip netns del $i' EXIT
for ns in $br $vpc $r $i; do ip netns add $ns; ip -n $ns link set lo up; done
for ns in $br $vpc $r $i; do ip netns exec $ns sysctl -qw net.ipv6.conf.all.disable_ipv6=1; done
ip -n $br link add prov0 type veth peer name vpc0 netns $vpc
ip -n $br link add tapqg type veth peer name qg-test netns $r
ip -n $br link add tapinst type veth peer name eth0 netns $i
ip -n $br link add br0 type bridge
ip -n $br link set prov0 address 02:aa:bb:cc:dd:ee
for dev in prov0 tapqg tapinst; do ip -n $br link set $dev master br0; ip -n $br link set $dev up; done
ip -n $i link set eth0 address {INSTANCE_MAC}
ip -n $i addr add 172.31.33.54/24 dev eth0
ip -n $i addr add 172.31.33.60/24 dev eth0
ip -n $i link set eth0 up
ip -n $i route add default via 172.31.33.11
ip -n $br link set br0 up
ip -n $r link set qg-test address {QG_MAC}
ip -n $r addr add 172.31.33.51/24 dev qg-test
ip -n $r addr add 172.31.33.52/32 dev qg-test
ip -n $r link set qg-test up
ip -n $vpc addr add 172.31.33.11/24 dev vpc0
ip -n $vpc link set vpc0 up
ip netns exec $vpc nft -f - <<'NFT'
table netdev seen {{
    chain in {{
        type filter hook ingress device "vpc0" priority 0; policy accept;
        ether saddr {ENI_MAC} counter name eni
        ether saddr != {ENI_MAC} counter name foreign
        udp dport {{ 67, 68 }} counter name dhcp
        ip daddr 169.254.169.254 counter name imds
        ip daddr 169.254.169.123 udp dport 123 counter name timesync
        ip daddr 198.51.100.10 udp dport 53 counter name other
    }}
    counter eni {{ }}
    counter foreign {{ }}
    counter dhcp {{ }}
    counter imds {{ }}
    counter timesync {{ }}
    counter other {{ }}
}}
NFT
ip netns exec $br nft -f {tmp_path}/provider.nft || {{ echo "ruleset rejected"; exit 1; }}
# The controller's own address (MariaDB's, say) and its way back to subnet B (through eth2 and the VPC, here
# directly): the instance sends to the bridge's own MAC, as to a router.
ip netns exec $br sysctl -qw net.bridge.bridge-nf-call-iptables=1
ip -n $br addr add 172.31.32.11/32 dev lo
ip -n $br route add 172.31.33.0/24 dev br0
ip -n $i route add 172.31.32.11/32 dev eth0
ip -n $i neigh replace 172.31.32.11 lladdr $(ip -n $br -o link show br0 | grep -o 'link/ether [0-9a-f:]*' | cut -d' ' -f2) dev eth0
host() {{ ip netns exec $i ping -c1 -W1 172.31.32.11 >/dev/null 2>&1 && echo reached || echo unreached; }}
echo "host-unfiltered $(host)"
ip netns exec $br bash {tmp_path}/host-filter || echo "host-filter rejected"
echo "host-filtered $(host)"
reach() {{ ip netns exec $vpc ping -c1 -W1 "$1" >/dev/null 2>&1 && echo reached || echo unreached; }}
echo "before-map .51 $(reach 172.31.33.51)"
ip -n $vpc neigh flush dev vpc0
timeout 6 ip netns exec $br bash {tmp_path}/owners {tmp_path}/host {POOL} >{tmp_path}/owners.log 2>&1
echo "map $(ip netns exec $br nft list map bridge osa_provider owner | tr -d ' \\t\\n' | grep -o 'elements={{[^}}]*}}')"
echo "gateway .51 $(reach 172.31.33.51)"
echo "floating .52 $(reach 172.31.33.52)"
echo "instance .54 $(reach 172.31.33.54)"
echo "arp-gateway .51 $(ip -n $vpc neigh show 172.31.33.51 | grep -o 'lladdr [0-9a-f:]*')"
echo "arp-instance .54 $(ip -n $vpc neigh show 172.31.33.54 | grep -o 'lladdr [0-9a-f:]*')"
for a in 53 60; do ip -n $vpc neigh replace 172.31.33.$a lladdr {ENI_MAC} dev vpc0; done
echo "unowned .53 $(reach 172.31.33.53)"
echo "outside-pool .60 $(reach 172.31.33.60)"
# The instance asks for a lease (a broadcast from port 68, as a DHCP client does), then speaks to IMDS, Amazon Time
# Sync and a DNS server on the internet through its gateway, the VPC side (.11).
ip netns exec $i python3 -c '
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, b"eth0")
s.bind(("0.0.0.0", 68))
for _ in range(3):
    s.sendto(b"discover", ("255.255.255.255", 67))
for address, port in (("169.254.169.254", 80), ("169.254.169.123", 123), ("198.51.100.10", 53)):
    socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"x", (address, port))
'
sleep 1
echo "frames $(ip netns exec $vpc nft list counters table netdev seen |
    awk '$1 == "counter" {{name = $2}} $1 == "packets" {{print name "=" $2}}' | paste -sd' ')"
echo "drops $(ip netns exec $br nft list chain bridge osa_provider from_vpc | grep -o 'packets [0-9]* bytes [0-9]* drop')"
"""
    proc = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=60)
    return proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def seen(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    out = _scenario(tmp_path_factory.mktemp("provider-bridge"))
    lines = dict(line.split(" ", 1) for line in out.splitlines() if " " in line)
    assert "ruleset rejected" not in out, out
    return lines


def test_an_address_no_router_port_is_mapped_to_is_not_reached(seen: dict[str, str]) -> None:
    assert seen["before-map"] == ".51 unreached"


def test_the_owner_script_maps_the_router_ports_and_the_pool_addresses_of_the_hosts_file(seen: dict[str, str]) -> None:
    """The gateway and floating address from the qg- port (the hosts file's other MAC for .51 loses), the instance's
    pool address from the hosts file; its address outside the pool, a tagged line's and the DHCP port's are not."""
    assert seen["map"] == f"elements={{172.31.33.51:{QG_MAC},172.31.33.52:{QG_MAC},172.31.33.54:{INSTANCE_MAC}}}"


def test_the_vpc_reaches_every_address_of_the_port_and_sees_only_the_enis_mac(seen: dict[str, str]) -> None:
    assert seen["gateway"] == ".51 reached"
    assert seen["floating"] == ".52 reached"
    assert seen["arp-gateway"] == f".51 lladdr {ENI_MAC}"  # the ARP reply's sender is the ENI, not the port
    frames = dict(pair.split("=") for pair in seen["frames"].split())
    assert int(frames["eni"]) > 0 and frames["foreign"] == "0", seen["frames"]


def test_an_instance_known_only_from_the_hosts_file_is_reached_as_the_eni(seen: dict[str, str]) -> None:
    assert seen["instance"] == ".54 reached"
    assert seen["arp-instance"] == f".54 lladdr {ENI_MAC}"


def test_dhcp_and_imds_never_leave_the_provider_interface_time_sync_and_the_internet_do(seen: dict[str, str]) -> None:
    """AWS's DHCP server answers the ENI's MAC (it would offer the instance the ENI's primary address) and IMDS would
    answer the instance with the controller's credentials."""
    frames = dict(pair.split("=") for pair in seen["frames"].split())
    assert frames["dhcp"] == "0" and frames["imds"] == "0", seen["frames"]
    assert int(frames["timesync"]) > 0 and int(frames["other"]) > 0, seen["frames"]


def test_the_host_behind_the_bridge_is_out_of_an_instances_reach(seen: dict[str, str]) -> None:
    """Without the netfix script's filter an instance reaches the controller's own address through the bridge's
    MAC; with it, not, while every bridged path above (with br_netfilter on, as on the controller) still works."""
    assert seen["host-unfiltered"] == "reached" and seen["host-filtered"] == "unreached", seen
    assert "host-filter" not in seen, seen["host-filter"]


def test_a_frame_for_an_address_no_port_holds_is_dropped_not_flooded(seen: dict[str, str]) -> None:
    assert seen["unowned"] == ".53 unreached"
    assert seen["outside-pool"] == ".60 unreached"  # held by the instance, in the hosts file, but not the pool's
    assert int(seen["drops"].split()[1]) > 0, seen["drops"]
