"""Is every node Online in SSM? Past the allowed wait, fail naming the nodes and what to check."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from common import clock
from common.errors import NodesNotOnline

WHAT_TO_CHECK = (
    "check for each: the instance is running; its system log (EC2 console > Instance > Monitor and troubleshoot > "
    "Get system log) shows userdata finished and amazon-ssm-agent started; its subnet reaches the SSM endpoints "
    "(NAT gateway, or VPC endpoints with management_egress=none); the instance profile carries "
    "AmazonSSMManagedInstanceCore"
)


@dataclass(frozen=True)
class WaitOnlineEvent:
    instances: dict[str, str]  # instance ID -> node name
    started: str  # when the wait began (the execution's start time)
    max_wait_seconds: int
    # Count a node only if its agent pinged after this (ISO timestamp): after a root volume is restored, SSM
    # still shows the old agent's "Online" for minutes.
    online_since: str = ""


def online_instances(ssm: Any, instance_ids: list[str], since: float | None = None) -> set[str]:
    filters = [{"Key": "InstanceIds", "Values": instance_ids}]
    pages = ssm.get_paginator("describe_instance_information").paginate(Filters=filters)
    infos = [i for page in pages for i in page["InstanceInformationList"] if i["PingStatus"] == "Online"]
    if since is not None:
        infos = [i for i in infos if "LastPingDateTime" in i and i["LastPingDateTime"].timestamp() >= since]
    return {i["InstanceId"] for i in infos}


def check_online(ssm: Any, event: WaitOnlineEvent) -> dict[str, Any]:
    since = clock.parse_timestamp(event.online_since) if event.online_since else None
    online = online_instances(ssm, sorted(event.instances), since)
    offline = sorted(name for instance, name in event.instances.items() if instance not in online)
    waited = int(clock.now() - clock.parse_timestamp(event.started))
    if offline and waited >= event.max_wait_seconds:
        listed = ", ".join(f"{name} ({i})" for i, name in sorted(event.instances.items()) if name in offline)
        raise NodesNotOnline(
            f"node(s) {listed} did not come Online in SSM Fleet Manager within {event.max_wait_seconds // 60} min; "
            + WHAT_TO_CHECK
        )
    return {"all_online": not offline, "offline": offline, "waited_seconds": waited}
