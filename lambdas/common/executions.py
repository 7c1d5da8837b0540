"""Starting a state machine execution, refusing while one is already running (install, rebuild, CLI)."""

from __future__ import annotations

import json
from typing import Any


def running_executions(sfn: Any, state_machine_arn: str) -> list[str]:
    pages = sfn.get_paginator("list_executions").paginate(stateMachineArn=state_machine_arn, statusFilter="RUNNING")
    return [e["executionArn"] for page in pages for e in page["executions"]]


def start_unless_running(sfn: Any, state_machine_arn: str, run_input: dict[str, Any], name: str) -> dict[str, Any]:
    """Start an execution, or return the running one: two installs on the same nodes would collide."""
    running = running_executions(sfn, state_machine_arn)
    if running:
        return {"started": False, "execution_arn": running[0]}
    response = sfn.start_execution(stateMachineArn=state_machine_arn, name=name, input=json.dumps(run_input))
    return {"started": True, "execution_arn": response["executionArn"]}


def stop_running(sfn: Any, state_machine_arn: str, cause: str) -> list[str]:
    stopped = running_executions(sfn, state_machine_arn)
    for arn in stopped:
        sfn.stop_execution(executionArn=arn, error="Stopped", cause=cause)
    return stopped
