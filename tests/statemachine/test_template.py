"""The orchestration stack's template: documents from steps/, least privilege, logging, alarm, trigger, outputs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aws_cdk.assertions import Match

from stacks.constructs.ssm_documents import DOCUMENT_CONTENT_LIMIT
from stacks.documents_stack import pack
from stacks.step_catalog import STEPS_DIR, compose_script, load_steps
from tests.conftest import SynthesizedApp
from tests.statemachine.conftest import FIXTURE_EMAIL, FIXTURE_STEPS


def resources(template: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [r["Properties"] for r in template["Resources"].values() if r["Type"] == kind]


def statements(template: dict[str, Any]) -> list[dict[str, Any]]:
    found = []
    for policy in resources(template, "AWS::IAM::Policy"):
        for statement in policy["PolicyDocument"]["Statement"]:
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            found.append({**statement, "Action": actions})
    return found


def with_action(template: dict[str, Any], action: str) -> list[dict[str, Any]]:
    return [s for s in statements(template) if action in s["Action"]]


@pytest.fixture(scope="module")
def real(synth_app: SynthesizedApp) -> dict[str, Any]:
    return synth_app.assembly.get_stack_by_name(synth_app.stacks.orchestration.stack_name).template


def documents_of(app: SynthesizedApp) -> dict[str, dict[str, Any]]:
    """Every SSM document of the app (they live in the `<prefix>-steps-N` stacks), by name."""
    found = {}
    for stack in app.stacks.documents:
        template = app.assembly.get_stack_by_name(stack.stack_name).template
        found.update({d["Name"]: d for d in resources(template, "AWS::SSM::Document")})
    return found


def test_compose_script_is_the_sorted_library_then_the_step() -> None:
    step = next(s for s in load_steps(FIXTURE_STEPS) if s.name == "keystone")
    common, openstack = (FIXTURE_STEPS / "lib" / name for name in ("common.sh", "openstack.sh"))
    assert compose_script(step) == common.read_text() + openstack.read_text() + step.body
    assert compose_script(step).startswith("#!/usr/bin/env bash\n")


@pytest.mark.parametrize("steps_dir", [FIXTURE_STEPS, STEPS_DIR], ids=["fixture", "real"])
def test_every_step_has_a_document_carrying_its_composed_script(
    steps_dir: Any, fixture_app: SynthesizedApp, synth_app: SynthesizedApp
) -> None:
    documents = documents_of(fixture_app if steps_dir == FIXTURE_STEPS else synth_app)
    steps = load_steps(steps_dir)
    assert sorted(documents) == sorted(f"openstack-aws-{s.name}" for s in steps)
    for step in steps:
        document = documents[f"openstack-aws-{step.name}"]
        assert document["DocumentType"] == "Command" and document["UpdateMethod"] == "NewVersion"
        content = document["Content"]
        assert content["schemaVersion"] == "2.2" and len(json.dumps(content)) <= DOCUMENT_CONTENT_LIMIT
        assert content["parameters"]["executionTimeout"]["default"] == str(step.timeout)
        (main,) = content["mainSteps"]
        assert main["action"] == "aws:runShellScript" and main["inputs"]["timeoutSeconds"] == "{{ executionTimeout }}"
        assert "\n".join(main["inputs"]["runCommand"]) + "\n" == compose_script(step)


def test_command_output_goes_to_a_log_group_with_retention_the_nodes_may_write(real: dict[str, Any]) -> None:
    groups = {g["LogGroupName"]: g for g in resources(real, "AWS::Logs::LogGroup") if "LogGroupName" in g}
    assert groups["/openstack-aws/run-command"]["RetentionInDays"] == 30
    (write,) = with_action(real, "logs:PutLogEvents")
    assert "CommandLogs" in json.dumps(write["Resource"])
    (node_policy,) = [p for p in resources(real, "AWS::IAM::Policy") if "NodeCommandOutput" in p["PolicyName"]]
    assert "Fn::ImportValue" in json.dumps(node_policy["Roles"])  # attached to the nodes stack's role


def test_step_status_may_read_the_command_log_streams_for_a_failures_tail(real: dict[str, Any]) -> None:
    (read,) = with_action(real, "logs:GetLogEvents")
    assert "logs:DescribeLogStreams" in read["Action"] and "CommandLogs" in json.dumps(read["Resource"])
    (policy,) = [p for p in resources(real, "AWS::IAM::Policy") if read in p["PolicyDocument"]["Statement"]]
    assert "StepStatus" in json.dumps(policy["Roles"])


def test_send_command_only_on_the_projects_documents_and_tagged_instances(real: dict[str, Any]) -> None:
    sends = with_action(real, "ssm:SendCommand")
    assert len(sends) == 2
    documents, instances = sorted(sends, key=lambda s: "Condition" in s)
    text = json.dumps(documents["Resource"])
    assert "document/openstack-aws-base" in text and "*" not in text
    assert "instance/*" in json.dumps(instances["Resource"])
    assert instances["Condition"] == {"StringEquals": {"ssm:resourceTag/openstack-aws:project": "openstack-aws"}}


def test_eni_changes_only_on_the_projects_enis(real: dict[str, Any]) -> None:
    (modify,) = with_action(real, "ec2:ModifyNetworkInterfaceAttribute")
    assert "network-interface/*" in json.dumps(modify["Resource"])
    assert modify["Condition"] == {"StringEquals": {"aws:ResourceTag/openstack-aws:project": "openstack-aws"}}


def test_state_machines_log_all_without_execution_data_and_trace(real: dict[str, Any]) -> None:
    machines = resources(real, "AWS::StepFunctions::StateMachine")
    assert sorted(m["StateMachineName"] for m in machines) == ["openstack-aws-install", "openstack-aws-rebuild"]
    for machine in machines:
        assert machine["StateMachineType"] == "STANDARD"
        assert machine["LoggingConfiguration"]["Level"] == "ALL"
        assert machine["LoggingConfiguration"]["IncludeExecutionData"] is False
        assert machine["TracingConfiguration"] == {"Enabled": True}


def test_failed_executions_alarm_to_the_topic_with_email_only_when_configured(
    real: dict[str, Any], fixture_template: dict[str, Any]
) -> None:
    failed = [a for a in resources(real, "AWS::CloudWatch::Alarm") if a["MetricName"] == "ExecutionsFailed"]
    assert sorted(a["AlarmName"] for a in failed) == ["openstack-aws-install-failed", "openstack-aws-rebuild-failed"]
    for alarm in failed:
        assert alarm["Threshold"] == 1 and "Notifications" in json.dumps(alarm["AlarmActions"])
    assert resources(real, "AWS::SNS::Subscription") == []
    (subscription,) = resources(fixture_template, "AWS::SNS::Subscription")
    assert subscription["Protocol"] == "email" and subscription["Endpoint"] == FIXTURE_EMAIL


def test_the_topic_policy_lets_the_projects_alarms_publish_and_still_enforces_tls(synth_app: SynthesizedApp) -> None:
    template = synth_app.template(synth_app.stacks.orchestration)
    alarm_arn = {"Fn::Join": ["", Match.array_with([Match.string_like_regexp(r":alarm:openstack-aws-\*$")])]}
    template.has_resource_properties("AWS::SNS::TopicPolicy", {"PolicyDocument": {"Statement": Match.array_with([
        Match.object_like({"Effect": "Deny", "Condition": {"Bool": {"aws:SecureTransport": "false"}}}),
        Match.object_like({
            "Effect": "Allow", "Action": "sns:Publish", "Principal": {"Service": "cloudwatch.amazonaws.com"},
            "Condition": {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}},
                          "ArnLike": {"aws:SourceArn": alarm_arn}},
        }),
    ])}})  # fmt: skip
    # The condition covers every alarm that notifies the topic.
    alarms = template.find_resources("AWS::CloudWatch::Alarm")
    to_topic = [a["Properties"]["AlarmName"] for a in alarms.values() if "Notifications" in json.dumps(a)]
    assert len(to_topic) == 3 and all(name.startswith("openstack-aws-") for name in to_topic)


def test_documents_stacks_stay_under_the_template_limit_and_come_before_the_machine(synth_app: SynthesizedApp) -> None:
    documents = synth_app.stacks.documents
    for stack in documents:
        path = Path(synth_app.assembly.directory) / synth_app.assembly.get_stack_by_name(stack.stack_name).template_file
        assert path.stat().st_size < 1_000_000
    assert set(documents) <= set(synth_app.stacks.orchestration.dependencies)


def test_documents_are_packed_into_as_many_stacks_as_their_size_needs() -> None:
    steps = load_steps(FIXTURE_STEPS)
    assert pack(steps) == [steps]
    one_each = pack(steps, budget=1)
    assert one_each == [[s] for s in steps]


def test_the_install_starts_after_deploy_and_the_console_url_is_an_output(real: dict[str, Any]) -> None:
    (trigger,) = [r for r in real["Resources"].values() if r["Type"] == "AWS::CloudFormation::CustomResource"]
    assert "Ref" in json.dumps(trigger["Properties"]["StateMachineArn"])
    assert len(trigger["Properties"]["Nodes"]) == 5  # a replaced node starts a new install
    assert any(d.startswith("NodeCommandOutput") for d in trigger["DependsOn"])  # output can be written at once
    url = json.dumps(real["Outputs"]["InstallConsoleUrl"]["Value"])
    assert "console.aws.amazon.com/states/home?region=" in url and "#/statemachines/view/" in url
