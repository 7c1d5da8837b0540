"""Lambda: the status of a sent step (InProgress/Success) or StepFailed; emits step metrics when it ends."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from common.aws import client
from common.errors import StepFailed
from common.models import CommandRef, parse
from common.runtime import logger, metrics, powertools_handler
from step_status.logic import poll


@powertools_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    ref = parse(CommandRef, event)
    metrics.add_dimension(name="step", value=ref.step)
    try:
        status = poll(client("ssm"), ref, client("logs"))
    except StepFailed:
        metrics.add_metric(name="StepFailed", unit=MetricUnit.Count, value=1)
        raise
    if status.status == "Success":
        metrics.add_metric(name="StepSucceeded", unit=MetricUnit.Count, value=1)
        metrics.add_metric(name="StepDuration", unit=MetricUnit.Seconds, value=status.duration_seconds)
    logger.info("step status", extra={"step": ref.step, "role": ref.role, **status.as_dict()})
    return status.as_dict()
