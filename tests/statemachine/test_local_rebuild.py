"""`make local-rebuild`'s driver with the synthesized rebuild machine and the real Lambdas in moto's engine, the rig's
side recorded (`make local-rebuild` resets the containers and runs the scripts): the Lambdas accept the rig's
replace-root-volume tasks as EC2's, the wipe precedes the install, and the figures find every phase in the
machine's own history."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.conftest import SynthesizedApp
from tests.local import session, ssm_standin
from tests.local.rebuild import execute_rebuild
from tests.local.rebuild_phases import PHASE_STATES
from tests.rig import config as rig_config
from tests.rig import nodes
from tests.rig.config import NodeSpec
from tests.rig.runner import Result


def test_make_local_rebuild_drives_the_machine_to_its_end_and_writes_the_figures(
    fixture_app: SynthesizedApp, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The driver of `make local-rebuild` (moto, the machines, the stand-ins, the report), its rig side recorded:
    containers reset and scripts run are the real run's part."""
    assembly = fixture_app.assembly
    orchestration = assembly.get_stack_by_name(fixture_app.stacks.orchestration.stack_name).template
    documents = [assembly.get_stack_by_name(s.stack_name).template for s in fixture_app.stacks.documents]
    reset: list[str] = []
    ran: list[tuple[str, str]] = []

    def run_script_on(spec: NodeSpec, name: str, script: str, timeout: int, stem: str) -> Result:
        ran.append((name.removeprefix("openstack-aws-"), spec.name))
        return Result(name, spec.name, ok=True, rc=0)

    def outside(name: str, step: str, **_: object) -> dict:
        return {"name": name, "ok": True, "status": "ok", "detail": "recorded", "node": "rig-internet", "step": step}

    monkeypatch.setattr(ssm_standin, "run_script_on", run_script_on)
    monkeypatch.setattr(nodes, "reset_to_launch_state", lambda spec: reset.append(spec.name))
    monkeypatch.setattr(nodes, "leader", lambda spec: 4242)
    monkeypatch.setattr(nodes, "agent_ping", lambda spec: time.time())  # every agent pings at once
    monkeypatch.setattr(session.proofs, "from_outside", lambda step="verify": [
        outside("floating-ip-from-outside", step), outside("public-endpoints-from-outside", step)])
    monkeypatch.setattr(session, "LOCAL_POLL_SECONDS", 0.0)
    monkeypatch.setattr(session, "WATCH_SECONDS", 0.2)
    report = tmp_path / "rebuild-report.json"

    assert execute_rebuild(orchestration, documents, report) == 0
    written = json.loads(report.read_text())
    assert written["succeeded"] is True
    # the install it starts notifies too: a nightly rebuild sends two e-mails
    assert written["notified"] == ["[openstack-aws] OpenStack install succeeded", "[openstack-aws] OpenStack rebuild succeeded"]
    assert list(written["seconds"]) == [*PHASE_STATES, "total", "watched"]
    assert sorted(written["restore_seconds_by_node"]) == sorted(reset) == sorted(n.name for n in rig_config.NODES)
    assert [c["name"] for c in written["checks"]] == ["floating-ip-from-outside", "public-endpoints-from-outside"]
    wipes = sorted(node for step, node in ran if step == "wipe-data-disks")
    assert wipes == ["block1", "object1", "object2"]
    assert max(i for i, (step, _) in enumerate(ran) if step == "wipe-data-disks") < ran.index(("base", "controller"))
