"""The step plan read from script headers: validation, waves (parallel branches), selection."""

from __future__ import annotations

from pathlib import Path

import pytest

from stacks.step_catalog import StepCatalogError, load_steps, select, waves


def write_step(
    folder: Path,
    file: str,
    *,
    roles: str = "controller",
    after: str = "-",
    timeout: str = "600",
    name: str | None = None,
) -> None:
    step = name or file[3:-3]
    folder.joinpath(file).write_text(
        f"#!/usr/bin/env bash\n# step: {step}\n# roles: {roles}\n# after: {after}\n# timeout: {timeout}\n"
        "# inputs: none\n# guarantees: nothing\nset -euo pipefail\n"
    )


@pytest.fixture
def plan(tmp_path: Path) -> Path:
    write_step(tmp_path, "10-base.sh", roles="controller,compute,block")
    write_step(tmp_path, "20-infra.sh", after="base")
    write_step(tmp_path, "30-keystone.sh", after="infra")
    write_step(tmp_path, "31-compute.sh", roles="compute", after="base")
    write_step(tmp_path, "32-volume.sh", roles="block", after="base")
    write_step(tmp_path, "40-discover.sh", after="keystone,compute")
    return tmp_path


def test_waves_run_independent_nodes_in_parallel(plan: Path) -> None:
    names = [[s.name for s in wave] for wave in waves(load_steps(plan))]
    assert names == [["base"], ["infra", "compute", "volume"], ["keystone"], ["discover"]]


def test_a_node_never_runs_two_steps_at_once(plan: Path) -> None:
    for wave in waves(load_steps(plan)):
        roles = [r for s in wave for r in s.roles]
        assert len(roles) == len(set(roles))


def test_selection_from_step_and_only(plan: Path) -> None:
    steps = load_steps(plan)
    assert [s.name for s in select(steps, from_step="keystone")] == ["keystone", "compute", "volume", "discover"]
    assert [s.name for s in select(steps, only=["volume", "base"])] == ["base", "volume"]
    with pytest.raises(StepCatalogError, match="unknown step 'nova'; valid steps: base, infra, keystone"):
        select(steps, from_step="nova")


@pytest.mark.parametrize(
    ("file", "kwargs", "message"),
    [
        ("5-x.sh", {}, "named NN-name.sh"),
        ("10-x.sh", {"roles": "network"}, "roles ['network'] not in"),
        ("10-x.sh", {"after": "later"}, "must name steps with a lower number"),
        ("10-x.sh", {"timeout": "5"}, "must be seconds from 60 to 7200"),
        ("10-x.sh", {"name": "y"}, "must equal the file name 'x'"),
    ],
)
def test_bad_headers_are_rejected_with_the_file_named(tmp_path: Path, file: str, kwargs: dict, message: str) -> None:
    write_step(tmp_path, file, **kwargs)
    with pytest.raises(StepCatalogError) as caught:
        load_steps(tmp_path)
    assert message in str(caught.value) and file in str(caught.value)


def test_missing_header_lines_are_named(tmp_path: Path) -> None:
    tmp_path.joinpath("10-x.sh").write_text("#!/usr/bin/env bash\n# step: x\nset -euo pipefail\n")
    with pytest.raises(StepCatalogError, match="header lacks roles, after, timeout, inputs, guarantees"):
        load_steps(tmp_path)


def test_the_real_steps_follow_the_contract() -> None:
    steps = load_steps()
    assert steps, "steps/ holds no step"
    assert steps[0].name == "base"
    assert waves(steps)


def test_a_deployment_without_a_role_keeps_the_order_of_what_remains(plan: Path) -> None:
    from stacks.config import load_config
    from stacks.orchestration_stack import plan_for

    write_step(plan, "41-after-volume.sh", after="volume")
    steps = plan_for(load_config({"block_storage": False}), load_steps(plan))
    assert "volume" not in [s.name for s in steps]
    after_volume = next(s for s in steps if s.name == "after-volume")
    assert after_volume.after == ("base",)  # what the dropped step waited for
    assert [[s.name for s in w] for w in waves(steps)][-2:] == [["discover"], ["after-volume"]]
