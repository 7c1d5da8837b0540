"""boto3 clients for the handlers and the mapping of AWS-side failures to `TransientError`."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError, ConnectionError, ReadTimeoutError

from .errors import TransientError

#: Error codes that mean "try again later", across EC2, SSM, SNS and Step Functions.
TRANSIENT_CODES = frozenset({
    "Throttling", "ThrottlingException", "ThrottledException", "RequestLimitExceeded", "TooManyRequestsException",
    "RequestThrottled", "RequestThrottledException", "ServiceUnavailable", "ServiceUnavailableException",
    "InternalError", "InternalFailure", "InternalServerError", "InternalServerErrorException", "Unavailable",
})  # fmt: skip
_CONFIG = Config(retries={"mode": "standard"}, connect_timeout=5, read_timeout=20)

P = ParamSpec("P")
R = TypeVar("R")


def client(service: str) -> Any:
    """A client with standard retries (throttling included) before an error reaches the state machine."""
    return boto3.client(service, config=_CONFIG)  # type: ignore[call-overload]


def is_transient(error: Exception) -> bool:
    if isinstance(error, (ConnectionError, ReadTimeoutError)):
        return True
    if isinstance(error, ClientError):
        code = error.response.get("Error", {}).get("Code", "")
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        return code in TRANSIENT_CODES or status >= 500
    return False


def transient_errors(function: Callable[P, R]) -> Callable[P, R]:
    """Re-raise AWS throttling and server-side errors as `TransientError`, which the state machine retries."""

    @functools.wraps(function)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return function(*args, **kwargs)
        except Exception as error:
            if is_transient(error):
                raise TransientError(f"AWS API error, will be retried: {error}") from error
            raise

    return wrapper
