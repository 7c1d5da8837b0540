"""Typed events: each handler turns its payload into a frozen dataclass before any logic runs."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")
#: How long SSM keeps trying to deliver a command to an instance (its agent may be restarting). A step's
#: deadline is its own timeout plus this.
DELIVERY_TIMEOUT_SECONDS = 600


class EventError(ValueError):
    """The state machine sent a payload the handler does not understand (a wiring bug, not an operator error)."""


def parse(model: type[T], event: Mapping[str, Any]) -> T:
    """Build `model` from the event's keys; missing required keys fail with their names, extra keys are ignored."""
    if not isinstance(event, Mapping):
        raise EventError(f"{model.__name__}: expected a JSON object, got {type(event).__name__}")
    fields = dataclasses.fields(model)  # type: ignore[arg-type]
    required = [f.name for f in fields if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    missing = [name for name in required if name not in event]
    if missing:
        raise EventError(f"{model.__name__}: payload lacks {', '.join(missing)}")
    return model(**{f.name: event[f.name] for f in fields if f.name in event})


@dataclass(frozen=True)
class CommandRef:
    """One SendCommand of a step to the instances of one role: what send_step returns and step_status polls."""

    step: str
    role: str
    document: str
    command_id: str
    instances: dict[str, str]  # instance ID -> node name
    sent_at: float  # epoch seconds
    deadline: float  # epoch seconds: past it, a command still running counts as timed out
    log_group: str = ""
    resume_from: str = ""  # the step to resume from after a failure: the first of this step's wave

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
