"""The metadata tree one EC2 instance sees, built from its ENIs as the VPC attached them."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

Tree = dict[str, Any]


@dataclass(frozen=True)
class Eni:
    mac: str
    device_number: int
    local_ipv4s: tuple[str, ...]
    subnet_cidr: str
    vpc_cidr: str = "172.31.0.0/16"
    interface_id: str = ""
    subnet_id: str = "subnet-00000000"


@dataclass(frozen=True)
class Instance:
    instance_id: str
    region: str
    hostname: str
    enis: tuple[Eni, ...]
    instance_type: str = "t3.xlarge"
    ami_id: str = "ami-0000000000000000"
    availability_zone: str = ""
    user_data: str = ""
    extra: Tree = field(default_factory=dict)


def _eni_tree(instance: Instance, eni: Eni) -> Tree:
    return {
        "device-number": str(eni.device_number),
        "interface-id": eni.interface_id or f"eni-{eni.mac.replace(':', '')}",
        "local-hostname": instance.hostname,
        "local-ipv4s": list(eni.local_ipv4s),
        "mac": eni.mac,
        "owner-id": "123456789012",
        "security-group-ids": "sg-00000000",
        "subnet-id": eni.subnet_id,
        "subnet-ipv4-cidr-block": eni.subnet_cidr,
        "vpc-id": "vpc-00000000",
        "vpc-ipv4-cidr-block": eni.vpc_cidr,
        "vpc-ipv4-cidr-blocks": eni.vpc_cidr,
    }


def meta_data(instance: Instance) -> Tree:
    primary = min(instance.enis, key=lambda e: e.device_number)
    az = instance.availability_zone or f"{instance.region}a"
    tree: Tree = {
        "ami-id": instance.ami_id,
        "hostname": instance.hostname,
        "instance-id": instance.instance_id,
        "instance-type": instance.instance_type,
        "local-hostname": instance.hostname,
        "local-ipv4": primary.local_ipv4s[0],
        "mac": primary.mac,
        "network": {"interfaces": {"macs": {e.mac: _eni_tree(instance, e) for e in instance.enis}}},
        "placement": {"availability-zone": az, "region": instance.region},
        "services": {"domain": "amazonaws.com", "partition": "aws"},
    }
    tree.update(instance.extra)
    return tree


def identity_document(instance: Instance) -> str:
    primary = min(instance.enis, key=lambda e: e.device_number)
    return json.dumps({
        "accountId": "123456789012", "architecture": "x86_64",
        "availabilityZone": instance.availability_zone or f"{instance.region}a",
        "imageId": instance.ami_id, "instanceId": instance.instance_id, "instanceType": instance.instance_type,
        "privateIp": primary.local_ipv4s[0], "region": instance.region, "version": "2017-09-30",
    }, indent=2)


def document(instance: Instance) -> Tree:
    """Everything the server answers under /<version>/: meta-data, user-data, dynamic."""
    return {
        "meta-data": meta_data(instance),
        "user-data": instance.user_data,
        "dynamic": {"instance-identity": {"document": identity_document(instance)}},
    }
