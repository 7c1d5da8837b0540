"""Kill each install step half-way, as SSM's timeout would, then prove that a re-run completes (issue 13).

    python3 -m tests.rig.kill_harness [--steps a,b] [--skip STEP=REASON] [--seed N] [--min S] [--max S]

On a rig that is up and fully installed, for each selected step (catalog order) and each node of its roles:
start the step's composed script (the SSM document's text) as the runner does, SIGKILL its process group after a
seeded random delay, run it again (it must exit 0), then a third time (its last line must say `nothing changed`,
except for the steps that create and delete test objects on every run). A run that ended before its kill measured
the step: one more attempt draws its delay within that run. Writes build/rig/kill-report.json and prints a table;
exits 1 when any trial failed. See tests/rig/README.md ("Killed steps").
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stacks import step_catalog
from stacks.step_catalog import Step, compose_script

from . import cli, installed, runner
from .config import NodeSpec
from .escapes import Survivor, escaped, kill_survivors
from .kill_report import Trial, measured_durations, print_table, write_report
from .runner import OnStart, Result
from .sh import RigError, log

#: Steps whose every run creates and deletes test objects (steps/README.md): for them a re-run proves itself by
#: exiting 0; every other step promises that "a second run changes nothing".
CHANGES_EVERY_RUN = {
    "verify": "creates and deletes its test objects on every run",
    "launch-instance": "creates and deletes the walkthrough's objects on every run",
}
UNCHANGED = re.compile(r"\bnothing changed\s*$")
TAIL = 15  # lines of a failed run kept in the report


@dataclass(frozen=True)
class Options:
    seed: int
    low: float  # --min
    high: float  # --max
    fraction: float
    grace: float
    skips: dict[str, str]  # step -> the stated reason


# ---------------------------------------------------------------------------------------------------- the delay
def with_dependencies(selected: list[Step], all_steps: list[Step]) -> list[Step]:
    """The selected steps and every step they wait for (their `after`, transitively): what must be installed for
    a kill test of just those steps (the others may be missing or have failed)."""
    by_name = {s.name: s for s in all_steps}
    need: set[str] = set()
    todo = [s.name for s in selected]
    while todo:
        name = todo.pop()
        if name not in need:
            need.add(name)
            todo += list(by_name[name].after)
    return [s for s in all_steps if s.name in need]


def draw_delay(seed: int, step: str, node: str, low: float, high: float, duration: float | None,
               fraction: float, attempt: int = 1) -> float:
    """Seconds from the start to the kill: uniform from `low` to `fraction` of the step's measured duration, or to
    `high` without a measurement. The RNG is seeded per (seed, step, node, attempt), so a delay does not depend on
    which other steps a pass selects: `--steps X --seed N` repeats step X's kill from a full pass with seed N."""
    top = high if duration is None else max(low, fraction * duration)
    return random.Random(f"{seed}:{step}:{node}:{attempt}").uniform(low, top)


def bound(opts: Options, seconds: float | None, source: str) -> str:
    """What bounded a delay, for the log and the report."""
    return f"{opts.fraction:g} x {seconds:.0f}s ({source})" if seconds is not None else f"--max {opts.high:g}s"


# ---------------------------------------------------------------------------------------------------- a trial
@dataclass(frozen=True)
class StepRunner:
    """How a step reaches a node. `killable` runs the step's script under another log name (the killed run's
    log stays beside the re-run's); `run` is the runner's own run_step_on. Both call on_start with the process."""

    killable: Callable[[Step, NodeSpec, OnStart], Result]
    run: Callable[[Step, NodeSpec, OnStart], Result]


def rig_runner(steps_dir: Path) -> StepRunner:
    return StepRunner(
        killable=lambda step, spec, on_start: runner.run_script_on(
            spec, step.name, compose_script(step), step.timeout, f"{runner.step_stem(step)}-killed", on_start),
        run=lambda step, spec, on_start: runner.run_step_on(step, spec, steps_dir, on_start),
    )


