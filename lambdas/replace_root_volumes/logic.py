"""Start one replace-root-volume task per node (launch state, replaced volume deleted)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from common.root_volumes import start_replacements


@dataclass(frozen=True)
class ReplaceRootVolumesEvent:
    instances: dict[str, str]  # instance ID -> node name
    execution_id: str
    project: str


def replace_root_volumes(ec2: Any, event: ReplaceRootVolumesEvent) -> dict[str, Any]:
    tasks = start_replacements(ec2, event.instances, event.execution_id, event.project)
    return {"tasks": tasks, "instances": event.instances}
