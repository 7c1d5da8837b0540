"""The SNS summary: a success lists the steps; a failure carries the step, node and output tail."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import boto3
import pytest
from moto import mock_aws

from tests.lambda_runtime import invoke

HANDLER = "notify.handler.handler"
EXECUTION = "arn:aws:states:eu-west-1:123456789012:execution:osa-install:deploy-1"


@pytest.fixture
def queue(monkeypatch: pytest.MonkeyPatch):
    with mock_aws():
        sns, sqs = boto3.client("sns"), boto3.client("sqs")
        topic = sns.create_topic(Name="osa")["TopicArn"]
        url = sqs.create_queue(QueueName="q")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn)
        monkeypatch.setenv("TOPIC_ARN", topic)

        def received() -> list[dict]:
            messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
            return [json.loads(m["Body"]) for m in messages]

        yield received


def started(minutes_ago: int) -> str:
    return datetime.fromtimestamp(time.time() - 60 * minutes_ago, UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def test_success_summary(queue) -> None:
    event = {"outcome": "SUCCEEDED", "project": "osa", "execution_arn": EXECUTION, "started": started(42),
             "steps": ["base", "keystone"]}  # fmt: skip
    assert invoke(HANDLER, event)[1] is False
    (message,) = queue()
    assert message["Subject"] == "[osa] OpenStack install succeeded"
    assert "2 step(s) in 42 min: base, keystone" in message["Message"]
    assert "#/v2/executions/details/" + EXECUTION in message["Message"]


def test_failure_summary_unwraps_the_lambda_error(queue) -> None:
    cause = json.dumps({"errorType": "StepFailed", "errorMessage": "step 'keystone' failed on node controller "
                        "(i-1, role controller): Failed (exit code 1)\n--- stderr (last lines) ---\nboom"})
    event = {"outcome": "FAILED", "project": "osa", "execution_arn": EXECUTION, "started": started(3),
             "error": {"Error": "StepFailed", "Cause": cause}}  # fmt: skip
    result, failed = invoke(HANDLER, event)
    assert not failed, result
    (message,) = queue()
    assert message["Subject"] == "[osa] OpenStack install FAILED: StepFailed"
    assert "step 'keystone' failed on node controller" in message["Message"] and "boom" in message["Message"]


def test_failure_with_a_plain_cause(queue) -> None:
    event = {"outcome": "FAILED", "project": "osa", "execution_arn": EXECUTION, "started": started(0),
             "error": {"Error": "States.Timeout", "Cause": "the state timed out"}}  # fmt: skip
    invoke(HANDLER, event)
    (message,) = queue()
    assert "Error: States.Timeout\nthe state timed out" in message["Message"]
