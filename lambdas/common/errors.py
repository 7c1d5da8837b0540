"""Errors the state machine reacts to by name (a Lambda's errorType is the exception's class name).

Retry policies match `TransientError`; a Catch matches everything else and reports the message, so every message
here is written for the operator who reads it in an e-mail or in the Step Functions console.
"""

from __future__ import annotations


class OrchestrationError(Exception):
    """Base class: a failure with an operator-facing message."""


class TransientError(OrchestrationError):
    """An AWS API throttled or failed on its side; the state machine retries with backoff."""


class InvalidInput(OrchestrationError):
    """The execution input is not one the machine accepts (unknown key, unknown step, wrong type)."""


class NodesMissing(OrchestrationError):
    """Discovery found fewer nodes (instances with the project's tags) than the deployment has."""


class NodesNotOnline(OrchestrationError):
    """Some nodes never registered with SSM within the allowed time."""


class StepFailed(OrchestrationError):
    """An install step failed, timed out or could not be delivered on a node."""
