"""Run the Lambda handlers in-process as the Lambda runtime would: `lambdas/` on sys.path, a context object,
and an unhandled exception turned into the runtime's error payload ({"errorType", "errorMessage"})."""

from __future__ import annotations

import importlib
import json
import os
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

LAMBDAS = Path(__file__).resolve().parent.parent / "lambdas"
if str(LAMBDAS) not in sys.path:
    sys.path.insert(0, str(LAMBDAS))  # handlers import `common.*` and their own folder, as in the runtime

# Before any handler module is imported: Powertools reads these when its objects are created.
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "OpenStackOnAws")
os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "orchestration-test")
os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
os.environ.setdefault("AWS_DEFAULT_REGION", "eu-west-1")


@dataclass
class FakeContext:
    function_name: str = "test-function"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = "arn:aws:lambda:eu-west-1:123456789012:function:test-function"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


def handler_function(handler: str) -> Any:
    module, name = handler.rsplit(".", 1)
    return getattr(importlib.import_module(module), name)


def invoke(handler: str, event: Any, function_name: str = "test-function") -> tuple[Any, bool]:
    """(result, failed): the handler's return value, or the runtime's error payload when it raised."""
    try:
        return handler_function(handler)(event, FakeContext(function_name=function_name)), False
    except Exception as error:
        return {"errorType": type(error).__name__, "errorMessage": str(error), "stackTrace": []}, True


def invoke_bytes(handler: str, body: bytes | str, function_name: str) -> tuple[bytes, bool]:
    result, failed = invoke(handler, json.loads(body or b"{}"), function_name)
    return json.dumps(result).encode(), failed


def module(name: str) -> Any:
    """Import a module of `lambdas/` by its runtime name (e.g. "step_status.logic"), after the path is set."""
    return importlib.import_module(name)


# Create Powertools' logger now, outside any test's output capture: it binds sys.stdout when created.
LOGGER = module("common.runtime").logger