class Harness:
    """Runs trials and remembers every process they start, so that cleanup() leaves nothing of its own behind."""

    def __init__(self, steps: StepRunner, opts: Options) -> None:
        self.steps = steps
        self.opts = opts
        self.unsettled: set[subprocess.Popen[bytes]] = set()  # runs whose session was not searched yet
        self.survivors: set[Survivor] = set()  # what escaped a step's group and may still run
        self.readers: list[threading.Thread] = []
        self._lock = threading.Lock()

    def _started(self, proc: subprocess.Popen[bytes], result: Result) -> None:
        with self._lock:
            self.unsettled.add(proc)

    def _settle(self, proc: subprocess.Popen[bytes]) -> list[Survivor]:
        """Record what escaped a run's group. Called right when the run ends or is killed: a session id is only
        reused once all of its processes are gone, and pids go round quickly here (pid_max 32768)."""
        found = escaped(proc)
        with self._lock:
            self.survivors.update(found)
            self.unsettled.discard(proc)
        return found

    def _run(self, step: Step, spec: NodeSpec) -> Result:
        procs: list[subprocess.Popen[bytes]] = []

        def on_start(proc: subprocess.Popen[bytes], result: Result) -> None:
            self._started(proc, result)
            procs.append(proc)

        result = self.steps.run(step, spec, on_start)
        for proc in procs:
            self._settle(proc)
        return result

    def _killed_run(self, step: Step, spec: NodeSpec, trial: Trial) -> None:
        live: dict[str, Any] = {}
        started = threading.Event()

        def on_start(proc: subprocess.Popen[bytes], result: Result) -> None:
            self._started(proc, result)
            live.update(proc=proc, result=result)
            started.set()

        def work() -> None:
            try:
                live["final"] = self.steps.killable(step, spec, on_start)
            except Exception as exc:  # a rig failure (node gone), raised again below
                live["error"] = exc
            finally:
                started.set()
                if "proc" in live:
                    self._settle(live["proc"])

        reader = threading.Thread(target=work, daemon=True, name=f"killed {step.name}@{spec.name}")
        self.readers.append(reader)
        t0 = time.monotonic()
        reader.start()
        started.wait()
        if "proc" not in live:
            reader.join()
            raise RigError(f"{step.name}@{spec.name} did not start: {live.get('error')}")
        proc: subprocess.Popen[bytes] = live["proc"]
        reader.join(max(0.0, trial.delay - (time.monotonic() - t0)))
        sent = proc.poll() is None
        survivors: list[Survivor] = []
        if sent:
            runner.kill_group(proc)
            survivors = self._settle(proc)
            log(f"KILL {step.name}@{spec.name} after {trial.delay:.1f}s: SIGKILL to process group {proc.pid}")
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)  # nsenter itself: SIGKILL is final
        # the pipe closes once nothing of the step holds it; a survivor that does keeps the reader waiting
        reader.join(self.opts.grace)
        tail = live["result"].tail
        trial.killed_at = tail[-1] if tail else ""
        # the runner's own measure, unless a survivor still holds the output
        trial.first_seconds = live["final"].seconds if "final" in live else round(time.monotonic() - t0, 1)
        trial.first_rc = proc.returncode
        # poll() answers None while the reader thread reaps a step that just ended: only the exit status says
        # whether the kill landed
        trial.killed = sent and trial.first_rc == -signal.SIGKILL
        trial.survivors = [f"{s.pid} {s.cmdline}" for s in survivors]
        if survivors:
            log(f"left running by the kill (outside the group, as under SSM): {'; '.join(trial.survivors)}")
        if not trial.killed and trial.first_rc != 0:
            trial.tail = list(tail)[-TAIL:]

    def _attempt(self, step: Step, spec: NodeSpec, trial: Trial, seconds: float | None, source: str,
                 attempt: int) -> None:
        o = self.opts
        trial.delay = round(draw_delay(o.seed, step.name, spec.name, o.low, o.high, seconds, o.fraction, attempt), 1)
        trial.basis = bound(o, seconds, source)
        log(f"{step.name}@{spec.name}: kill after {trial.delay:.1f}s (drawn from {o.low:g}s to {trial.basis})")
        self._killed_run(step, spec, trial)

    def trial(self, step: Step, spec: NodeSpec, seconds: float | None, source: str) -> Trial:
        trial = Trial(step.name, spec.name)
        self._attempt(step, spec, trial, seconds, source, 1)
        if not trial.killed and trial.first_rc == 0:
            # That run measured what is killed: a re-run on an installed node (an install run from report.json is
            # often several times longer). Drawn within it, a second delay lands half-way.
            trial.earlier.append(f"delay {trial.delay}s ({trial.basis}): finished in {trial.first_seconds}s")
            self._attempt(step, spec, trial, trial.first_seconds, "the run before", 2)
        rerun = self._run(step, spec)
        trial.rerun_ok, trial.rerun_rc, trial.rerun_seconds = rerun.ok, rerun.rc, rerun.seconds
        if not rerun.ok:
            trial.tail = list(rerun.tail)[-TAIL:]
            return trial
        third = self._run(step, spec)
        trial.third_seconds = third.seconds
        last = third.tail[-1] if third.tail else ""
        if not third.ok:
            trial.third, trial.tail = f"failed (exit {third.rc})", list(third.tail)[-TAIL:]
        elif step.name in CHANGES_EVERY_RUN:
            trial.third = f"n/a: {CHANGES_EVERY_RUN[step.name]}"
        elif UNCHANGED.search(last):
            trial.third = "unchanged"
        else:
            trial.third = f"changed: {last}"
        return trial

    def cleanup(self) -> None:
        """Kill what this harness started: steps still running (their groups, then what escaped them: right after
        the runner reaped an interrupted run, its session is still its own) and what earlier kills left running."""
        runner.kill_running_steps()
        with self._lock:
            unsettled = list(self.unsettled)
        for proc in unsettled:
            self._settle(proc)
        kill_survivors(list(self.survivors))
        for reader in self.readers:
            reader.join(5)


