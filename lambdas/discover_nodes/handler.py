"""Lambda: the project's nodes by tag (instances per role, ENIs per node)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from common.aws import client
from common.models import parse
from common.runtime import logger, powertools_handler
from discover_nodes.logic import DiscoverEvent, discover


@powertools_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    found = discover(client("ec2"), parse(DiscoverEvent, event))
    logger.info("nodes discovered", extra={"nodes": found["names"]})
    return found
