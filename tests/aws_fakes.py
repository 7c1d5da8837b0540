"""What moto lacks for the orchestration, supplied by the test: SSM's DescribeInstanceInformation,
ListCommandInvocations and GetCommandInvocation (scripted per document), and throttling on demand.

`FakeSsm.install(monkeypatch)` routes those SSM operations to the fake; every other call (SendCommand included,
which is also recorded) goes on to moto.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import botocore.client
import pytest
from botocore.exceptions import ClientError

from tests.moto_engine import route_operations

FAKED = ("DescribeInstanceInformation", "ListCommandInvocations", "GetCommandInvocation")
#: EC2's replace-root-volume API, which moto lacks.
ROOT_VOLUME_OPERATIONS = ("CreateReplaceRootVolumeTask", "DescribeReplaceRootVolumeTasks")


def throttling_error(operation: str) -> ClientError:
    return ClientError(
        {"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}, "ResponseMetadata": {"HTTPStatusCode": 400}},
        operation,
    )


@dataclass
class Outcome:
    """How a step's command ends: after `polls` InProgress answers, Success, or Failed on `fail_on` instances."""

    polls: int = 1
    fail_on: tuple[str, ...] = ()
    stdout: str = "step output\ndone\n"
    stderr: str = ""
    exit_code: int = 1


@dataclass
class FakeSsm:
    online: set[str] = field(default_factory=set)
    outcomes: dict[str, Outcome] = field(default_factory=dict)  # document name -> outcome (default: success)
    throttle: dict[str, int] = field(default_factory=dict)  # operation -> how many calls to throttle
    sent: list[dict[str, Any]] = field(default_factory=list)  # every SendCommand's parameters, in order
    api_calls: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)  # (service, operation, params)
    commands: dict[str, dict[str, Any]] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)
    last_ping: datetime | None = None  # LastPingDateTime of every Online node (default: now)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def install(self, monkeypatch: pytest.MonkeyPatch) -> FakeSsm:
        original = botocore.client.BaseClient._make_api_call
        fake = self

        def make_api_call(client: Any, operation: str, params: dict[str, Any]) -> Any:
            fake.api_calls.append((client.meta.service_model.service_name, operation, dict(params)))
            if client.meta.service_model.service_name != "ssm":
                return original(client, operation, params)
            fake._maybe_throttle(operation)
            if operation in FAKED:
                return getattr(fake, operation)(params)
            response = original(client, operation, params)
            if operation == "SendCommand":
                fake._record(params, response["Command"]["CommandId"])
            return response

        monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", make_api_call)
        return self

    def _maybe_throttle(self, operation: str) -> None:
        with self._lock:
            self.calls.append(operation)
            if self.throttle.get(operation, 0) > 0:
                self.throttle[operation] -= 1
                raise throttling_error(operation)

    def _record(self, params: dict[str, Any], command_id: str) -> None:
        with self._lock:
            self.sent.append(dict(params))
            self.commands[command_id] = {"document": params["DocumentName"], "instances": params["InstanceIds"],
                                         "polls": 0}  # fmt: skip

    @property
    def sent_documents(self) -> list[str]:
        return [p["DocumentName"] for p in self.sent]

    def _status(self, command: dict[str, Any], instance_id: str) -> str:
        outcome = self.outcomes.get(command["document"], Outcome())
        if command["polls"] <= outcome.polls:
            return "InProgress"
        return "Failed" if instance_id in outcome.fail_on else "Success"

    # --- the faked operations (boto3 response shapes) ---------------------------------------------------------

    def DescribeInstanceInformation(self, params: dict[str, Any]) -> dict[str, Any]:
        wanted = next((f["Values"] for f in params.get("Filters", []) if f["Key"] == "InstanceIds"), None)
        ids = sorted(self.online if wanted is None else set(wanted) & self.online)
        pinged = self.last_ping or datetime.now(UTC)
        return {"InstanceInformationList": [{"InstanceId": i, "PingStatus": "Online", "LastPingDateTime": pinged}
                                            for i in ids]}

    def ListCommandInvocations(self, params: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            command = self.commands[params["CommandId"]]
            command["polls"] += 1
            return {"CommandInvocations": [
                {"CommandId": params["CommandId"], "InstanceId": i, "Status": self._status(command, i),
                 "DocumentName": command["document"]}
                for i in command["instances"]
            ]}  # fmt: skip

    def GetCommandInvocation(self, params: dict[str, Any]) -> dict[str, Any]:
        command = self.commands[params["CommandId"]]
        outcome = self.outcomes.get(command["document"], Outcome())
        failed = self._status(command, params["InstanceId"]) == "Failed"
        return {
            "CommandId": params["CommandId"], "InstanceId": params["InstanceId"],
            "Status": "Failed" if failed else "Success", "ResponseCode": outcome.exit_code if failed else 0,
            # SSM returns only the head of a long output (the agent's log streams hold all of it).
            "StandardOutputContent": outcome.stdout[:24_000], "StandardErrorContent": outcome.stderr[:8_000],
        }  # fmt: skip


#: The ENIs each role has (stacks/config.py ENIS_NEEDED): eth0 management, eth1 provider, eth2 public.
ENI_COUNT = {"controller": 3, "compute": 2, "block": 1, "object": 1}
DEFAULT_NODES = {"controller": "controller", "compute1": "compute", "block1": "block", "object1": "object",
                 "object2": "object"}  # fmt: skip


def _tag_list(tags: dict[str, str]) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in tags.items()]


