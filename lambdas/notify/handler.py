"""Lambda: publish the run's summary (success, or the failed step with its output tail) to the SNS topic."""

from __future__ import annotations

import os
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from common.aws import client
from common.models import parse
from common.runtime import logger, metrics, powertools_handler
from notify.logic import NotifyEvent, notify


@powertools_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    parsed = parse(NotifyEvent, event)
    result = notify(client("sns"), os.environ["TOPIC_ARN"], parsed)
    metrics.add_metric(name=f"Run{parsed.outcome.capitalize()}", unit=MetricUnit.Count, value=1)
    logger.info("notification sent", extra=result)
    return result
