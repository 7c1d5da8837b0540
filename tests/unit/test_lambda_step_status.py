"""Polling a step: InProgress until every node succeeded; a failure names the node and carries the output tail."""

from __future__ import annotations

import json
import time

import boto3
import pytest
from moto import mock_aws

from tests.aws_fakes import FakeSsm, Outcome
from tests.lambda_runtime import invoke, module

SEND, STATUS = "send_step.handler.handler", "step_status.handler.handler"
INSTANCES = {"i-1": "object1", "i-2": "object2"}


@pytest.fixture
def ssm(monkeypatch: pytest.MonkeyPatch) -> FakeSsm:
    monkeypatch.setenv("COMMAND_LOG_GROUP", "/osa/run-command")
    with mock_aws():
        yield FakeSsm().install(monkeypatch)


def send(timeout: int = 600) -> dict:
    ref, failed = invoke(SEND, {"step": "swift-storage", "role": "object", "document": "osa-swift-storage",
                                "instances": INSTANCES, "timeout_seconds": timeout})  # fmt: skip
    assert not failed, ref
    return ref


def test_in_progress_then_success_with_metrics(ssm: FakeSsm, capsys: pytest.CaptureFixture[str]) -> None:
    ssm.outcomes["osa-swift-storage"] = Outcome(polls=2)
    ref = send()
    assert invoke(STATUS, ref)[0]["status"] == "InProgress"
    assert invoke(STATUS, ref)[0]["counts"] == {"InProgress": 2}
    result, failed = invoke(STATUS, ref)
    assert not failed and result["status"] == "Success" and result["counts"] == {"Success": 2}
    metrics = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    names = {m["Name"] for doc in metrics for d in doc["_aws"]["CloudWatchMetrics"] for m in d["Metrics"]}
    assert {"StepSucceeded", "StepDuration"} <= names
    assert any(doc.get("step") == "swift-storage" for doc in metrics)


def test_a_failed_node_raises_with_node_exit_code_and_tail(ssm: FakeSsm) -> None:
    lines = "".join(f"line {n}\n" for n in range(100))
    ssm.outcomes["osa-swift-storage"] = Outcome(polls=0, fail_on=("i-2",), stdout=lines,
                                                stderr="ERROR: swift-ring-builder failed\n", exit_code=3)  # fmt: skip
    result, failed = invoke(STATUS, send())
    assert failed and result["errorType"] == "StepFailed"
    message = result["errorMessage"]
    assert message.startswith("step 'swift-storage' failed on node object2 (i-2, role object): Failed (exit code 3)")
    assert "ERROR: swift-ring-builder failed" in message and "line 99" in message and "line 50\n" not in message
    assert "/osa/run-command" in message and '{"from_step": "swift-storage"}' in message


def _long_failure(ssm: FakeSsm) -> str:
    """A failure whose stdout (about 39,000 characters) is longer than the 24,000 GetCommandInvocation returns."""
    lines = "".join(f"progress line {n:05d} of a long step\n" for n in range(1200))
    ssm.outcomes["osa-swift-storage"] = Outcome(polls=0, fail_on=("i-2",), stdout=lines + "ERROR: the real cause\n")
    return lines + "ERROR: the real cause\n"


def test_a_long_outputs_tail_comes_from_the_log_stream_not_ssms_truncated_copy(ssm: FakeSsm) -> None:
    stdout = _long_failure(ssm)
    ref = send()
    logs = boto3.client("logs")
    logs.create_log_group(logGroupName="/osa/run-command")
    for kind, text in (("stdout", stdout), ("stderr", "")):
        stream = f"{ref['command_id']}/i-2/swift-storage/{kind}"
        logs.create_log_stream(logGroupName="/osa/run-command", logStreamName=stream)
        now_ms = int(time.time() * 1000)  # Logs refuses events older than 14 days
        events = [{"timestamp": now_ms + n, "message": line} for n, line in enumerate(text.splitlines())]
        if events:
            logs.put_log_events(logGroupName="/osa/run-command", logStreamName=stream, logEvents=events)
    result, failed = invoke(STATUS, ref)
    assert failed and len(stdout) > 24_000
    message = result["errorMessage"]
    assert "ERROR: the real cause" in message and "progress line 01199" in message
    assert "progress line 00600" not in message and "--- stdout (last lines) ---" in message


def test_without_a_log_stream_the_ssm_copy_is_used_and_said_to_be_cut(ssm: FakeSsm) -> None:
    _long_failure(ssm)
    boto3.client("logs").create_log_group(logGroupName="/osa/run-command")
    result, failed = invoke(STATUS, send())
    message = result["errorMessage"]
    assert failed and "ERROR: the real cause" not in message  # beyond SSM's 24,000 characters
    assert "--- stdout (last lines of the first 24,000 characters, all SSM keeps) ---" in message


def test_a_command_running_past_its_deadline_fails(ssm: FakeSsm, monkeypatch: pytest.MonkeyPatch) -> None:
    ssm.outcomes["osa-swift-storage"] = Outcome(polls=99)
    ref = send(timeout=60)
    clock = module("common.clock")
    monkeypatch.setattr(clock, "now", lambda: time.time() + 3600)
    result, failed = invoke(STATUS, ref)
    assert failed and result["errorType"] == "StepFailed" and "still not finished 660 s after" in result["errorMessage"]


def test_tail_keeps_the_last_lines_within_the_limit() -> None:
    tail = module("step_status.logic").tail
    assert tail("a\nb\nc\n", lines=2) == "b\nc"
    assert len(tail("x" * 10_000)) == 1500
