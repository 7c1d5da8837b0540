"""Lambda: validate the execution input; returns {"run": {selected, enabled, from_step, only}}."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from common.models import parse
from common.runtime import logger, powertools_handler
from validate_input.logic import ValidateEvent, validate


@powertools_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    run = validate(parse(ValidateEvent, event))
    logger.info("run planned", extra={"selected": run["selected"]})
    return {"run": run}
