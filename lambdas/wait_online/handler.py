"""Lambda: report which nodes SSM sees Online; fail with a clear error once the allowed wait is over."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from common.aws import client
from common.models import parse
from common.runtime import logger, powertools_handler
from wait_online.logic import WaitOnlineEvent, check_online


@powertools_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    result = check_online(client("ssm"), parse(WaitOnlineEvent, event))
    logger.info("SSM online check", extra=result)
    return result
