"""The nightly rebuild machine executed by moto's engine with the real handlers: root volumes restored (EC2's
replace-root-volume API faked at the botocore layer, moto lacks it), data disks wiped, then the install machine
through startExecution.sync:2; refusal while something runs; schedule, DLQ and dashboard in the template."""

from __future__ import annotations

import json

import boto3
import pytest

from tests.aws_fakes import FakeRootVolumes, Outcome
from tests.statemachine.harness import REBUILD, Harness, render_definition, state_machine_logical_id


@pytest.fixture
def root_volumes(harness: Harness, monkeypatch: pytest.MonkeyPatch) -> FakeRootVolumes:
    return FakeRootVolumes(polls=2).install(monkeypatch)


def test_rebuild_restores_every_root_volume_wipes_data_disks_then_installs(
    harness: Harness, root_volumes: FakeRootVolumes
) -> None:
    execution = harness.run_rebuild({})
    assert execution.status == "SUCCEEDED", execution.cause
    replaced = {c["InstanceId"] for c in root_volumes.created}
    assert replaced == {n["instance_id"] for n in harness.nodes.values()}
    assert all(c["DeleteReplacedRootVolume"] is True and "ImageId" not in c for c in root_volumes.created)
    sent = harness.sent_steps()
    wipes = sorted(node for step, node in sent if step == "wipe-data-disks")
    assert wipes == ["block1", "object1", "object2"]
    first_install_step = next(i for i, (step, _) in enumerate(sent) if step == "base")
    assert all(i < first_install_step for i, (step, _) in enumerate(sent) if step == "wipe-data-disks")
    assert {"verify", "network-fix"} <= {step for step, _ in sent}
    entered = execution.entered
    assert entered.index("Restore root volumes") < entered.index("All nodes online again?") < entered.index(
        "Wipe data disks") < entered.index("Install (state machine)")
    (message,) = [p for p in harness.published() if "rebuild" in p["Subject"]]
    assert message["Subject"] == "[openstack-aws] OpenStack rebuild succeeded"
    assert "The rebuild ran 3 step(s)" in message["Message"]


def test_rebuild_fails_clearly_when_a_root_volume_cannot_be_restored(
    harness: Harness, root_volumes: FakeRootVolumes
) -> None:
    root_volumes.fail = harness.nodes["object2"]["instance_id"]
    execution = harness.run_rebuild({})
    assert execution.status == "FAILED"
    assert execution.error == "RootVolumeReplaceFailed"
    assert f"object2 ({root_volumes.fail}) failed" in execution.cause
    assert harness.sent_steps() == []  # no wipe, no install on a half-restored cloud
    (message,) = harness.published()
    assert message["Subject"] == "[openstack-aws] OpenStack rebuild FAILED: RootVolumeReplaceFailed"
    assert "object2" in message["Message"]


# Stopping the running install ends moto's engine threads of that execution with an exception, by design.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_rebuild_refuses_while_an_install_runs(harness: Harness, root_volumes: FakeRootVolumes) -> None:
    harness.ssm.outcomes["openstack-aws-keystone"] = Outcome(polls=10_000)  # an install that keeps running
    sfn = boto3.client("stepfunctions")
    install_arn = harness._create("openstack-aws-install", harness.definition)
    running = sfn.start_execution(stateMachineArn=install_arn, input="{}")["executionArn"]
    refs = {**harness.refs, state_machine_logical_id(harness.template): install_arn}
    rebuild_arn = harness._create("openstack-aws-rebuild", render_definition(harness.template, refs, REBUILD))
    execution = harness.execute(rebuild_arn, {})
    sfn.stop_execution(executionArn=running)
    assert execution.status == "FAILED" and execution.error == "AlreadyRunning"
    assert f"refusing to rebuild while {running} is running" in execution.cause
    assert root_volumes.created == []


def test_rebuild_rejects_unknown_input(harness: Harness, root_volumes: FakeRootVolumes) -> None:
    execution = harness.run_rebuild({"from_step": "keystone"})
    assert execution.status == "FAILED" and execution.error == "InvalidInput"
    assert "the rebuild takes {}" in execution.cause and root_volumes.created == []


def test_schedule_retry_policy_dead_letter_queue_and_dashboard_are_in_the_template(fixture_template: dict) -> None:
    resources = fixture_template["Resources"].values()
    (schedule,) = [r["Properties"] for r in resources if r["Type"] == "AWS::Scheduler::Schedule"]
    assert schedule["ScheduleExpression"] == "cron(0 3 * * ? *)" and schedule["ScheduleExpressionTimezone"] == "UTC"
    target = schedule["Target"]
    assert target["Input"] == "{}" and target["RetryPolicy"]["MaximumRetryAttempts"] == 3
    assert "DeadLetterConfig" in target and "Rebuild" in json.dumps(target["Arn"])
    (dashboard,) = [r["Properties"] for r in resources if r["Type"] == "AWS::CloudWatch::Dashboard"]
    body = json.dumps(dashboard["DashboardBody"])
    assert "StepFailed" in body and "StepDuration" in body and "Failures by step" in body
    alarms = [r["Properties"]["AlarmName"] for r in resources if r["Type"] == "AWS::CloudWatch::Alarm"]
    assert {"openstack-aws-install-failed", "openstack-aws-rebuild-failed", "openstack-aws-rebuild-not-started"} <= set(alarms)
