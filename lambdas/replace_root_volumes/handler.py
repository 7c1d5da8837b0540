"""Lambda: restore every node's root volume to its launch state (nightly rebuild)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from common.aws import client
from common.models import parse
from common.runtime import logger, powertools_handler
from replace_root_volumes.logic import ReplaceRootVolumesEvent, replace_root_volumes


@powertools_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    result = replace_root_volumes(client("ec2"), parse(ReplaceRootVolumesEvent, event))
    logger.info("root volume replacements started", extra={"tasks": result["tasks"]})
    return result
