"""Find the project's nodes by tag: instance IDs per role, and each node's ENIs (ID, MAC, address) by eth index."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from common.errors import NodesMissing

PROJECT_TAG = "openstack-aws:project"
ROLE_TAG = "openstack-aws:role"
NODE_TAG = "openstack-aws:node"
ENI_TAG = "openstack-aws:eni"
LIVE_STATES = ("pending", "running")


@dataclass(frozen=True)
class DiscoverEvent:
    project: str
    expected: dict[str, list[str]]  # role -> node names this deployment has


def _tags(resource: dict[str, Any]) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in resource.get("Tags", resource.get("TagSet", []))}


def _instances(ec2: Any, project: str) -> dict[str, dict[str, str]]:
    """node name -> {instance_id, role} for live instances carrying the project tag."""
    filters = [
        {"Name": f"tag:{PROJECT_TAG}", "Values": [project]},
        {"Name": "instance-state-name", "Values": list(LIVE_STATES)},
    ]
    found: dict[str, dict[str, str]] = {}
    for page in ec2.get_paginator("describe_instances").paginate(Filters=filters):
        for reservation in page["Reservations"]:
            for instance in reservation["Instances"]:
                tags = _tags(instance)
                node = tags.get(NODE_TAG)
                if not node:
                    continue
                if node in found:
                    raise NodesMissing(
                        f"two live instances carry {NODE_TAG}={node} ({found[node]['instance_id']}, "
                        f"{instance['InstanceId']}): terminate the stray one"
                    )
                found[node] = {"instance_id": instance["InstanceId"], "role": tags.get(ROLE_TAG, "")}
    return found


def _enis(ec2: Any, project: str) -> dict[str, dict[str, dict[str, str]]]:
    """instance ID -> {"eth0": {eni_id, mac, ip}}; the eth index is the ENI tag, else the device index."""
    filters = [{"Name": f"tag:{PROJECT_TAG}", "Values": [project]}]
    found: dict[str, dict[str, dict[str, str]]] = {}
    for page in ec2.get_paginator("describe_network_interfaces").paginate(Filters=filters):
        for eni in page["NetworkInterfaces"]:
            attachment = eni.get("Attachment") or {}
            instance_id = attachment.get("InstanceId")
            if not instance_id:
                continue
            index = _tags(eni).get(ENI_TAG) or f"eth{attachment.get('DeviceIndex', 0)}"
            found.setdefault(instance_id, {})[index] = {
                "eni_id": eni["NetworkInterfaceId"],
                "mac": eni.get("MacAddress", ""),
                "ip": eni.get("PrivateIpAddress", ""),
            }
    return found


def discover(ec2: Any, event: DiscoverEvent) -> dict[str, Any]:
    instances = _instances(ec2, event.project)
    missing = [node for nodes in event.expected.values() for node in nodes if node not in instances]
    if missing:
        raise NodesMissing(
            f"no running instance tagged {PROJECT_TAG}={event.project} for node(s) {', '.join(missing)}; "
            "check that the nodes stack is deployed and that these instances are not stopped or terminated"
        )
    enis = _enis(ec2, event.project)
    nodes = {
        node: {**instances[node], "role": role, "enis": enis.get(instances[node]["instance_id"], {})}
        for role, names in event.expected.items()
        for node in names
    }
    return {
        "by_role": {
            role: {nodes[n]["instance_id"]: n for n in names} for role, names in event.expected.items() if names
        },
        "names": {info["instance_id"]: node for node, info in nodes.items()},
        "nodes": nodes,
    }
