"""Have the replace-root-volume tasks finished? Past the allowed wait, fail naming the nodes still pending."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from common import clock
from common.root_volumes import RootVolumeReplaceFailed, replacement_states


@dataclass(frozen=True)
class RootVolumeStatusEvent:
    tasks: dict[str, str]  # instance ID -> task ID
    instances: dict[str, str]  # instance ID -> node name
    started: str  # when the replacements were started (ISO timestamp)
    max_wait_seconds: int


def root_volume_status(ec2: Any, event: RootVolumeStatusEvent) -> dict[str, Any]:
    result = replacement_states(ec2, event.tasks, event.instances)
    waited = int(clock.now() - clock.parse_timestamp(event.started))
    if not result["all_succeeded"] and waited >= event.max_wait_seconds:
        states = sorted(result["states"].items())
        pending = ", ".join(f"{node} ({state})" for node, state in states if state != "succeeded")
        raise RootVolumeReplaceFailed(
            f"root volumes not restored within {event.max_wait_seconds // 60} min: {pending}. Check the instances' "
            "replace root volume tasks in the EC2 console, then start the rebuild again"
        )
    return {**result, "tasks": event.tasks, "instances": event.instances, "waited_seconds": waited}
