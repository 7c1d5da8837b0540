"""`make local-rebuild`'s pieces that need no running rig: the rig's replace-root-volume tasks (states as EC2 reports
them), the agent ping the rebuild waits for, the reset of a node's overlay, the phase figures."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError

from tests.lambda_runtime import invoke
from tests.local import ssm_standin
from tests.local.rebuild_phases import phase_seconds
from tests.local.root_volumes import RigRootVolumes
from tests.rig import config as rig_config
from tests.rig import nodes
from tests.rig.config import NodeSpec
from tests.unit.test_local_ssm_standin import agent_started_at

WAIT_ONLINE = "wait_online.handler.handler"


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat().replace("+00:00", "Z")


def ec2() -> object:
    return boto3.client("ec2", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x")


# --- the agent's ping: only a boot after the restore counts ---------------------------------------------------


@pytest.mark.parametrize(("agent_started", "restored", "online"), [
    (-60, -90, True),  # the agent started after the restore: its first ping counts
    (-60, -30, False),  # it started before the last restore finished: its next ping is 4 min away
    (-400, -370, True),  # ... and once the agent pinged again (every 5 min), it counts
])  # fmt: skip
def test_the_rebuild_counts_a_node_online_only_once_its_agent_pinged_after_the_restore(
    monkeypatch: pytest.MonkeyPatch, agent_started: float, restored: float, online: bool
) -> None:
    now = time.time()
    monkeypatch.setattr(ssm_standin.nodes, "agent_ping", agent_started_at(now + agent_started))
    ssm_standin.RigSsm({}, {"i-1": rig_config.node("object1")}).install(monkeypatch.setattr)
    event = {"instances": {"i-1": "object1"}, "started": iso(now), "max_wait_seconds": 600,
             "online_since": iso(now + restored)}  # fmt: skip
    result, failed = invoke(WAIT_ONLINE, event)
    assert not failed and result["all_online"] is online


def test_a_node_whose_agent_has_not_started_is_not_online(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ssm_standin.nodes, "agent_ping", agent_started_at(None))
    assert ssm_standin.last_ping(rig_config.node("block1")) is None


# --- the replace-root-volume tasks -----------------------------------------------------------------------------


class Resets:
    """A reset that holds until released (or fails), recording which nodes it was asked for."""

    def __init__(self, error: str = "") -> None:
        self.release, self.nodes, self.error = threading.Event(), [], error

    def __call__(self, spec: NodeSpec) -> None:
        self.nodes.append(spec.name)
        assert self.release.wait(5)
        if self.error:
            raise RuntimeError(self.error)


def _state(client: object, task_id: str) -> dict:
    (task,) = client.describe_replace_root_volume_tasks(ReplaceRootVolumeTaskIds=[task_id])["ReplaceRootVolumeTasks"]
    return task


def _settle(volumes: RigRootVolumes) -> None:
    for thread in volumes.threads:
        thread.join(5)


def test_a_task_goes_in_progress_then_succeeded_once_the_node_runs_again(monkeypatch: pytest.MonkeyPatch) -> None:
    resets = Resets()
    volumes = RigRootVolumes({"i-1": rig_config.node("object2")}, reset=resets).install(monkeypatch.setattr)
    client = ec2()
    created = client.create_replace_root_volume_task(InstanceId="i-1", ClientToken="t", DeleteReplacedRootVolume=True)
    task_id = created["ReplaceRootVolumeTask"]["ReplaceRootVolumeTaskId"]
    assert created["ReplaceRootVolumeTask"]["TaskState"] in ("pending", "in-progress")
    again = client.create_replace_root_volume_task(InstanceId="i-1", ClientToken="t", DeleteReplacedRootVolume=True)
    assert again["ReplaceRootVolumeTask"]["ReplaceRootVolumeTaskId"] == task_id  # same token: same task
    time.sleep(0.2)
    running = _state(client, task_id)
    assert running["TaskState"] == "in-progress" and "CompleteTime" not in running
    before = datetime.now(UTC)
    resets.release.set()
    _settle(volumes)
    done = _state(client, task_id)
    assert done["TaskState"] == "succeeded" and datetime.fromisoformat(done["CompleteTime"]) >= before
    assert resets.nodes == ["object2"]  # one reset for the two calls


def test_a_reset_that_fails_is_a_failed_task_and_unknown_or_other_images_are_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    resets = Resets(error="umount: target is busy")
    resets.release.set()
    volumes = RigRootVolumes({"i-1": rig_config.node("block1")}, reset=resets).install(monkeypatch.setattr)
    client = ec2()
    task_id = client.create_replace_root_volume_task(InstanceId="i-1")["ReplaceRootVolumeTask"]["ReplaceRootVolumeTaskId"]
    _settle(volumes)
    assert _state(client, task_id)["TaskState"] == "failed"
    with pytest.raises(ClientError, match=r"InvalidInstanceID\.NotFound"):
        client.create_replace_root_volume_task(InstanceId="i-404")
    with pytest.raises(ClientError, match="only the launch state"):
        client.create_replace_root_volume_task(InstanceId="i-1", ImageId="ami-0123456789abcdef0")


# --- the reset itself, on a real overlay -------------------------------------------------------------------------


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting an overlay needs root")
def test_reset_drops_what_the_node_wrote_and_keeps_the_base_image(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = rig_config.node("object1")
    base, top = tmp_path / "base", tmp_path / "nodes" / spec.name
    (base / "etc").mkdir(parents=True)
    (base / "etc/os-release").write_text("bookworm\n")
    for layer in ("upper", "work", "root"):
        (top / layer).mkdir(parents=True)
    monkeypatch.setattr(rig_config, "NODES_DIR", tmp_path / "nodes")
    root = nodes.rootfs(spec)
    subprocess.run(["mount", "-t", "overlay", "overlay", "-o",
                    f"lowerdir={base},upperdir={top / 'upper'},workdir={top / 'work'}", str(root)], check=True)
    try:
        (root / "etc/installed").write_text("keystone\n")
        (root / "etc/os-release").write_text("changed\n")
        calls: list[str] = []
        monkeypatch.setattr(nodes, "stop", lambda s: calls.append(f"stop {s.name}"))
        monkeypatch.setattr(nodes, "launch", lambda s: calls.append(f"launch {s.name} {os.path.ismount(root)}"))
        nodes.reset_to_launch_state(spec)
    finally:
        if os.path.ismount(root):
            subprocess.run(["umount", str(root)], check=False)
    assert calls == ["stop object1", "launch object1 False"]  # launched unmounted: launch mounts it afresh
    assert not (top / "upper").exists() and not (top / "work").exists()
    assert (base / "etc/os-release").read_text() == "bookworm\n" and not (base / "etc/installed").exists()


# --- the figures --------------------------------------------------------------------------------------------------


def test_phases_run_from_each_phases_first_state_to_the_next_and_the_install_ends_on_leaving_its_state() -> None:
    t0 = datetime(2026, 12, 2, 3, 0, tzinfo=UTC)

    def event(seconds: int, kind: str, name: str) -> dict:
        return {"timestamp": t0 + timedelta(seconds=seconds), f"state{kind}EventDetails": {"name": name}}

    events = [{"timestamp": t0}, event(1, "Entered", "Restore root volumes"), event(2, "Entered", "Check SSM online"),
              event(40, "Entered", "Check SSM online"), event(95, "Entered", "Select the wipe step"),
              event(105, "Entered", "Install (state machine)"), event(1305, "Exited", "Install (state machine)"),
              event(1306, "Entered", "Notify")]  # fmt: skip
    assert phase_seconds(events) == {"restore": 1.0, "online": 93.0, "wipe": 10.0, "install": 1200.0, "total": 1306.0}
    assert phase_seconds(events[:3]) == {"restore": 1.0, "online": 0.0, "total": 2.0}
