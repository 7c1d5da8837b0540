"""`make bench`: the project's speed and size figures, printed (never asserted; tests do not time anything).

- synth: building and synthesizing the whole app (cdk-nag included), in-process, three times;
- templates: size of each stack's template (CloudFormation's limit is 1 MB; SSM documents are 64 KB each);
- install machine: one full run of the real steps' state machine in moto's Step Functions engine with the real
  handlers and a fake SSM: wall time and state transitions (what Standard Workflows bill);
- Lambda asset: the zipped size of lambdas/;
- the newest rig, `make local` and `make local-rebuild` reports, if any (those runs take minutes and root; they write their own figures).
"""

from __future__ import annotations

import os

# Before the handlers' Powertools objects exist: their JSON logs are not figures (as in tests/local/cli.py).
os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")

import contextlib
import io
import json
import statistics
import time
import zipfile
from pathlib import Path
from typing import Any

import pytest
from moto import mock_aws

from stacks.step_catalog import STEPS_DIR, compose_script, load_steps
from tests.conftest import ROOT, synthesize
from tests.statemachine.harness import MOTO_CONFIG, Harness


def _line(label: str, value: str) -> None:
    print(f"{label:<44} {value}", flush=True)


def bench_synth() -> Any:
    times, app = [], None
    for _ in range(3):
        t0 = time.perf_counter()
        app = synthesize()
        times.append(time.perf_counter() - t0)
    _line("synth (3 runs, in-process)", f"min {min(times):.1f} s, median {statistics.median(times):.1f} s")
    for stack in app.assembly.stacks:
        size = len(json.dumps(stack.template, separators=(",", ":")))
        _line(f"  template {stack.stack_name}", f"{size / 1024:.1f} KB of 1024 KB (S3-uploaded template limit)")
    largest = max(len(compose_script(s).encode()) for s in load_steps(STEPS_DIR))
    _line("  largest SSM document script", f"{largest / 1024:.1f} KB of 64 KB")
    return app


def bench_install_machine(app: Any) -> None:
    template = app.assembly.get_stack_by_name(app.stacks.orchestration.stack_name).template
    patch = pytest.MonkeyPatch()
    try:
        # the handlers' structured logs and metrics go to stdout, as in Lambda: not part of the figures
        with mock_aws(config=MOTO_CONFIG), contextlib.redirect_stdout(io.StringIO()):
            harness = Harness(template, patch).setup()
            t0 = time.perf_counter()
            execution = harness.run({}, timeout=600)
            took = time.perf_counter() - t0
    finally:
        patch.undo()
    _line("install machine, full run in moto", f"{execution.status} in {took:.1f} s, "
          f"{execution.transitions} state transitions, {len(harness.ssm.sent)} SSM commands "
          "(every command done at its first poll: on AWS each poll adds transitions)")  # fmt: skip


def bench_lambda_asset() -> None:
    buffer = io.BytesIO()
    files = [p for p in (ROOT / "lambdas").rglob("*") if p.is_file() and "__pycache__" not in p.parts]
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in files:
            archive.write(path, path.relative_to(ROOT / "lambdas"))
    _line("Lambda asset (lambdas/, zipped)", f"{len(files)} files, {len(buffer.getvalue()) / 1024:.1f} KB")


def show_report(label: str, path: Path) -> None:
    if not path.exists():
        _line(label, f"no report ({path.relative_to(ROOT)}): run it first")
        return
    report = json.loads(path.read_text())
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(path.stat().st_mtime))
    if "steps" in report:
        slow = sorted(report["steps"], key=lambda s: -s["seconds"])[:3]
        _line(label, f"{report['total_seconds']:.0f} s total, peak memory {report['peak_memory_mb']} MiB ({when})")
        _line("  slowest", ", ".join(f"{s['step']}@{s['node']} {s['seconds']:.0f} s" for s in slow))
    else:
        seconds = ", ".join(f"{k} {v:.0f} s" for k, v in report.get("seconds", {}).items())
        _line(label, f"{'succeeded' if report.get('succeeded') else 'failed'}: {seconds} ({when})")
    checks = report.get("checks", [])
    counts = {s: sum(c["status"] == s for c in checks) for s in ("ok", "fail", "skip")}
    _line("  checks", ", ".join(f"{n} {s}" for s, n in counts.items()))


def main() -> int:
    app = bench_synth()
    bench_install_machine(app)
    bench_lambda_asset()
    show_report("last make rig (build/rig/report.json)", ROOT / "build" / "rig" / "report.json")
    show_report("last make local (build/local/report.json)", ROOT / "build" / "local" / "report.json")
    show_report("last make local-rebuild (build/local/rebuild-report.json)",
                ROOT / "build" / "local" / "rebuild-report.json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
