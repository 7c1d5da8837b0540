"""The input a run accepts and the steps it selects: shared by the validate_input Lambda and stacks/step_catalog.

`{}` runs every step, `{"from_step": X}` resumes at X, `{"only": [X, Y]}` runs the chosen steps. Anything else
fails at once with a message naming what is accepted.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .errors import InvalidInput

#: Keys of the install machine's input. "Comment" is what the Step Functions console pre-fills; it is ignored.
INSTALL_KEYS = ("from_step", "only", "Comment")


class UnknownStepError(InvalidInput):
    """A step name that is not in the plan."""


def flag_key(step: str) -> str:
    """The key of a step in the `enabled` map: JSONPath-friendly (step names use '-', never '_')."""
    return step.replace("-", "_")


def select_names(names: Sequence[str], from_step: str | None = None, only: Sequence[str] | None = None) -> list[str]:
    """The step names a run executes, in plan order; unknown names raise with the list of valid ones."""
    asked = ([from_step] if from_step else []) + list(only or [])
    unknown = [n for n in asked if n not in names]
    if unknown:
        raise UnknownStepError(f"unknown step {', '.join(map(repr, unknown))}; valid steps: {', '.join(names)}")
    if only:
        return [n for n in names if n in only]
    if from_step:
        return list(names[names.index(from_step):])
    return list(names)


@dataclass(frozen=True)
class RunInput:
    from_step: str | None = None
    only: tuple[str, ...] | None = None


def parse_run_input(raw: Any, allowed_keys: Sequence[str] = INSTALL_KEYS) -> RunInput:
    """Check the shape of the execution input (types and keys), not the step names."""
    if not isinstance(raw, Mapping):
        raise InvalidInput(f"the input must be a JSON object such as {{}}, got {type(raw).__name__}")
    unknown = sorted(set(raw) - set(allowed_keys))
    if unknown:
        raise InvalidInput(
            f"unknown input key {', '.join(map(repr, unknown))}; accepted keys: {', '.join(allowed_keys)} "
            '(examples: {}, {"from_step": "keystone"}, {"only": ["verify"]})'
        )
    from_step, only = raw.get("from_step"), raw.get("only")
    if from_step is not None and (not isinstance(from_step, str) or not from_step):
        raise InvalidInput(f"from_step must be a step name (a string), got {from_step!r}")
    if only is not None and (
        not isinstance(only, list) or not only or not all(isinstance(n, str) and n for n in only)
    ):
        raise InvalidInput(f'only must be a non-empty list of step names such as ["keystone"], got {only!r}')
    if from_step is not None and only is not None:
        raise InvalidInput("give either from_step or only, not both")
    return RunInput(from_step=from_step, only=tuple(only) if only is not None else None)


def plan_run(raw: Any, names: Sequence[str]) -> dict[str, Any]:
    """What the state machine needs: the selected steps in order and one boolean per step for its Choice states."""
    run = parse_run_input(raw)
    selected = select_names(names, run.from_step, run.only)
    return {
        "selected": selected,
        "enabled": {flag_key(n): n in selected for n in names},
        "from_step": run.from_step,
        "only": list(run.only) if run.only else None,
    }
