"""Lambda: poll the nightly rebuild's replace-root-volume tasks."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from common.aws import client
from common.models import parse
from common.runtime import logger, powertools_handler
from root_volume_status.logic import RootVolumeStatusEvent, root_volume_status


@powertools_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    result = root_volume_status(client("ec2"), parse(RootVolumeStatusEvent, event))
    logger.info("root volume replacement status", extra={"states": result["states"]})
    return result
