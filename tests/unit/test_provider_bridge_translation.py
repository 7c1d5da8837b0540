"""The network fix's MAC translation on the provider bridge, loaded for real in network namespaces.

The ruleset and the owner-map script are taken from steps/95-network-fix.sh as the step writes them. A namespace
plays the controller (bridge with the provider interface and a router's gateway port), one the router (qrouter-…,
its gateway address and a floating IP on qg-…), one the VPC side of the provider ENI. The VPC side must see only
the ENI's MAC, for every address a router holds, and only once the owner map names the address."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.step_text import written_file

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root: network namespaces and nft")

STEP = ROOT / "steps" / "95-network-fix.sh"
ENI_MAC = "02:00:ac:1f:21:0c"
QG_MAC = "fa:16:3e:00:00:51"


def _heredoc(target: str) -> str:
    return written_file(STEP, target)


def _scenario(tmp_path: Path) -> str:
    ruleset = _heredoc("/usr/local/lib/openstack-aws/provider-bridge.nft")
    (tmp_path / "provider.nft").write_text(ruleset.replace("$PROVIDER_IF", "prov0").replace("$PROVIDER_MAC", ENI_MAC))
    (tmp_path / "owners").write_text(_heredoc("/usr/local/sbin/openstack-aws-provider-owners"))
    script = f"""
set -u
br=osa-br-$$; vpc=osa-vpc-$$; r=qrouter-osatest-$$
trap 'ip netns del $br; ip netns del $vpc; ip netns del $r' EXIT
for ns in $br $vpc $r; do ip netns add $ns; ip -n $ns link set lo up; done
for ns in $br $vpc $r; do ip netns exec $ns sysctl -qw net.ipv6.conf.all.disable_ipv6=1; done
ip -n $br link add prov0 type veth peer name vpc0 netns $vpc
ip -n $br link add tapqg type veth peer name qg-test netns $r
ip -n $br link add br0 type bridge
ip -n $br link set prov0 address 02:aa:bb:cc:dd:ee
for dev in prov0 tapqg; do ip -n $br link set $dev master br0; ip -n $br link set $dev up; done
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
    }}
    counter eni {{ }}
    counter foreign {{ }}
}}
NFT
ip netns exec $br nft -f {tmp_path}/provider.nft || {{ echo "ruleset rejected"; exit 1; }}
reach() {{ ip netns exec $vpc ping -c1 -W1 "$1" >/dev/null 2>&1 && echo reached || echo unreached; }}
echo "before-map .51 $(reach 172.31.33.51)"
ip -n $vpc neigh flush dev vpc0
timeout 6 ip netns exec $br bash {tmp_path}/owners >{tmp_path}/owners.log 2>&1
echo "map $(ip netns exec $br nft list map bridge osa_provider owner | tr -d ' \\n' | grep -o 'elements={{[^}}]*}}')"
echo "gateway .51 $(reach 172.31.33.51)"
echo "floating .52 $(reach 172.31.33.52)"
echo "arp .51 $(ip -n $vpc neigh show 172.31.33.51 | grep -o 'lladdr [0-9a-f:]*')"
ip -n $vpc neigh replace 172.31.33.53 lladdr {ENI_MAC} dev vpc0
echo "unowned .53 $(reach 172.31.33.53)"
echo "frames $(ip netns exec $vpc nft list counters table netdev seen | grep -o 'packets [0-9]*' | paste -sd' ')"
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


def test_the_owner_script_maps_the_gateway_and_the_floating_address_to_the_ports_mac(seen: dict[str, str]) -> None:
    assert seen["map"] == f"elements={{172.31.33.51:{QG_MAC},172.31.33.52:{QG_MAC}}}"


def test_the_vpc_reaches_every_address_of_the_port_and_sees_only_the_enis_mac(seen: dict[str, str]) -> None:
    assert seen["gateway"] == ".51 reached"
    assert seen["floating"] == ".52 reached"
    assert seen["arp"] == f".51 lladdr {ENI_MAC}"  # the ARP reply's sender is the ENI, not the port
    eni, foreign = (int(n) for n in re.findall(r"packets (\d+)", seen["frames"]))
    assert eni > 0 and foreign == 0, seen["frames"]


def test_a_frame_for_an_address_no_port_holds_is_dropped_not_flooded(seen: dict[str, str]) -> None:
    assert seen["unowned"] == ".53 unreached"
    assert int(seen["drops"].split()[1]) > 0, seen["drops"]
