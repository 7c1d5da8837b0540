"""The first state: {} / from_step / only select steps; anything else fails at once, naming what is accepted."""

from __future__ import annotations

import pytest

from tests.lambda_runtime import invoke, module

HANDLER = "validate_input.handler.handler"
STEPS = ["base", "controller-infra", "keystone", "network-fix", "verify"]


def run(raw: object) -> tuple[dict, bool]:
    return invoke(HANDLER, {"input": raw, "steps": STEPS})


def test_empty_input_runs_every_step_and_flags_each_for_the_choice_states() -> None:
    result, failed = run({})
    assert not failed
    assert result["run"]["selected"] == STEPS
    assert result["run"]["enabled"] == {"base": True, "controller_infra": True, "keystone": True,
                                        "network_fix": True, "verify": True}  # fmt: skip


def test_from_step_resumes_and_only_picks_in_plan_order() -> None:
    assert run({"from_step": "keystone"})[0]["run"]["selected"] == ["keystone", "network-fix", "verify"]
    result = run({"only": ["verify", "base"]})[0]["run"]
    assert result["selected"] == ["base", "verify"]
    assert result["enabled"]["keystone"] is False and result["enabled"]["verify"] is True


def test_the_console_default_comment_is_ignored() -> None:
    assert run({"Comment": "Insert your JSON here"})[0]["run"]["selected"] == STEPS


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"from_step": "nova"}, "unknown step 'nova'; valid steps: base, controller-infra, keystone, network-fix, verify"),
        ({"only": ["base", "glance"]}, "unknown step 'glance'; valid steps: base"),
        ({"from": "base"}, "unknown input key 'from'; accepted keys: from_step, only"),
        ({"only": "base"}, "only must be a non-empty list"),
        ({"only": []}, "only must be a non-empty list"),
        ({"from_step": 3}, "from_step must be a step name"),
        ({"from_step": "base", "only": ["verify"]}, "either from_step or only"),
        (["base"], "must be a JSON object"),
    ],
)
def test_bad_input_fails_with_a_clear_message(raw: object, message: str) -> None:
    result, failed = run(raw)
    assert failed and result["errorType"] in ("InvalidInput", "UnknownStepError")
    assert message in result["errorMessage"]


def test_step_catalog_select_shares_the_rule() -> None:
    run_input = module("common.run_input")
    assert run_input.select_names(STEPS, from_step="network-fix") == ["network-fix", "verify"]
    assert run_input.flag_key("nova-controller") == "nova_controller"
