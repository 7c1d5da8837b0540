"""Powertools for every orchestration handler: one Logger, Tracer and Metrics, one decorator.

`powertools_handler` gives each handler the Lambda context in its logs, an X-Ray subsegment, metrics flushed as
EMF, and AWS-side failures turned into `TransientError`. Handlers log names and IDs only, never secret values
(no handler reads the secret).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext

from .aws import transient_errors

logger = Logger()
tracer = Tracer()
metrics = Metrics()

Handler = Callable[[dict[str, Any], LambdaContext], Any]


def _flush_metrics(function: Handler) -> Handler:
    """Like Metrics.log_metrics, but silent when a handler had nothing to measure (most polls emit nothing)."""

    @functools.wraps(function)
    def wrapper(event: dict[str, Any], context: LambdaContext) -> Any:
        try:
            return function(event, context)
        finally:
            if metrics.metric_set:
                metrics.flush_metrics()
            else:
                metrics.clear_metrics()

    return wrapper


def powertools_handler(function: Handler) -> Handler:
    wrapped = transient_errors(function)
    wrapped = tracer.capture_lambda_handler(wrapped, capture_response=False)
    wrapped = _flush_metrics(wrapped)
    return logger.inject_lambda_context(wrapped, clear_state=True)
