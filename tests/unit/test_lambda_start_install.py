"""The deploy trigger: Create starts a run, Update only when the nodes changed, never a second concurrent run."""

from __future__ import annotations

import json

import boto3
import pytest
from moto import mock_aws

from tests.lambda_runtime import invoke

HANDLER = "start_install.handler.handler"
DEFINITION = json.dumps({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}})


@pytest.fixture
def machine():
    with mock_aws():
        sfn = boto3.client("stepfunctions")
        arn = sfn.create_state_machine(name="osa-install", definition=DEFINITION,
                                       roleArn="arn:aws:iam::123456789012:role/sfn")["stateMachineArn"]  # fmt: skip
        yield sfn, arn


def event(kind: str, arn: str, nodes: list[str], old: list[str] | None = None) -> dict:
    found = {"RequestType": kind, "ResourceProperties": {"StateMachineArn": arn, "Nodes": nodes}}
    if old is not None:
        found["OldResourceProperties"] = {"StateMachineArn": arn, "Nodes": old}
    return found


def test_create_starts_an_install_with_empty_input(machine) -> None:
    sfn, arn = machine
    result, failed = invoke(HANDLER, event("Create", arn, ["i-1"]))
    assert not failed, result
    assert result["Data"]["Started"] == "true"
    (execution,) = sfn.list_executions(stateMachineArn=arn)["executions"]
    assert json.loads(sfn.describe_execution(executionArn=execution["executionArn"])["input"]) == {}


def test_update_starts_only_when_nodes_changed_and_never_doubles_a_run(machine) -> None:
    sfn, arn = machine
    assert invoke(HANDLER, event("Update", arn, ["i-1"], old=["i-1"]))[0]["Data"]["Started"] == "false"
    assert sfn.list_executions(stateMachineArn=arn)["executions"] == []
    first = invoke(HANDLER, event("Update", arn, ["i-2"], old=["i-1"]))[0]
    second = invoke(HANDLER, event("Update", arn, ["i-3"], old=["i-2"]))[0]
    assert first["Data"]["Started"] == "true" and second["Data"]["Started"] == "false"
    assert second["Data"]["ExecutionArn"] == first["Data"]["ExecutionArn"]
    assert first["PhysicalResourceId"] == second["PhysicalResourceId"]


def test_delete_stops_a_running_install(machine) -> None:
    sfn, arn = machine
    invoke(HANDLER, event("Create", arn, ["i-1"]))
    assert invoke(HANDLER, event("Delete", arn, ["i-1"]))[1] is False
    (execution,) = sfn.list_executions(stateMachineArn=arn)["executions"]
    assert execution["status"] == "ABORTED"
