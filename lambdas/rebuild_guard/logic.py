"""The rebuild's first state: accept its input and refuse while an install or another rebuild is running.

Replacing root volumes under a running install would leave both half done; the operator is told which execution
is running and to wait for it or stop it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from common.errors import InvalidInput, OrchestrationError
from common.executions import running_executions

#: "Comment" is what the Step Functions console pre-fills; the rebuild takes no other key.
REBUILD_KEYS = ("Comment",)


class AlreadyRunning(OrchestrationError):
    """An install or rebuild execution is running on the same nodes."""


@dataclass(frozen=True)
class RebuildGuardEvent:
    input: Any
    execution_id: str  # this rebuild's own execution ARN ($$.Execution.Id)
    install_arn: str
    rebuild_arn: str


def guard(sfn: Any, event: RebuildGuardEvent) -> dict[str, Any]:
    if not isinstance(event.input, Mapping):
        raise InvalidInput(f"the rebuild's input must be a JSON object such as {{}}, got {type(event.input).__name__}")
    unknown = sorted(set(event.input) - set(REBUILD_KEYS))
    if unknown:
        raise InvalidInput(
            f"unknown input key {', '.join(map(repr, unknown))}: the rebuild takes {{}} (keys accepted: "
            f"{', '.join(REBUILD_KEYS)}); to run install steps selectively start the install machine instead"
        )
    busy = [arn for arn in running_executions(sfn, event.install_arn)]
    busy += [arn for arn in running_executions(sfn, event.rebuild_arn) if arn != event.execution_id]
    if busy:
        raise AlreadyRunning(
            f"refusing to rebuild while {busy[0]} is running: wait for it to end (openstack-aws watch) or stop it "
            "in the Step Functions console, then start the rebuild again"
        )
    return {"accepted": True}