def create_nodes(ec2: Any, project: str, nodes: dict[str, str] | None = None) -> dict[str, dict[str, Any]]:
    """Instances and ENIs in moto, tagged as stacks/nodes_stack.py tags them; node -> {instance_id, role, enis}."""
    vpc = ec2.create_vpc(CidrBlock="172.31.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="172.31.32.0/24")["Subnet"]["SubnetId"]
    created: dict[str, dict[str, Any]] = {}
    for node, role in (nodes or DEFAULT_NODES).items():
        tags = {"openstack-aws:project": project, "openstack-aws:role": role, "openstack-aws:node": node}
        instance = ec2.run_instances(
            ImageId="ami-12345678", MinCount=1, MaxCount=1, SubnetId=subnet,
            TagSpecifications=[{"ResourceType": "instance", "Tags": _tag_list({**tags, "Name": node})}],
        )["Instances"][0]  # fmt: skip
        instance_id = instance["InstanceId"]
        primary = instance["NetworkInterfaces"][0]["NetworkInterfaceId"]
        ec2.create_tags(Resources=[primary], Tags=_tag_list({**tags, "openstack-aws:eni": "eth0"}))
        enis = {"eth0": primary}
        for index in range(1, ENI_COUNT[role]):
            eni = ec2.create_network_interface(
                SubnetId=subnet,
                TagSpecifications=[{"ResourceType": "network-interface",
                                    "Tags": _tag_list({**tags, "openstack-aws:eni": f"eth{index}"})}],
            )["NetworkInterface"]["NetworkInterfaceId"]  # fmt: skip
            ec2.attach_network_interface(NetworkInterfaceId=eni, InstanceId=instance_id, DeviceIndex=index)
            enis[f"eth{index}"] = eni
        created[node] = {"instance_id": instance_id, "role": role, "enis": enis}
    return created


@dataclass
class FakeRootVolumes:
    """EC2's replace-root-volume API, which moto lacks: tasks succeed after `polls` describe calls, or fail."""

    polls: int = 1
    fail: str = ""  # instance ID whose task ends failed-detached
    created: list[dict[str, Any]] = field(default_factory=list)
    describes: int = 0

    def install(self, monkeypatch: pytest.MonkeyPatch) -> FakeRootVolumes:
        route_operations(monkeypatch.setattr, "ec2", ROOT_VOLUME_OPERATIONS, self)
        return self

    def CreateReplaceRootVolumeTask(self, params: dict[str, Any]) -> dict[str, Any]:
        known = next((c for c in self.created if c["ClientToken"] == params["ClientToken"]), None)
        if known is None:
            known = {**params, "TaskId": f"replacevol-{len(self.created) + 1}"}
            self.created.append(known)
        return {"ReplaceRootVolumeTask": {"ReplaceRootVolumeTaskId": known["TaskId"], "TaskState": "pending",
                                          "InstanceId": params["InstanceId"]}}  # fmt: skip

    def DescribeReplaceRootVolumeTasks(self, params: dict[str, Any]) -> dict[str, Any]:
        self.describes += 1
        done = self.describes > self.polls
        tasks = []
        for created in self.created:
            if created["TaskId"] not in params["ReplaceRootVolumeTaskIds"]:
                continue
            state = ("failed-detached" if created["InstanceId"] == self.fail else "succeeded") if done else "in-progress"
            tasks.append({"ReplaceRootVolumeTaskId": created["TaskId"], "InstanceId": created["InstanceId"],
                          "TaskState": state, "CompleteTime": datetime.now(UTC).isoformat() if done else ""})
        return {"ReplaceRootVolumeTasks": tasks}
