"""The AWS side of the network fix: source/dest check off on the controller's public ENI (eth2).

Neutron's router answers on eth2's address for floating IPs and SNAT, so the ENI must accept packets addressed
to (and sent from) other addresses. Also returns eth1's MAC and address, which the network-fix step gives to
the router's external port.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from common.errors import NodesMissing


@dataclass(frozen=True)
class Ec2FixEvent:
    node: str
    enis: dict[str, dict[str, str]]  # "eth0" -> {eni_id, mac, ip}, as discover_nodes returns them


def _eni(event: Ec2FixEvent, index: str) -> dict[str, str]:
    eni = event.enis.get(index)
    if not eni or not eni.get("eni_id"):
        raise NodesMissing(
            f"{event.node} has no ENI tagged openstack-aws:eni={index} (found: {', '.join(sorted(event.enis))}); "
            "the nodes stack gives the controller eth0, eth1 and eth2"
        )
    return eni


def apply_fix(ec2: Any, event: Ec2FixEvent) -> dict[str, Any]:
    public, provider = _eni(event, "eth2"), _eni(event, "eth1")
    ec2.modify_network_interface_attribute(NetworkInterfaceId=public["eni_id"], SourceDestCheck={"Value": False})
    return {
        "public_eni": public["eni_id"],
        "source_dest_check": False,
        "provider_eni": provider["eni_id"],
        "provider_mac": provider["mac"],
        "provider_ip": provider["ip"],
    }
