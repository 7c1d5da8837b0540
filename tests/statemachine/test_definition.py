"""The rendered definition: valid ASL (asl-validator), the shape the design asks for, and its cost in transitions."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from stacks.step_catalog import load_steps, waves
from tests.conftest import ROOT, SynthesizedApp
from tests.statemachine.conftest import FIXTURE_STEPS
from tests.statemachine.harness import (
    INSTALL,
    REBUILD,
    Harness,
    render_definition,
    state_machine_logical_id,
    template_refs,
)

ASL_VALIDATOR = ROOT / "node_modules" / ".bin" / "asl-validator"


def all_states(states: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found = dict(states)
    for state in states.values():
        for branch in state.get("Branches", []):
            found.update(all_states(branch["States"]))
    return found


def validate_asl(definition: dict[str, Any], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "definition.json"
    path.write_text(json.dumps(definition))
    return subprocess.run([str(ASL_VALIDATOR), "--json-path", str(path)], capture_output=True, text=True, timeout=60)


@pytest.mark.skipif(not ASL_VALIDATOR.exists(), reason="asl-validator is installed by `make setup` (npm)")
def test_fixture_and_real_definitions_pass_asl_validator(
    fixture_template: dict[str, Any], synth_app: SynthesizedApp, tmp_path: Path
) -> None:
    real = synth_app.assembly.get_stack_by_name(synth_app.stacks.orchestration.stack_name).template
    for template in (fixture_template, real):
        for machine in (INSTALL, REBUILD):
            refs = {**template_refs(template, "eu-west-1"),
                    state_machine_logical_id(template): "arn:aws:states:eu-west-1:123456789012:stateMachine:install"}
            result = validate_asl(render_definition(template, refs, machine), tmp_path)
            assert result.returncode == 0, machine + result.stdout + result.stderr


def test_asl_validator_does_reject_a_broken_definition(fixture_template: dict[str, Any], tmp_path: Path) -> None:
    broken = render_definition(fixture_template)
    broken["States"]["Validate input"]["Next"] = "No such state"
    assert validate_asl(broken, tmp_path).returncode != 0


def test_every_task_retries_transient_errors_and_every_top_level_failure_is_caught(
    fixture_template: dict[str, Any],
) -> None:
    definition = render_definition(fixture_template)
    states = all_states(definition["States"])
    tasks = {name: s for name, s in states.items() if s["Type"] == "Task"}
    for name, task in tasks.items():
        errors = [e for retry in task.get("Retry", []) for e in retry["ErrorEquals"]]
        assert "TransientError" in errors and "Lambda.TooManyRequestsException" in errors, name
        assert all(r.get("JitterStrategy") == "FULL" and r["BackoffRate"] == 2 for r in task["Retry"]), name
    top = definition["States"]
    for name, state in top.items():
        if state["Type"] in ("Task", "Parallel") and name != "Notify failure" and name != "Notify success":
            assert state["Catch"][0]["Next"] == "Notify failure", name
    assert top["Install failed"] == {"Type": "Fail", "ErrorPath": "$.Error", "CausePath": "$.Cause"}


def test_waves_and_branches_follow_the_step_plan_controller_first(fixture_template: dict[str, Any]) -> None:
    top = render_definition(fixture_template)["States"]
    parallels = [s for s in top.values() if s["Type"] == "Parallel"]
    plan = waves(load_steps(FIXTURE_STEPS))
    assert len(parallels) == len(plan)
    first = [branch["StartAt"] for branch in parallels[0]["Branches"]]
    assert first == ["base on controller?", "base on compute?", "base on block?", "base on object?"]
    second = [branch["StartAt"] for branch in parallels[1]["Branches"]]
    assert second[0] == "controller-infra on controller?"


def test_per_step_timeout_and_poll_interval_come_from_the_plan(fixture_template: dict[str, Any]) -> None:
    states = all_states(render_definition(fixture_template)["States"])
    assert states["verify on controller: send"]["Parameters"]["timeout_seconds"] == 1200
    assert states["verify on controller: send"]["Parameters"]["document"] == "openstack-aws-verify"
    assert states["verify on controller: wait"]["Seconds"] == 15
    assert states["Wait for SSM"]["Seconds"] == 15


@pytest.mark.statemachine
def test_state_transitions_of_a_full_run(harness: Harness) -> None:
    """Figures for the README: transitions = fixed part + 3 per poll of each (step, role) branch."""
    execution = harness.run({})
    assert execution.status == "SUCCEEDED", execution.cause
    entered = execution.entered
    polls = entered.count("base on controller: status")
    branches = sum(1 for name in entered if name.endswith(": send"))
    assert polls == 2  # the fake answers InProgress once, then Success
    # Per branch: choice + send + polls x (wait + status + finished?) + done; per wave: the Parallel;
    # prologue: validate, discover, check online, choice; EC2 fix: choice + task; notify + succeed.
    assert execution.transitions == branches * (3 + 3 * polls) + 5 + 4 + 2 + 2
    print(f"\nfull run (fixture, {branches} branches, {polls} polls each): {execution.transitions} transitions")
