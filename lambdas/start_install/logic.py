"""Custom resource: start the install when `cdk deploy` creates (or replaces) the nodes.

Create starts a run with `{}`; Update starts one only when the node instances changed; Delete stops a running
install (its nodes are going away). A run already in progress is never doubled.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from common.executions import start_unless_running, stop_running

PHYSICAL_ID = "openstack-aws-install-trigger"  # stable: a new ID would make CloudFormation delete the old one


def execution_name() -> str:
    return f"deploy-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}-{uuid.uuid4().hex[:6]}"


def on_event(sfn: Any, event: dict[str, Any]) -> dict[str, Any]:
    props = event["ResourceProperties"]
    arn = props["StateMachineArn"]
    kind = event["RequestType"]
    data: dict[str, str] = {"Started": "false", "ExecutionArn": ""}
    if kind == "Delete":
        stop_running(sfn, arn, "the stack is being deleted")
    elif kind == "Create" or props.get("Nodes") != event.get("OldResourceProperties", {}).get("Nodes"):
        result = start_unless_running(sfn, arn, {}, execution_name())
        data = {"Started": str(result["started"]).lower(), "ExecutionArn": result["execution_arn"]}
    return {"PhysicalResourceId": PHYSICAL_ID, "Data": data}
