"""Start one replace-root-volume task per node (launch state or the configured AMI, replaced volume deleted)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from common.root_volumes import start_replacements


@dataclass(frozen=True)
class ReplaceRootVolumesEvent:
    instances: dict[str, str]  # instance ID -> node name
    execution_id: str
    project: str
    image_id: str = ""  # config ami_id: upgrade the root volumes to this AMI; empty: back to the launch state


def replace_root_volumes(ec2: Any, event: ReplaceRootVolumesEvent) -> dict[str, Any]:
    tasks = start_replacements(ec2, event.instances, event.execution_id, event.project, event.image_id)
    return {"tasks": tasks, "instances": event.instances}