# ---------------------------------------------------------------------------------------------------- a pass
def plan(selected: list[Step], opts: Options) -> Iterator[tuple[Step, NodeSpec, float | None, str]]:
    """(step, node, measured seconds or None, where they come from) for each trial, in the catalog's order."""
    durations = measured_durations()
    for step in selected:
        if step.name in opts.skips:
            continue
        for spec in runner._targets(step):
            seconds, source = durations.get((step.name, spec.name), (None, ""))
            yield step, spec, seconds, source


def run_pass(selected: list[Step], opts: Options, steps: StepRunner, steps_dir: Path) -> int:
    harness = Harness(steps, opts)
    trials: list[Trial] = []
    started = time.monotonic()
    interrupted = False
    settings = {"seed": opts.seed, "min": opts.low, "max": opts.high, "fraction": opts.fraction,
                "steps_dir": str(steps_dir), "skipped": [{"step": k, "reason": v} for k, v in opts.skips.items()]}
    log(f"kill test: seed {opts.seed} (repeat with --seed {opts.seed}), {len(selected)} step(s)")
    try:
        for step, spec, seconds, source in plan(selected, opts):
            trials.append(harness.trial(step, spec, seconds, source))
            write_report(trials, settings, started, False)  # a crash keeps what was learnt
            if not trials[-1].ok:
                print(f"\n===== {step.name} on {spec.name}; last lines:\n" + "\n".join(trials[-1].tail),
                      file=sys.stderr)
    except KeyboardInterrupt:
        log("interrupted: killing what the kill test started")
        interrupted = True
    finally:
        harness.cleanup()
        write_report(trials, settings, started, interrupted)
        print_table(trials, opts.skips, time.monotonic() - started)
    if interrupted:
        return 130
    return 0 if trials and all(t.ok for t in trials) else 1


# ---------------------------------------------------------------------------------------------------- command line
def _skip(value: str) -> tuple[str, str]:
    name, _, reason = value.partition("=")
    if not name.strip() or not reason.strip():
        raise argparse.ArgumentTypeError(f"{value!r}: a skip needs its reason: STEP=REASON")
    return name.strip(), reason.strip()


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python3 -m tests.rig.kill_harness", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", default=os.environ.get("RIG_STEPS", ""), help="comma list of steps (default all)")
    parser.add_argument("--skip", type=_skip, action="append", default=[], metavar="STEP=REASON",
                        help="leave a step out; the reason goes into the report")
    seed = os.environ.get("SEED", "")
    parser.add_argument("--seed", type=int, default=int(seed) if seed else None, help="RNG seed (default: random)")
    parser.add_argument("--min", type=float, default=1.0, help="shortest delay before the kill (s)")
    parser.add_argument("--max", type=float, default=60.0, help="longest delay when no duration was measured (s)")
    parser.add_argument("--fraction", type=float, default=0.8, help="of the measured duration: the longest delay")
    parser.add_argument("--grace", type=float, default=10.0,
                        help="seconds to wait after the kill for the step's output to close (survivors hold it)")
    parser.add_argument("--steps-dir", type=Path, default=None, help="another steps/ folder (tests of the rig)")
    args = parser.parse_args(argv)
    if not 0 < args.min <= args.max or not 0 < args.fraction <= 1 or args.grace < 0:
        parser.error("need 0 < --min <= --max, 0 < --fraction <= 1 and --grace >= 0")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if os.geteuid() != 0:
        print("the kill test needs root (it runs steps in the rig's nodes)", file=sys.stderr)
        return 2
    previous = signal.signal(signal.SIGTERM, cli._on_sigterm)  # SIGTERM cleans up as Ctrl-C does
    try:
        held = cli._lock("kill-test")  # noqa: F841 (held until the process exits: no rig command beside us)
        steps_dir = (args.steps_dir or step_catalog.STEPS_DIR).resolve()
        all_steps = step_catalog.load_steps(steps_dir)
        only = [s.strip() for s in args.steps.split(",") if s.strip()]
        selected = step_catalog.select(all_steps, None, only or None)
        skips = dict(args.skip)
        unknown = sorted(set(skips) - {s.name for s in all_steps})
        if unknown:
            raise RigError(f"--skip names no step: {', '.join(unknown)}")
        installed.require_installed(all_steps, with_dependencies(selected, all_steps))
        seed = args.seed if args.seed is not None else random.SystemRandom().randrange(10**6)
        opts = Options(seed, args.min, args.max, args.fraction, args.grace, skips)
        return run_pass(selected, opts, rig_runner(steps_dir), steps_dir)
    except (RigError, step_catalog.StepCatalogError) as exc:
        print(f"kill-test: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("kill-test: interrupted", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
