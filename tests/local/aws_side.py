"""The nodes' AWS side in moto, mirroring the rig: instances and ENIs with the rig's addresses and MACs, tagged as
stacks/nodes_stack.py tags them, so the real discovery Lambda finds them; the EC2 fix's
ModifyNetworkInterfaceAttribute reaches the emulated VPC's filter through the rig's ENI table."""

from __future__ import annotations

from typing import Any

import boto3
import botocore.client
from moto.backends import get_backend

from tests.moto_engine import ACCOUNT, SetAttr
from tests.rig import config as rig_config
from tests.rig import vpc as rig_vpc

PROJECT = "openstack-aws"


def _tags(tags: dict[str, str]) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in tags.items()]


def create_nodes(region: str) -> dict[str, dict[str, Any]]:
    """node -> {instance_id, enis: {device index: moto ENI id}}; ENIs carry the rig's MAC and address."""
    ec2 = boto3.client("ec2", region_name=region)
    vpc = ec2.create_vpc(CidrBlock="172.31.0.0/16")["Vpc"]["VpcId"]
    subnets = {
        "A": ec2.create_subnet(VpcId=vpc, CidrBlock="172.31.32.0/24")["Subnet"]["SubnetId"],
        "B": ec2.create_subnet(VpcId=vpc, CidrBlock="172.31.33.0/24")["Subnet"]["SubnetId"],
    }
    backend = get_backend("ec2")[ACCOUNT][region]
    table = {(e["node"], e["device_index"]): e for e in rig_vpc.load_eni_table()}
    created: dict[str, dict[str, Any]] = {}
    for spec in rig_config.NODES:
        tags = {"openstack-aws:project": PROJECT, "openstack-aws:role": spec.role, "openstack-aws:node": spec.name}
        enis: dict[int, str] = {}
        for eni in spec.enis:
            eni_tags = {**tags, "openstack-aws:eni": f"eth{eni.index}"}
            enis[eni.index] = ec2.create_network_interface(
                SubnetId=subnets[eni.subnet], PrivateIpAddress=eni.ip,
                TagSpecifications=[{"ResourceType": "network-interface", "Tags": _tags(eni_tags)}],
            )["NetworkInterface"]["NetworkInterfaceId"]  # fmt: skip
            backend.get_network_interface(enis[eni.index]).mac_address = table[(spec.name, eni.index)]["mac"]
        instance = ec2.run_instances(
            ImageId="ami-12345678", MinCount=1, MaxCount=1, InstanceType="t3.xlarge",
            NetworkInterfaces=[{"DeviceIndex": i, "NetworkInterfaceId": e} for i, e in sorted(enis.items())],
            TagSpecifications=[{"ResourceType": "instance", "Tags": _tags({**tags, "Name": spec.name})}],
        )["Instances"][0]  # fmt: skip
        created[spec.name] = {"instance_id": instance["InstanceId"], "enis": enis}
    return created


def route_eni_changes_to_the_rig(setattr: SetAttr, created: dict[str, dict[str, Any]]) -> None:
    """ModifyNetworkInterfaceAttribute(SourceDestCheck) goes to moto and to the rig's ENI table and nft filter."""
    selector = {eni: f"{node}:{index}" for node, n in created.items() for index, eni in n["enis"].items()}
    original = botocore.client.BaseClient._make_api_call

    def make_api_call(client: Any, operation: str, params: dict[str, Any]) -> Any:
        response = original(client, operation, params)
        if operation == "ModifyNetworkInterfaceAttribute" and "SourceDestCheck" in params:
            enabled = params["SourceDestCheck"]["Value"]
            rig_vpc.set_source_dest_check(selector[params["NetworkInterfaceId"]], bool(enabled))
            print(f"[ec2] source/dest check {'on' if enabled else 'off'} on {selector[params['NetworkInterfaceId']]} "
                  "(rig ENI table and VPC filter updated)", flush=True)  # fmt: skip
        return response

    setattr(botocore.client.BaseClient, "_make_api_call", make_api_call)
