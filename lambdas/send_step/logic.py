"""Send one step's SSM document to the instances of one role.

The command carries no parameters at all: the document is the composed script, and the nodes read their secrets
from Secrets Manager themselves. Output streams to the run-command log group.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from common import clock
from common.models import DELIVERY_TIMEOUT_SECONDS, CommandRef


@dataclass(frozen=True)
class SendStepEvent:
    step: str
    role: str
    document: str
    instances: dict[str, str]  # instance ID -> node name
    timeout_seconds: int  # the step's own timeout (header), also the document's executionTimeout
    resume_from: str = ""  # the first step of this step's wave (a failure stops the whole wave)


def send_step(ssm: Any, event: SendStepEvent, log_group: str) -> CommandRef:
    request: dict[str, Any] = {
        "DocumentName": event.document,
        "DocumentVersion": "$LATEST",
        "InstanceIds": sorted(event.instances),
        "TimeoutSeconds": DELIVERY_TIMEOUT_SECONDS,
        "Comment": f"openstack-aws step {event.step} on {event.role}"[:100],
    }
    if log_group:
        request["CloudWatchOutputConfig"] = {"CloudWatchLogGroupName": log_group, "CloudWatchOutputEnabled": True}
    command = ssm.send_command(**request)["Command"]
    sent_at = clock.now()
    return CommandRef(
        step=event.step,
        role=event.role,
        document=event.document,
        command_id=command["CommandId"],
        instances=dict(event.instances),
        sent_at=sent_at,
        deadline=sent_at + event.timeout_seconds + DELIVERY_TIMEOUT_SECONDS,
        log_group=log_group,
        resume_from=event.resume_from or event.step,
    )
