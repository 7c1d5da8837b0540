"""First state of a run: check the execution input against the plan the state machine was built with."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from common.run_input import plan_run


@dataclass(frozen=True)
class ValidateEvent:
    input: Any  # the execution input, as the operator gave it
    steps: list[str]  # every step of the plan, in order (written into the definition at synth time)


def validate(event: ValidateEvent) -> dict[str, Any]:
    return plan_run(event.input, event.steps)
