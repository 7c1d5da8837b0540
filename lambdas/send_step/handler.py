"""Lambda: SendCommand of a step's document to a role's instances; returns the command reference to poll."""

from __future__ import annotations

import os
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from common.aws import client
from common.models import parse
from common.runtime import logger, powertools_handler
from send_step.logic import SendStepEvent, send_step


@powertools_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    ref = send_step(client("ssm"), parse(SendStepEvent, event), os.environ.get("COMMAND_LOG_GROUP", ""))
    logger.info("step sent", extra={"step": ref.step, "role": ref.role, "command_id": ref.command_id,
                                    "instances": ref.instances})  # fmt: skip
    return ref.as_dict()
