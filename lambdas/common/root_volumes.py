"""Restoring nodes' root volumes to their launch state (EC2 CreateReplaceRootVolumeTask), for the nightly rebuild.

Without an ImageId or SnapshotId, EC2 restores the volume from the snapshot the instance launched from: the node
boots as on its first day, cloud-init runs the userdata again, and the replaced volume is deleted. With an ImageId
(config `ami_id`, an AMI upgrade) the new root volume comes from that AMI instead: the same first boot, a newer
Debian, and the instance, its ENIs and data disks stay.
"""

from __future__ import annotations

import hashlib
from typing import Any

from common.errors import OrchestrationError

SUCCEEDED = "succeeded"
FAILED_STATES = ("failed", "failed-detached", "failing")


class RootVolumeReplaceFailed(OrchestrationError):
    """EC2 could not restore a node's root volume."""


def client_token(execution_id: str, instance_id: str) -> str:
    """Idempotency: a retried Lambda in the same execution gets the same task back, a new execution a new task."""
    return hashlib.sha256(f"{execution_id}/{instance_id}".encode()).hexdigest()[:64]


def start_replacements(
    ec2: Any, instances: dict[str, str], execution_id: str, project: str, image_id: str = ""
) -> dict[str, str]:
    """instance ID -> replace-root-volume task ID, one task per node; image_id empty: the launch state."""
    tasks: dict[str, str] = {}
    image = {"ImageId": image_id} if image_id else {}
    for instance_id, node in sorted(instances.items()):
        response = ec2.create_replace_root_volume_task(
            **image,
            InstanceId=instance_id,
            ClientToken=client_token(execution_id, instance_id),
            DeleteReplacedRootVolume=True,
            TagSpecifications=[{"ResourceType": "replace-root-volume-task", "Tags": [
                {"Key": "openstack-aws:project", "Value": project}, {"Key": "openstack-aws:node", "Value": node}]}],
        )  # fmt: skip
        tasks[instance_id] = response["ReplaceRootVolumeTask"]["ReplaceRootVolumeTaskId"]
    return tasks


def replacement_states(ec2: Any, tasks: dict[str, str], instances: dict[str, str]) -> dict[str, Any]:
    """Whether every task succeeded; a failed one raises naming the node and what to do."""
    response = ec2.describe_replace_root_volume_tasks(ReplaceRootVolumeTaskIds=sorted(tasks.values()))
    by_task = {t["ReplaceRootVolumeTaskId"]: t for t in response["ReplaceRootVolumeTasks"]}
    states: dict[str, str] = {}
    latest_completion = ""
    for instance_id, task_id in sorted(tasks.items()):
        task = by_task.get(task_id, {})
        state = task.get("TaskState", "unknown")
        states[instances.get(instance_id, instance_id)] = state
        if state in FAILED_STATES:
            raise RootVolumeReplaceFailed(
                f"restoring the root volume of {instances.get(instance_id, instance_id)} ({instance_id}) failed: task "
                f"{task_id} is {state}. Check the instance in the EC2 console (Storage tab, replace root volume "
                "tasks); start the rebuild again once it is running (the task is retried with a new token)"
            )
        latest_completion = max(latest_completion, str(task.get("CompleteTime", "")))
    done = all(state == SUCCEEDED for state in states.values())
    return {"all_succeeded": done, "states": states, "completed_at": latest_completion if done else ""}
