"""The rebuild's phases, timed from its execution history (the same events the Step Functions console shows).

Each phase starts when the machine first enters its first state and ends when the next phase starts; the install
ends when its state (startExecution.sync:2) is left.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

#: phase -> the state the rebuild machine (stacks/constructs/rebuild.py) enters first in it
PHASE_STATES = {
    "restore": "Restore root volumes",
    "online": "Check SSM online",
    "wipe": "Select the wipe step",
    "install": "Install (state machine)",
}


def _first(events: list[dict[str, Any]], kind: str, name: str) -> datetime | None:
    key = f"state{kind}EventDetails"
    return next((e["timestamp"] for e in events if e.get(key, {}).get("name") == name), None)


def phase_seconds(events: list[dict[str, Any]]) -> dict[str, float]:
    """phase -> seconds, for the phases the execution reached (in order), and total (first to last event)."""
    if not events:
        return {}
    starts = [(phase, _first(events, "Entered", state)) for phase, state in PHASE_STATES.items()]
    reached = [(phase, at) for phase, at in starts if at is not None]
    ends = [at for _, at in reached[1:]] + [_first(events, "Exited", PHASE_STATES["install"]) or events[-1]["timestamp"]]
    seconds = {phase: round((end - at).total_seconds(), 1) for (phase, at), end in zip(reached, ends, strict=True)}
    seconds["total"] = round((events[-1]["timestamp"] - events[0]["timestamp"]).total_seconds(), 1)
    return seconds
