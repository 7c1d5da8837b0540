"""EC2's replace-root-volume API, played by the rig: each task resets its node to the launch state for real.

CreateReplaceRootVolumeTask starts a task (pending); a thread then stops the node's container, drops its
overlay's upper layer (the base image is the rig's AMI) and boots it again (in-progress); once the container runs
again the task has succeeded with its CompleteTime, as EC2 reports it when the instance is running on the new
volume. Data disks and ENIs stay, as on EC2. DescribeReplaceRootVolumeTasks answers from those tasks.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from tests.aws_fakes import ROOT_VOLUME_OPERATIONS
from tests.moto_engine import SetAttr, route_operations
from tests.rig import nodes
from tests.rig.config import NodeSpec
from tests.rig.sh import log

#: The container is running again within this long of its restart, or the task fails (EC2: "failed").
BOOT_TIMEOUT_SECONDS = 180.0


def _timestamp() -> str:
    return datetime.now(UTC).isoformat()


def restart_on_base_image(spec: NodeSpec) -> None:
    """The real reset: stop, drop the upper layer, boot; returns once the container runs again."""
    nodes.reset_to_launch_state(spec)
    deadline = time.monotonic() + BOOT_TIMEOUT_SECONDS
    while nodes.leader(spec) is None:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{spec.name}: no container {BOOT_TIMEOUT_SECONDS:.0f} s after its restart")
        time.sleep(0.2)


@dataclass
class Task:
    task_id: str
    instance_id: str
    client_token: str
    state: str = "pending"
    start_time: str = field(default_factory=_timestamp)
    complete_time: str = ""
    seconds: float = 0.0
    error: str = ""

    def describe(self) -> dict[str, Any]:
        described = {"ReplaceRootVolumeTaskId": self.task_id, "InstanceId": self.instance_id,
                     "TaskState": self.state, "StartTime": self.start_time, "DeleteReplacedRootVolume": True}
        return described | ({"CompleteTime": self.complete_time} if self.complete_time else {})  # fmt: skip


@dataclass
class RigRootVolumes:
    instances: dict[str, NodeSpec]  # moto instance ID -> the rig node playing it
    reset: Callable[[NodeSpec], None] = restart_on_base_image
    tasks: dict[str, Task] = field(default_factory=dict)
    threads: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def install(self, setattr: SetAttr) -> RigRootVolumes:
        route_operations(setattr, "ec2", ROOT_VOLUME_OPERATIONS, self)
        return self

    def CreateReplaceRootVolumeTask(self, params: dict[str, Any]) -> dict[str, Any]:
        instance_id = params["InstanceId"]
        if instance_id not in self.instances:
            raise ClientError({"Error": {"Code": "InvalidInstanceID.NotFound",
                                         "Message": f"The instance ID '{instance_id}' does not exist"}},
                              "CreateReplaceRootVolumeTask")  # fmt: skip
        if params.get("ImageId") or params.get("SnapshotId"):
            raise ClientError({"Error": {"Code": "InvalidParameterValue",
                                         "Message": "the rig has one image: only the launch state can be restored"}},
                              "CreateReplaceRootVolumeTask")  # fmt: skip
        token = params.get("ClientToken", "")
        with self._lock:
            task = next((t for t in self.tasks.values() if token and t.client_token == token), None)
            if task is None:  # EC2: the same token returns the same task, nothing is started twice
                task = Task(f"replacevol-{len(self.tasks) + 1:017x}", instance_id, token)
                self.tasks[task.task_id] = task
                thread = threading.Thread(target=self._run, args=(task,), daemon=True, name=f"reset@{instance_id}")
                thread.start()
                self.threads.append(thread)
            return {"ReplaceRootVolumeTask": task.describe()}

    def _run(self, task: Task) -> None:
        spec = self.instances[task.instance_id]
        t0 = time.monotonic()
        with self._lock:
            task.state = "in-progress"
        log(f"{spec.name}: replace root volume {task.task_id}: stop, back to the base image, boot")
        try:
            self.reset(spec)
        except Exception as error:  # EC2 reports a task that could not finish as failed
            with self._lock:
                task.state, task.error = "failed", str(error)
            log(f"{spec.name}: replace root volume {task.task_id} failed: {error}")
            return
        with self._lock:
            task.state, task.complete_time, task.seconds = "succeeded", _timestamp(), round(time.monotonic() - t0, 1)
        log(f"{spec.name}: replace root volume {task.task_id} succeeded in {task.seconds} s")

    def DescribeReplaceRootVolumeTasks(self, params: dict[str, Any]) -> dict[str, Any]:
        wanted = params.get("ReplaceRootVolumeTaskIds") or list(self.tasks)
        with self._lock:
            return {"ReplaceRootVolumeTasks": [self.tasks[t].describe() for t in wanted if t in self.tasks]}

    def seconds_by_node(self) -> dict[str, float]:
        with self._lock:
            return {self.instances[t.instance_id].name: t.seconds for t in self.tasks.values()}
