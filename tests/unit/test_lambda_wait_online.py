"""Waiting for SSM: which nodes are Online, and a clear error once the allowed wait is over."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from tests.aws_fakes import FakeSsm
from tests.lambda_runtime import invoke

HANDLER = "wait_online.handler.handler"
INSTANCES = {"i-1": "controller", "i-2": "compute1"}


def started(seconds_ago: float) -> str:
    return datetime.fromtimestamp(time.time() - seconds_ago, UTC).isoformat().replace("+00:00", "Z")


def test_reports_offline_nodes_while_within_the_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    FakeSsm(online={"i-1"}).install(monkeypatch)
    result, failed = invoke(HANDLER, {"instances": INSTANCES, "started": started(60), "max_wait_seconds": 1800})
    assert not failed
    assert result["all_online"] is False and result["offline"] == ["compute1"]


def test_all_online(monkeypatch: pytest.MonkeyPatch) -> None:
    FakeSsm(online={"i-1", "i-2"}).install(monkeypatch)
    result, _ = invoke(HANDLER, {"instances": INSTANCES, "started": started(5), "max_wait_seconds": 1800})
    assert result == {"all_online": True, "offline": [], "waited_seconds": 5}


def test_past_the_wait_fails_naming_the_node_and_what_to_check(monkeypatch: pytest.MonkeyPatch) -> None:
    FakeSsm(online={"i-1"}).install(monkeypatch)
    result, failed = invoke(HANDLER, {"instances": INSTANCES, "started": started(1801), "max_wait_seconds": 1800})
    assert failed and result["errorType"] == "NodesNotOnline"
    message = result["errorMessage"]
    assert "compute1 (i-2)" in message and "controller" not in message.split(";")[0]
    assert "system log" in message and "AmazonSSMManagedInstanceCore" in message


def test_throttling_becomes_a_retryable_error(monkeypatch: pytest.MonkeyPatch) -> None:
    FakeSsm(online={"i-1"}, throttle={"DescribeInstanceInformation": 1}).install(monkeypatch)
    result, failed = invoke(HANDLER, {"instances": INSTANCES, "started": started(1), "max_wait_seconds": 1800})
    assert failed and result["errorType"] == "TransientError"


def test_a_ping_from_before_the_root_volume_swap_does_not_count(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeSsm(online={"i-1", "i-2"}, last_ping=datetime.fromtimestamp(time.time() - 600, UTC)).install(monkeypatch)
    event = {"instances": INSTANCES, "started": started(5), "max_wait_seconds": 1800, "online_since": started(60)}
    result, _ = invoke(HANDLER, event)
    assert result["all_online"] is False and result["offline"] == ["compute1", "controller"]
    fake.last_ping = datetime.now(UTC)
    result, _ = invoke(HANDLER, event)
    assert result["all_online"] is True
