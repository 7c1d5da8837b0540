"""Lambda: source/dest check off on the controller's eth2; returns eth1's MAC and address."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from common.aws import client
from common.models import parse
from common.runtime import logger, powertools_handler
from ec2_fix.logic import Ec2FixEvent, apply_fix


@powertools_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    result = apply_fix(client("ec2"), parse(Ec2FixEvent, event))
    logger.info("EC2 network fix applied", extra=result)
    return result
