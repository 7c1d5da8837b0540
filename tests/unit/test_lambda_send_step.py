"""Sending a step: the document to the role's instances, output to CloudWatch, no parameters (so no secret)."""

from __future__ import annotations

import time

import pytest
from moto import mock_aws

from tests.aws_fakes import FakeSsm
from tests.lambda_runtime import invoke

HANDLER = "send_step.handler.handler"
EVENT = {"step": "keystone", "role": "controller", "document": "osa-keystone", "instances": {"i-1": "controller"},
         "timeout_seconds": 1200}  # fmt: skip


@pytest.fixture
def ssm(monkeypatch: pytest.MonkeyPatch) -> FakeSsm:
    monkeypatch.setenv("COMMAND_LOG_GROUP", "/osa/run-command")
    with mock_aws():
        yield FakeSsm().install(monkeypatch)


def test_sends_the_document_with_output_to_the_log_group_and_no_parameters(ssm: FakeSsm) -> None:
    result, failed = invoke(HANDLER, EVENT)
    assert not failed, result
    (sent,) = ssm.sent
    assert sent["DocumentName"] == "osa-keystone" and sent["DocumentVersion"] == "$LATEST"
    assert sent["InstanceIds"] == ["i-1"] and "Parameters" not in sent
    assert sent["CloudWatchOutputConfig"] == {"CloudWatchLogGroupName": "/osa/run-command",
                                              "CloudWatchOutputEnabled": True}  # fmt: skip
    assert result["command_id"] in ssm.commands and result["instances"] == {"i-1": "controller"}
    assert result["deadline"] - result["sent_at"] == 1200 + 600
    assert abs(result["sent_at"] - time.time()) < 5


def test_throttled_send_is_reported_as_transient(ssm: FakeSsm) -> None:
    ssm.throttle["SendCommand"] = 1
    result, failed = invoke(HANDLER, EVENT)
    assert failed and result["errorType"] == "TransientError" and "Rate exceeded" in result["errorMessage"]
    assert invoke(HANDLER, EVENT)[1] is False  # the retry (the state machine's) succeeds


def test_a_payload_without_instances_is_a_wiring_error() -> None:
    result, failed = invoke(HANDLER, {k: v for k, v in EVENT.items() if k != "instances"})
    assert failed and result["errorType"] == "EventError" and "instances" in result["errorMessage"]
