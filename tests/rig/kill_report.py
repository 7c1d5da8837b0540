"""The kill harness's record: one Trial per step and node, build/rig/kill-report.json, the table, and the step
durations earlier runs measured (what bounds the next delays)."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from . import config

RERUN = " (re-run)"  # how report.json names a proof's re-run of a step on the installed cloud


def report_path() -> Path:
    return config.BUILD / "kill-report.json"


@dataclass
class Trial:
    step: str
    node: str
    delay: float = 0.0
    basis: str = ""  # what bounded the delay
    killed: bool = False
    killed_at: str = ""  # the last output line before the kill
    first_rc: int | None = None  # the killed run's exit (-9 when the kill landed)
    first_seconds: float = 0.0
    survivors: list[str] = field(default_factory=list)  # "pid cmdline" left running by the kill
    rerun_ok: bool = False
    rerun_rc: int | None = None
    rerun_seconds: float = 0.0
    third: str = "not run"  # unchanged | changed: <last line> | failed (exit N) | n/a: <reason> | not run
    third_seconds: float = 0.0
    tail: list[str] = field(default_factory=list)  # the failing run's last lines
    earlier: list[str] = field(default_factory=list)  # a first attempt that finished before its kill

    @property
    def finished_before_kill(self) -> bool:
        return not self.killed

    @property
    def ok(self) -> bool:
        # a step that finished before the kill must have succeeded on its own: it ran on an installed node
        first = self.killed or self.first_rc == 0
        return first and self.rerun_ok and (self.third == "unchanged" or self.third.startswith("n/a"))

    def as_dict(self) -> dict[str, Any]:
        return asdict(self) | {"finished_before_kill": self.finished_before_kill, "ok": self.ok}


def _load_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def measured_durations() -> dict[tuple[str, str], tuple[float, str]]:
    """(step, node) -> (seconds, source) of the step's last measured run.

    The killed run is a re-run on an installed node, so an earlier kill test's third run (the same situation)
    measures it best, then a re-run in report.json (the rig's proofs re-run network-fix as "network-fix
    (re-run)"); report.json's install run, usually much longer, is the fallback."""
    out: dict[tuple[str, str], tuple[float, str]] = {}
    entries = [e for e in _load_json(config.REPORT).get("steps", []) if e.get("ok") and e.get("seconds")]
    for entry in sorted(entries, key=lambda e: e["step"].endswith(RERUN)):  # re-runs last: they win
        name = entry["step"].removesuffix(RERUN)
        source = "report.json re-run" if entry["step"].endswith(RERUN) else "report.json"
        out[(name, entry["node"])] = (float(entry["seconds"]), source)
    for trial in _load_json(report_path()).get("trials", []):
        if trial.get("third_seconds"):
            out[(trial["step"], trial["node"])] = (float(trial["third_seconds"]), "kill-report.json")
    return out


def write_report(trials: list[Trial], settings: dict[str, Any], started: float, interrupted: bool) -> None:
    """kill-report.json: the pass's settings (seed, bounds, skips with their reasons) and every trial so far."""
    report = {
        **settings,
        "trials": [t.as_dict() for t in trials],
        "ok": bool(trials) and all(t.ok for t in trials) and not interrupted,
        "interrupted": interrupted,
        "total_seconds": round(time.monotonic() - started, 1),
    }
    config.BUILD.mkdir(parents=True, exist_ok=True)
    report_path().write_text(json.dumps(report, indent=1) + "\n")


def print_table(trials: list[Trial], skips: dict[str, str], seconds: float) -> None:
    print(f"\n{'step':19} {'node':11} {'delay':>6}  {'killed at (last line before the kill)':52} {'re-run':>12}  "
          "third run")
    for t in trials:
        killed_at = (t.killed_at or "(no output yet)")[-52:]
        where = killed_at if t.killed else f"finished before the kill (exit {t.first_rc})"
        rerun = f"{'ok' if t.rerun_ok else f'FAILED {t.rerun_rc}'} {t.rerun_seconds:.0f}s"
        print(f"{t.step:19} {t.node:11} {t.delay:6.1f}  {where:52} {rerun:>12}  {t.third[:60]}"
              f"{'' if t.ok else '  <-- FAILED'}")
        for note in [*t.earlier, *(["left running by the kill: " + "; ".join(t.survivors)] if t.survivors else [])]:
            print(f"{'':40}{note[:110]}")
    for name, reason in skips.items():
        print(f"{name:19} skipped: {reason}")
    failed = sum(not t.ok for t in trials)
    print(f"\n{len(trials) - failed}/{len(trials)} trial(s) passed in {seconds:.0f}s; "
          f"{sum(bool(t.earlier) for t in trials)} killed on a second draw, "
          f"{sum(t.finished_before_kill for t in trials)} finished before the kill; report: {report_path()}")
