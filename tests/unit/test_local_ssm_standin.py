"""The SSM stand-in of `make local`: document scripts from the synthesized template, real statuses and output
(the container run is replaced here; `make local` runs it in the rig)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import boto3
import pytest

from tests.conftest import SynthesizedApp
from tests.local import ssm_standin
from tests.rig import config as rig_config
from tests.rig.config import NodeSpec
from tests.rig.runner import Result

#: When the nodes' SSM agent (the rig's stand-in) became active in their current boot, epoch seconds
PINGED = 1764650000.25


def agent_started_at(stamp: float | None, down: frozenset[str] = frozenset()) -> Callable[[NodeSpec], float | None]:
    """nodes.agent_ping of nodes whose agent started at `stamp` (None: not started yet); nodes in `down` are off."""

    def agent_ping(spec: NodeSpec) -> float | None:
        return None if spec.name in down else stamp

    return agent_ping


@pytest.fixture
def documents(synth_app: SynthesizedApp) -> dict[str, ssm_standin.Document]:
    templates = [synth_app.assembly.get_stack_by_name(s.stack_name).template for s in synth_app.stacks.documents]
    return ssm_standin.documents_from_templates(templates)


def test_documents_carry_the_composed_script_and_the_step_timeout(documents: dict[str, ssm_standin.Document]) -> None:
    from stacks.step_catalog import compose_script, load_steps

    keystone = next(s for s in load_steps() if s.name == "keystone")
    document = documents["openstack-aws-keystone"]
    assert document.script == compose_script(keystone)  # byte for byte what the rig runs
    assert document.timeout == keystone.timeout


def test_send_poll_and_output_follow_the_real_run(documents, monkeypatch: pytest.MonkeyPatch) -> None:
    release = threading.Event()
    ran: list[tuple[str, str, int]] = []

    def fake_run(spec, name, script, timeout, stem) -> Result:
        ran.append((spec.name, name, timeout))
        release.wait(5)
        result = Result(name, spec.name, ok=spec.name != "object2", rc=0 if spec.name != "object2" else 3)
        result.tail.extend(["line 1", f"exit on {spec.name}"])
        return result

    monkeypatch.setattr(ssm_standin, "run_script_on", fake_run)
    monkeypatch.setattr(ssm_standin.nodes, "agent_ping", agent_started_at(PINGED, down=frozenset({"compute1"})))
    instances = {"i-1": rig_config.node("object1"), "i-2": rig_config.node("object2"), "i-3": rig_config.node("compute1")}
    standin = ssm_standin.RigSsm(documents, instances).install(monkeypatch.setattr)
    ssm = boto3.client("ssm", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x")

    online = ssm.describe_instance_information(Filters=[{"Key": "InstanceIds", "Values": ["i-1", "i-3"]}])
    ((instance, pinged),) = [(i["InstanceId"], i["LastPingDateTime"]) for i in online["InstanceInformationList"]]
    # the agent's latest ping: its start, then every PING_INTERVAL_SECONDS, never in the future
    since_start = pinged.timestamp() - PINGED
    assert instance == "i-1" and pinged <= datetime.now(UTC) < pinged + timedelta(seconds=300)
    assert round(since_start) % ssm_standin.PING_INTERVAL_SECONDS == 0

    command = ssm.send_command(DocumentName="openstack-aws-swift-storage", InstanceIds=["i-1", "i-2"])["Command"]
    statuses = ssm.list_command_invocations(CommandId=command["CommandId"])["CommandInvocations"]
    assert {i["Status"] for i in statuses} == {"InProgress"}
    release.set()
    for thread in standin.threads:
        thread.join(5)
    statuses = {i["InstanceId"]: i["Status"] for i in ssm.list_command_invocations(CommandId=command["CommandId"])["CommandInvocations"]}
    assert statuses == {"i-1": "Success", "i-2": "Failed"}
    failed = ssm.get_command_invocation(CommandId=command["CommandId"], InstanceId="i-2")
    assert failed["ResponseCode"] == 3 and failed["StandardOutputContent"].endswith("exit on object2")
    assert sorted(ran) == [("object1", "openstack-aws-swift-storage", documents["openstack-aws-swift-storage"].timeout),
                           ("object2", "openstack-aws-swift-storage", documents["openstack-aws-swift-storage"].timeout)]
    with pytest.raises(ValueError, match="no SSM document 'nope'"):
        standin.SendCommand({"DocumentName": "nope", "InstanceIds": ["i-1"]})
