"""The operator CLI against real executions of the synthesized install machine (moto engine, real handlers)."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime

import boto3
import pytest
from moto import mock_aws

from openstack_aws_cli import commands
from openstack_aws_cli.main import main
from openstack_aws_cli.progress import StepRow, progress_line
from openstack_aws_cli.resources import CliError, Resources, load_resources
from tests.aws_fakes import Outcome
from tests.statemachine.harness import Harness

PREFIX = "openstack-aws"


def clients() -> commands.Clients:
    return commands.Clients(boto3.client("stepfunctions"), boto3.client("logs"), boto3.client("ssm"),
                            boto3.client("secretsmanager"))


def resources_for(extra: dict[str, str] | None = None) -> Resources:
    (machine,) = boto3.client("stepfunctions").list_state_machines()["stateMachines"]
    return Resources(PREFIX, {"InstallStateMachineArn": machine["stateMachineArn"],
                              "CommandLogGroup": "/openstack-aws/run-command", **(extra or {})})


def table_rows(text: str) -> dict[str, tuple[str, str]]:
    rows = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[2] in ("ok", "failed", "pending", "skipped", "running"):
            rows[f"{parts[0]} {parts[1]}"] = (parts[2], parts[3])
    return rows


def test_status_shows_every_step_of_a_successful_run(harness: Harness) -> None:
    execution = harness.run({})
    assert execution.status == "SUCCEEDED"
    out = io.StringIO()
    commands.status(clients(), resources_for(), out)
    text = out.getvalue()
    assert "install: " in text and "SUCCEEDED" in text
    rows = table_rows(text)
    sent = {(step, role) for step, role in (label.split() for label in rows)}
    assert ("keystone", "controller") in sent and ("base", "object") in sent
    assert all(status == "ok" for status, _ in rows.values()), text
    assert all(seconds.isdigit() for _, seconds in rows.values())


def test_status_marks_the_failed_step_and_what_never_ran(harness: Harness) -> None:
    harness.ssm.outcomes["openstack-aws-keystone"] = Outcome(polls=1, fail_on=(harness.nodes["controller"]["instance_id"],))
    assert harness.run({}).status == "FAILED"
    out = io.StringIO()
    commands.status(clients(), resources_for(), out)
    rows = table_rows(out.getvalue())
    assert rows["keystone controller"][0] == "failed"
    assert rows["base controller"][0] == "ok"
    assert rows["verify controller"] == ("pending", "-")


def test_logs_prints_the_failed_invocations_output_from_cloudwatch(harness: Harness) -> None:
    controller = harness.nodes["controller"]["instance_id"]
    harness.ssm.outcomes["openstack-aws-keystone"] = Outcome(polls=0, fail_on=(controller,), stderr="db down\n")
    harness.run({})
    (command_id,) = [c for c, v in harness.ssm.commands.items() if v["document"] == "openstack-aws-keystone"]
    logs = boto3.client("logs")
    logs.create_log_group(logGroupName="/openstack-aws/run-command")
    stream = f"{command_id}/{controller}/aws-runShellScript/stderr"
    logs.create_log_stream(logGroupName="/openstack-aws/run-command", logStreamName=stream)
    logs.put_log_events(logGroupName="/openstack-aws/run-command", logStreamName=stream,
                        logEvents=[{"timestamp": int(datetime.now(UTC).timestamp() * 1000), "message": "keystone-manage: database unreachable"}])
    out = io.StringIO()
    commands.logs(clients(), resources_for(), out, "keystone")
    assert f"== {stream}" in out.getvalue() and "database unreachable" in out.getvalue()


def test_logs_prints_the_tail_of_a_stream_longer_than_one_page(harness: Harness) -> None:
    controller = harness.nodes["controller"]["instance_id"]
    harness.ssm.outcomes["openstack-aws-keystone"] = Outcome(polls=0, fail_on=(controller,))
    harness.run({})
    (command_id,) = [c for c, v in harness.ssm.commands.items() if v["document"] == "openstack-aws-keystone"]
    logs, group = boto3.client("logs"), "/openstack-aws/run-command"
    stream = f"{command_id}/{controller}/keystone/stdout"
    logs.create_log_group(logGroupName=group)
    logs.create_log_stream(logGroupName=group, logStreamName=stream)
    now = int(datetime.now(UTC).timestamp() * 1000)
    lines = [f"line {n}" for n in range(10_500)] + ["ERROR: the cause, at the very end"]  # GetLogEvents: 10,000 a page
    for start in range(0, len(lines), 10_000):
        logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=[
            {"timestamp": now + n, "message": line} for n, line in enumerate(lines[start:start + 10_000], start)])
    out = io.StringIO()
    commands.logs(clients(), resources_for(), out, "keystone")
    printed = out.getvalue().splitlines()
    assert printed[-1] == "ERROR: the cause, at the very end" and "line 0" not in printed
    assert printed[1].startswith(f"(only the last {commands.LOG_TAIL_EVENTS} events; all of them: aws logs")


def test_logs_falls_back_to_ssm_and_names_unknown_steps(harness: Harness) -> None:
    controller = harness.nodes["controller"]["instance_id"]
    harness.ssm.outcomes["openstack-aws-keystone"] = Outcome(polls=0, fail_on=(controller,), stderr="db down\n",
                                                             stdout="x" * 30_000)  # fmt: skip
    harness.run({})
    boto3.client("logs").create_log_group(logGroupName="/openstack-aws/run-command")
    out = io.StringIO()
    commands.logs(clients(), resources_for(), out, "keystone")
    assert f"== {controller} Failed (from SSM" in out.getvalue() and "db down" in out.getvalue()
    assert "(cut: SSM keeps only the first 24,000 characters; the rest is on the node)" in out.getvalue()
    with pytest.raises(CliError, match="no invocation of step 'glance' in the last install run"):
        commands.logs(clients(), resources_for(), io.StringIO(), "glance")


def test_watch_reports_finished_steps_and_exits_non_zero_on_failure(harness: Harness) -> None:
    harness.ssm.outcomes["openstack-aws-keystone"] = Outcome(polls=0, fail_on=(harness.nodes["controller"]["instance_id"],))
    harness.run({})
    out = io.StringIO()
    assert commands.watch(clients(), resources_for(), out, sleep=lambda s: None) == 1
    assert "failed  keystone on controller" in out.getvalue() and ": FAILED" in out.getvalue()


def test_watch_exits_zero_after_success(harness: Harness) -> None:
    harness.run({})
    out = io.StringIO()
    assert commands.watch(clients(), resources_for(), out, sleep=lambda s: None) == 0
    assert "ok  verify on controller" in out.getvalue()


def test_progress_line_counts_steps_and_shows_the_running_one() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    rows = [StepRow("base", "controller", "ok"), StepRow("infra", "controller", "running"), StepRow("keystone", "controller")]
    line = progress_line(rows, start, start.replace(minute=2, second=5))
    assert line == "step 2 of 3: infra on controller | elapsed 02:05"


@mock_aws
def test_run_and_rebuild_start_executions_and_refuse_while_one_runs() -> None:
    sfn = boto3.client("stepfunctions", region_name="eu-west-1")
    definition = json.dumps({"StartAt": "A", "States": {"A": {"Type": "Pass", "End": True}}})
    arns = {key: sfn.create_state_machine(name=key, definition=definition, roleArn="arn:aws:iam::123456789012:role/x")["stateMachineArn"]
            for key in ("InstallStateMachineArn", "RebuildStateMachineArn")}
    resources = Resources(PREFIX, arns)
    cli = commands.Clients(sfn, None, None, None)
    out = io.StringIO()
    started = commands.run(cli, resources, out, "keystone", None)
    described = sfn.describe_execution(executionArn=started)
    assert json.loads(described["input"]) == {"from_step": "keystone"}
    with pytest.raises(CliError, match="an execution is already running"):
        commands.run(cli, resources, out, None, ["verify"])
    commands.rebuild(cli, resources, out)
    assert "follow it with: openstack-aws watch" in out.getvalue()


@mock_aws
def test_endpoints_print_horizon_and_the_admin_credentials() -> None:
    secrets = boto3.client("secretsmanager", region_name="eu-west-1")
    arn = secrets.create_secret(Name="p", SecretString=json.dumps({"ADMIN_PASS": "s3cret"}))["ARN"]
    ca = "aws s3 cp s3://bucket/artifacts/public-tls-ca.crt openstack-aws-ca.pem"
    resources = Resources(PREFIX, {"SecretArn": arn, "HorizonUrl": "https://203.0.113.10/",
                                   "KeystonePublicUrl": "https://203.0.113.10:5000/v3", "PublicCaCommand": ca,
                                   "FloatingIps": "203.0.113.50=172.31.33.50 203.0.113.51=172.31.33.51"})
    out = io.StringIO()
    commands.endpoints(commands.Clients(None, None, None, secrets), resources, out)
    assert "Horizon:   https://203.0.113.10/" in out.getvalue() and "password:  s3cret" in out.getvalue()
    assert f"CA:        {ca}\n" in out.getvalue()
    assert "floating:  203.0.113.51 (OpenStack floating IP 172.31.33.51;" in out.getvalue()


@mock_aws
def test_resources_come_from_stack_outputs_and_missing_stacks_are_explained(monkeypatch: pytest.MonkeyPatch) -> None:
    cloudformation = boto3.client("cloudformation", region_name="eu-west-1")
    with pytest.raises(CliError, match="no stack named openstack-aws-network"):
        load_resources(cloudformation, PREFIX)
    template = {"Resources": {"T": {"Type": "AWS::SNS::Topic"}},
                "Outputs": {"InstallStateMachineArn": {"Value": "arn:x"}}}
    cloudformation.create_stack(StackName=f"{PREFIX}-orchestration", TemplateBody=json.dumps(template))
    resources = load_resources(cloudformation, PREFIX)
    assert resources.install_arn == "arn:x"
    with pytest.raises(CliError, match="stack output 'RebuildStateMachineArn' not found"):
        _ = resources.rebuild_arn
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    assert main(["--prefix", "nothing-here", "status"]) == 2
