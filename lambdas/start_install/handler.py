"""Custom resource (CDK Provider framework, on_event): starts the install state machine after deploy."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from common.aws import client
from common.runtime import logger, powertools_handler
from start_install.logic import on_event


@powertools_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    result = on_event(client("stepfunctions"), event)
    logger.info("install trigger", extra={"request": event["RequestType"], **result["Data"]})
    return result
