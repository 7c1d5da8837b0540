"""Lambda: the rebuild machine's input check and "already running" guard."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from common.aws import client
from common.models import parse
from common.runtime import powertools_handler
from rebuild_guard.logic import RebuildGuardEvent, guard


@powertools_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return guard(client("stepfunctions"), parse(RebuildGuardEvent, event))
