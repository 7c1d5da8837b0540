"""Polling a step: InProgress until every node succeeded; a failure names the node and carries the output tail."""

from __future__ import annotations

import json
import time

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
