"""Runs of the synthesized install machine (fixture steps) in moto's engine, with the real handlers in-process."""

from __future__ import annotations

import json

import pytest

from tests.aws_fakes import Outcome
from tests.statemachine.harness import Harness

pytestmark = pytest.mark.statemachine

WAVES = [
    {"base"},
    {"controller-infra", "nova-compute", "cinder-volume", "swift-storage"},
    {"keystone"},
    {"network-fix"},
    {"verify"},
]
WAVE_OF = {step: i for i, wave in enumerate(WAVES) for step in wave}


def test_full_run_sends_every_step_in_wave_order(harness: Harness) -> None:
    execution = harness.run({})
    assert execution.status == "SUCCEEDED", execution.cause
    sent = harness.sent_steps()
    steps = [step for step, _ in sent]
    assert [WAVE_OF[s] for s in steps] == sorted(WAVE_OF[s] for s in steps), steps
    assert set(steps) == set(WAVE_OF)
    assert sorted(n for s, n in sent if s == "base") == sorted(harness.nodes)
    assert sorted(n for s, n in sent if s == "network-fix") == ["compute1", "controller"]
    # The EC2 fix ran after keystone's wave and before network-fix was sent.
    entered = execution.entered
    assert entered.index("Wave 3: keystone") < entered.index("EC2 fix: source/dest check off on eth2")
    assert entered.index("EC2 fix: source/dest check off on eth2") < entered.index("network-fix on controller: send")
    assert execution.output["ec2_fix"]["source_dest_check"] is False
    (message,) = harness.published()
    assert "OpenStack install succeeded" in message["Subject"] and "8 step(s)" in message["Message"]
    print(f"\nfull run: {execution.transitions} state transitions")


def test_a_failing_middle_step_notifies_step_node_and_tail_then_fails(harness: Harness) -> None:
    harness.ssm.outcomes["openstack-aws-keystone"] = Outcome(
        polls=2, fail_on=(harness.nodes["controller"]["instance_id"],),
        stdout="installing keystone\nERROR: keystone-manage db_sync failed\n", exit_code=1,
    )  # fmt: skip
    execution = harness.run({})
    assert execution.status == "FAILED"
    assert execution.error == "StepFailed"
    assert "step 'keystone' failed on node controller" in json.loads(execution.cause)["errorMessage"]
    assert {s for s, _ in harness.sent_steps()} == WAVES[0] | WAVES[1] | WAVES[2]  # nothing after keystone
    (message,) = harness.published()
    assert message["Subject"] == "[openstack-aws] OpenStack install FAILED: StepFailed"
    body = message["Message"]
    assert "step 'keystone' failed on node controller" in body and "exit code 1" in body
    assert "ERROR: keystone-manage db_sync failed" in body
    assert '{"from_step": "keystone"}' in body
    assert execution.entered[-2:] == ["Notify failure", "Install failed"]


def test_a_failure_in_a_wave_says_to_resume_from_the_wave_start(harness: Harness) -> None:
    object2 = harness.nodes["object2"]["instance_id"]
    harness.ssm.outcomes["openstack-aws-swift-storage"] = Outcome(polls=0, fail_on=(object2,), stderr="no disks\n")
    execution = harness.run({})
    assert execution.status == "FAILED" and execution.error == "StepFailed"
    body = harness.published()[0]["Message"]
    assert f"step 'swift-storage' failed on node object2 ({object2}, role object)" in body
    assert '{"from_step": "controller-infra"}' in body and "no disks" in body


def test_resume_from_a_step_skips_the_earlier_ones(harness: Harness) -> None:
    execution = harness.run({"from_step": "keystone"})
    assert execution.status == "SUCCEEDED", execution.cause
    # NN order from keystone (30): the later-numbered steps of wave 2 run again too (steps are idempotent).
    assert {s for s, _ in harness.sent_steps()} == set(WAVE_OF) - {"base", "controller-infra"}
    assert "base on controller: skipped" in execution.entered
    assert "controller-infra on controller: skipped" in execution.entered


def test_only_runs_the_chosen_steps_and_skips_the_ec2_fix(harness: Harness) -> None:
    execution = harness.run({"only": ["verify", "base"]})
    assert execution.status == "SUCCEEDED", execution.cause
    assert sorted({s for s, _ in harness.sent_steps()}) == ["base", "verify"]
    assert "EC2 fix: source/dest check off on eth2" not in execution.entered


def test_an_unknown_step_fails_at_once_listing_the_valid_ones(harness: Harness) -> None:
    execution = harness.run({"from_step": "nova"})
    assert execution.status == "FAILED" and execution.error == "UnknownStepError"
    assert "valid steps: base, controller-infra, keystone, nova-compute" in json.loads(execution.cause)["errorMessage"]
    assert harness.ssm.sent == []


def test_a_node_that_never_comes_online_times_out_clearly(harness: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.lambda_runtime import module

    clock = module("common.clock")
    calls = {"n": 0}
    real_now = clock.now

    def later() -> float:
        calls["n"] += 1
        return real_now() + (0 if calls["n"] <= 3 else 7200)

    monkeypatch.setattr(clock, "now", later)
    harness.ssm.online.discard(harness.nodes["compute1"]["instance_id"])
    execution = harness.run({})
    assert execution.status == "FAILED" and execution.error == "NodesNotOnline"
    message = json.loads(execution.cause)["errorMessage"]
    assert f"compute1 ({harness.nodes['compute1']['instance_id']})" in message and "system log" in message
    assert execution.entered.count("Wait for SSM") == 3
    assert harness.ssm.sent == []


def test_throttling_is_retried_with_backoff(harness: Harness) -> None:
    harness.ssm.throttle = {"SendCommand": 2, "ListCommandInvocations": 1}
    execution = harness.run({"only": ["keystone"]})
    assert execution.status == "SUCCEEDED", execution.cause
    assert harness.ssm.calls.count("SendCommand") == 3
    assert len(harness.backoffs) == 3 and all(0 <= b <= 120 for b in harness.backoffs)
    assert [s for s, _ in harness.sent_steps()] == ["keystone"]
