"""The rebuild's Lambdas: root volumes restored to launch state (botocore Stubber: moto lacks the API), the
"already running" guard (moto Step Functions)."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import boto3
import pytest
from botocore.stub import ANY, Stubber
from common.root_volumes import RootVolumeReplaceFailed, client_token, replacement_states, start_replacements
from moto import mock_aws
from rebuild_guard.logic import AlreadyRunning, RebuildGuardEvent, guard
from root_volume_status.logic import RootVolumeStatusEvent, root_volume_status

INSTANCES = {"i-1": "controller", "i-2": "object1"}


def ec2_stub() -> tuple[object, Stubber]:
    ec2 = boto3.client("ec2", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x")
    return ec2, Stubber(ec2)


def test_one_task_per_node_with_a_token_stable_within_an_execution() -> None:
    ec2, stub = ec2_stub()
    for instance, task in (("i-1", "replacevol-1"), ("i-2", "replacevol-2")):
        stub.add_response(
            "create_replace_root_volume_task",
            {"ReplaceRootVolumeTask": {"ReplaceRootVolumeTaskId": task, "InstanceId": instance, "TaskState": "pending"}},
            {"InstanceId": instance, "ClientToken": client_token("exec-1", instance), "DeleteReplacedRootVolume": True,
             "TagSpecifications": ANY},
        )
    with stub:
        tasks = start_replacements(ec2, INSTANCES, "exec-1", "openstack-aws")
    stub.assert_no_pending_responses()
    assert tasks == {"i-1": "replacevol-1", "i-2": "replacevol-2"}
    assert client_token("exec-1", "i-1") == client_token("exec-1", "i-1") != client_token("exec-2", "i-1")
    assert len(client_token("x" * 200, "i-1")) <= 64


def test_an_ami_upgrade_names_the_image_and_keeps_the_instances() -> None:
    """config ami_id: the new root volume comes from that AMI (botocore validates ImageId against EC2's model)."""
    ec2, stub = ec2_stub()
    stub.add_response(
        "create_replace_root_volume_task",
        {"ReplaceRootVolumeTask": {"ReplaceRootVolumeTaskId": "replacevol-1", "InstanceId": "i-1"}},
        {"InstanceId": "i-1", "ImageId": "ami-0123456789abcdef0", "ClientToken": ANY, "DeleteReplacedRootVolume": True,
         "TagSpecifications": ANY},
    )  # fmt: skip
    with stub:
        assert start_replacements(ec2, {"i-1": "controller"}, "e", "p", "ami-0123456789abcdef0") == {"i-1": "replacevol-1"}
    stub.assert_no_pending_responses()


def _describe(stub: Stubber, states: dict[str, str]) -> None:
    tasks = [{"ReplaceRootVolumeTaskId": task, "TaskState": state, "CompleteTime": "2026-11-24T03:05:00Z"}
             for task, state in states.items()]
    stub.add_response("describe_replace_root_volume_tasks", {"ReplaceRootVolumeTasks": tasks},
                      {"ReplaceRootVolumeTaskIds": sorted(states)})


def test_states_until_every_task_succeeded() -> None:
    ec2, stub = ec2_stub()
    tasks = {"i-1": "t1", "i-2": "t2"}
    _describe(stub, {"t1": "succeeded", "t2": "in-progress"})
    _describe(stub, {"t1": "succeeded", "t2": "succeeded"})
    with stub:
        first = replacement_states(ec2, tasks, INSTANCES)
        second = replacement_states(ec2, tasks, INSTANCES)
    assert first == {"all_succeeded": False, "states": {"controller": "succeeded", "object1": "in-progress"},
                     "completed_at": ""}
    assert second["all_succeeded"] and second["completed_at"] == "2026-11-24T03:05:00Z"


def test_a_failed_task_names_the_node_and_what_to_do() -> None:
    ec2, stub = ec2_stub()
    _describe(stub, {"t1": "succeeded", "t2": "failed-detached"})
    with stub, pytest.raises(RootVolumeReplaceFailed, match=r"object1 \(i-2\) failed: task t2 is failed-detached"):
        replacement_states(ec2, {"i-1": "t1", "i-2": "t2"}, INSTANCES)


def test_waiting_too_long_fails_naming_the_pending_nodes() -> None:
    ec2, stub = ec2_stub()
    _describe(stub, {"t1": "succeeded", "t2": "in-progress"})
    started = datetime.fromtimestamp(time.time() - 3600, UTC).isoformat().replace("+00:00", "Z")
    event = RootVolumeStatusEvent({"i-1": "t1", "i-2": "t2"}, INSTANCES, started, 1800)
    with stub, pytest.raises(RootVolumeReplaceFailed, match=r"within 30 min: object1 \(in-progress\)"):
        root_volume_status(ec2, event)


@mock_aws
def test_guard_refuses_while_an_install_or_another_rebuild_runs() -> None:
    sfn = boto3.client("stepfunctions", region_name="eu-west-1")
    definition = json.dumps({"StartAt": "A", "States": {"A": {"Type": "Pass", "End": True}}})
    role = "arn:aws:iam::123456789012:role/x"
    install = sfn.create_state_machine(name="install", definition=definition, roleArn=role)["stateMachineArn"]
    rebuild = sfn.create_state_machine(name="rebuild", definition=definition, roleArn=role)["stateMachineArn"]
    me = sfn.start_execution(stateMachineArn=rebuild, name="nightly")["executionArn"]
    assert guard(sfn, RebuildGuardEvent({}, me, install, rebuild)) == {"accepted": True}
    other = sfn.start_execution(stateMachineArn=install, name="console")["executionArn"]
    with pytest.raises(AlreadyRunning, match=f"refusing to rebuild while {other} is running"):
        guard(sfn, RebuildGuardEvent({"Comment": "x"}, me, install, rebuild))


@mock_aws
def test_guard_rejects_unknown_input_keys() -> None:
    sfn = boto3.client("stepfunctions", region_name="eu-west-1")
    with pytest.raises(Exception, match=r"unknown input key 'from_step': the rebuild takes \{\}"):
        guard(sfn, RebuildGuardEvent({"from_step": "keystone"}, "arn", "arn:i", "arn:r"))
