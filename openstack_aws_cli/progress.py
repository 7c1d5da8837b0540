"""A run's progress, read from its state machine definition (the plan) and execution history (what happened).

State names follow the install definition's convention: `<step> on <role>?` (selected?), then
`<step> on <role>: send | wait | status | finished? | done | skipped`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

STEP_STATE = re.compile(r"^(?P<step>[a-z0-9][a-z0-9-]*) on (?P<role>[a-z]+)(?:\?|: (?P<phase>.+))$")


@dataclass
class StepRow:
    step: str
    role: str
    status: str = "pending"  # pending | running | ok | failed | skipped
    started: datetime | None = None
    ended: datetime | None = None
    command_id: str | None = None

    @property
    def label(self) -> str:
        return f"{self.step} on {self.role}"

    def seconds(self, now: datetime) -> float | None:
        if self.started is None:
            return None
        return ((self.ended or now) - self.started).total_seconds()


def planned_steps(definition: dict[str, Any]) -> list[tuple[str, str]]:
    """(step, role) pairs in the order the machine reaches them, found by walking its transitions."""
    order: list[tuple[str, str]] = []

    def walk(machine: dict[str, Any]) -> None:
        states, seen, todo = machine["States"], set(), [machine["StartAt"]]
        while todo:
            name = todo.pop(0)
            if name in seen or name not in states:
                continue
            seen.add(name)
            state = states[name]
            if (m := STEP_STATE.match(name)) and (m["step"], m["role"]) not in order:
                order.append((m["step"], m["role"]))
            for branch in state.get("Branches", []):
                walk(branch)
            nexts = [c.get("Next") for c in state.get("Choices", [])] + [state.get("Next"), state.get("Default")]
            todo.extend(n for n in nexts if n)

    walk(definition)
    return order


def _output_command_id(event: dict[str, Any]) -> str | None:
    details = event.get("taskSucceededEventDetails") or event.get("lambdaFunctionSucceededEventDetails") or {}
    try:
        output = json.loads(details.get("output") or "null")
    except json.JSONDecodeError:
        return None
    payload = output.get("Payload", output) if isinstance(output, dict) else None
    return payload.get("command_id") if isinstance(payload, dict) else None


def _entering_state(by_id: dict[int, dict[str, Any]], event: dict[str, Any]) -> str | None:
    while event:
        if "stateEnteredEventDetails" in event:
            return str(event["stateEnteredEventDetails"]["name"])
        event = by_id.get(event.get("previousEventId", -1), {})
    return None


def step_rows(definition: dict[str, Any], events: list[dict[str, Any]], execution_status: str) -> list[StepRow]:
    """One row per (step, role) of the plan, filled from the history events in order."""
    rows = {key: StepRow(*key) for key in planned_steps(definition)}
    by_id = {e["id"]: e for e in events}
    for event in sorted(events, key=lambda e: e["id"]):
        entered = event.get("stateEnteredEventDetails")
        if entered and (m := STEP_STATE.match(entered["name"])):
            row = rows.setdefault((m["step"], m["role"]), StepRow(m["step"], m["role"]))
            row.started = row.started or event["timestamp"]
            if m["phase"] == "skipped":
                row.status, row.ended = "skipped", event["timestamp"]
            elif m["phase"] == "done":
                row.status, row.ended = "ok", event["timestamp"]
            elif row.status == "pending":
                row.status = "running"
        if command_id := _output_command_id(event):
            # Parallel branches interleave: follow previousEventId back to the state this result belongs to.
            origin = _entering_state(by_id, event)
            if origin and (m := STEP_STATE.match(origin)) and (m["step"], m["role"]) in rows:
                rows[(m["step"], m["role"])].command_id = command_id
    if execution_status != "RUNNING":
        for row in rows.values():
            if row.status == "running":
                row.status = "failed" if execution_status in ("FAILED", "TIMED_OUT", "ABORTED") else row.status
    return list(rows.values())


def format_table(rows: list[StepRow], now: datetime) -> str:
    lines = [f"{'step':<22} {'role':<11} {'status':<8} {'seconds':>8}"]
    for row in rows:
        seconds = row.seconds(now)
        shown = f"{seconds:8.0f}" if seconds is not None else f"{'-':>8}"
        lines.append(f"{row.step:<22} {row.role:<11} {row.status:<8} {shown}")
    return "\n".join(lines)


def progress_line(rows: list[StepRow], started: datetime, now: datetime) -> str:
    """`step k of n: <running step>, elapsed mm:ss` for the live view."""
    done = sum(r.status in ("ok", "skipped") for r in rows)
    running = [r.label for r in rows if r.status == "running"]
    elapsed = int((now - started).total_seconds())
    what = ", ".join(running) or "between steps"
    return f"step {min(done + 1, len(rows))} of {len(rows)}: {what} | elapsed {elapsed // 60:02d}:{elapsed % 60:02d}"
