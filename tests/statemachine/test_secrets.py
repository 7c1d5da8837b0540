"""No secret value travels through the orchestration: not in a SendCommand, a log line, a message or a history.

The project's secret is seeded in moto as the stack seeds it; then a successful and a failing run execute, and
every API call the handlers made, every line they logged, every SNS message and the whole execution history are
searched for every secret value.
"""

from __future__ import annotations

import io
import json
import logging

import boto3
import pytest

from lambdas.common.secret_keys import SECRET_KEYS
from tests.aws_fakes import Outcome
from tests.lambda_runtime import LOGGER, module
from tests.statemachine.harness import Harness

pytestmark = pytest.mark.statemachine


def test_no_secret_value_in_any_parameter_log_line_or_history(
    harness: Harness, capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    secrets = boto3.client("secretsmanager")
    arn = secrets.create_secret(Name="openstack-aws-passwords", SecretString="{}")["ARN"]
    module("secret_seed.logic").seed_secret(secrets, arn, list(SECRET_KEYS))
    values = list(json.loads(secrets.get_secret_value(SecretId=arn)["SecretString"]).values())
    assert len(values) == len(SECRET_KEYS) and all(len(v) >= 16 for v in values)

    logged = io.StringIO()
    handler = logging.StreamHandler(logged)
    handler.setFormatter(LOGGER.registered_formatter)
    LOGGER.addHandler(handler)
    try:
        succeeded = harness.run({})
        controller = harness.nodes["controller"]["instance_id"]
        harness.ssm.outcomes["openstack-aws-verify"] = Outcome(polls=0, fail_on=(controller,))
        failed = harness.run({"only": ["verify"]})
    finally:
        LOGGER.removeHandler(handler)
    assert (succeeded.status, failed.status) == ("SUCCEEDED", "FAILED")

    handler_calls = [c for c in harness.ssm.api_calls if c[0] != "secretsmanager"]
    assert any(op == "SendCommand" for _, op, _ in handler_calls) and harness.published()
    out, err = capfd.readouterr()
    assert '"message":"step sent"' in logged.getvalue()  # the handlers' log lines were captured
    haystack = "\n".join([
        json.dumps(handler_calls, default=str), logged.getvalue(), out, err, caplog.text,
        json.dumps([succeeded.events, failed.events, succeeded.output], default=str),
    ])  # fmt: skip
    leaked = [SECRET_KEYS[i] for i, value in enumerate(values) if value in haystack]
    assert leaked == []
    assert all("Parameters" not in params for params in harness.ssm.sent)
