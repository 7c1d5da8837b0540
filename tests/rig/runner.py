"""`run`: the steps in the state machine's order on the rig's nodes, with live output, a table and report.json."""

from __future__ import annotations

import collections
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stacks import step_catalog
from stacks.step_catalog import Step, compose_script

from . import config, nodes, proofs, teardown, vpc
from .config import NodeSpec
from .sh import RigError, log

#: A line a step prints to report a check: CHECK <name> <ok|fail|skip> [detail ...]
CHECK_LINE = re.compile(r"^CHECK\s+(\S+)\s+(ok|fail|skip)\b\s*(.*)$")
PUBLIC_ENI = "controller:2"  # the ENI whose source/dest check the EC2 fix turns off
_PRINT = threading.Lock()
_RUNNING: set[subprocess.Popen[bytes]] = set()  # step processes, killed before teardown on Ctrl-C


def kill_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL a step's process group, as SSM's timeout does (the agent kills `-pid`: the script's group).

    The step's nsenter leads the group (start_new_session); nsenter forks the script into the node's namespaces
    but not out of the group (a process group is the host kernel's, whatever pid namespace its members see), so
    the signal reaches the script inside the node and every child that stayed in the group. What left the group
    (`timeout CMD` makes its own) or was started by the node's systemd survives, on EC2 as here."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


def kill_running_steps() -> None:
    """SIGKILL every step still running (its own process group: nsenter and the script inside the node).

    Done before the nodes shut down: a node's shutdown would otherwise wait on a script whose nsenter parent
    has stopped itself (nsenter mirrors its child's SIGSTOP), and the container would never finish."""
    for proc in list(_RUNNING):
        kill_group(proc)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGCONT)


@dataclass
class Result:
    step: str
    node: str
    seconds: float = 0.0
    ok: bool = False
    rc: int | None = None
    tail: collections.deque[str] = field(default_factory=lambda: collections.deque(maxlen=40))
    checks: list[dict[str, Any]] = field(default_factory=list)


#: Called once a step's process runs, with the live Result (its tail fills as lines arrive): the kill harness.
OnStart = Callable[[subprocess.Popen[bytes], Result], None]


def _say(node: str, step: str, line: str) -> None:
    with _PRINT:
        print(f"{node:10} {step:18} | {line}", flush=True)


def step_stem(step: Step) -> str:
    """The step's script name in the node (/root/rig-steps/STEM.sh) and log (build/rig/logs/steps/STEM.NODE.log)."""
    return f"{step.number:02d}-{step.name}"


def run_step_on(step: Step, spec: NodeSpec, steps_dir: Path, on_start: OnStart | None = None) -> Result:
    """Run one composed step on one node as SSM would: bash, root, HOME=/root, standard PATH, its timeout."""
    # exactly the SSM document's script
    return run_script_on(spec, step.name, compose_script(step), step.timeout, step_stem(step), on_start)


def run_script_on(spec: NodeSpec, name: str, script: str, timeout: int, file_stem: str,
                  on_start: OnStart | None = None) -> Result:
    """Run a script on a node (as root, like SSM's aws:runShellScript), streaming its lines; kill it at `timeout`."""
    result = Result(name, spec.name)
    target = nodes.rootfs(spec) / "root" / "rig-steps" / f"{file_stem}.sh"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(script)
    target.chmod(0o700)
    logdir = config.LOGS / "steps"
    logdir.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    cmd = nodes.node_cmd(spec, ["bash", f"/root/rig-steps/{target.name}"])
    # nsenter does not change cgroups: join the node's memory cgroup first, so the peak counts the step too
    procs = Path(f"/sys/fs/cgroup/memory/rig/{spec.name}/cgroup.procs")
    if procs.exists():
        cmd = ["sh", "-c", f'echo $$ > {procs} && exec "$@"', "rig-step", *cmd]
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)
    _RUNNING.add(proc)
    timed_out = threading.Event()

    def kill() -> None:
        timed_out.set()
        kill_group(proc)

    timer = threading.Timer(timeout, kill)
    timer.start()
    _say(spec.name, name, f"--- start (timeout {timeout}s)")
    try:
        if on_start is not None:
            on_start(proc, result)
        assert proc.stdout is not None
        with open(logdir / f"{file_stem}.{spec.name}.log", "w", buffering=1) as logf:
            for raw in proc.stdout:
                line = raw.decode(errors="replace").rstrip("\n")
                logf.write(line + "\n")
                result.tail.append(line)
                _say(spec.name, name, line)
                if m := CHECK_LINE.match(line.strip()):
                    status = m.group(2)
                    result.checks.append({"name": m.group(1), "ok": {"ok": True, "fail": False}.get(status),
                                          "status": status, "detail": m.group(3), "node": spec.name,
                                          "step": name})
        result.rc = proc.wait()
    finally:
        timer.cancel()
        _RUNNING.discard(proc)
        if proc.poll() is None:
            kill()
            proc.wait()
    result.seconds = round(time.monotonic() - t0, 1)
    result.ok = result.rc == 0 and not timed_out.is_set()
    why = "timed out" if timed_out.is_set() else f"exit {result.rc}"
    _say(spec.name, name, f"--- {'ok' if result.ok else 'FAILED (' + why + ')'} in {result.seconds}s")
    return result


def _targets(step: Step) -> list[NodeSpec]:
    return [spec for role in step.roles for spec in config.nodes_for_role(role)]


class MemorySampler(threading.Thread):
    """Peak of the rig's containers' memory: cgroup v1 'rig' usage less inactive file cache, every 2 s."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.root = Path("/sys/fs/cgroup/memory/rig")
        self.peak = 0
        self.stop = threading.Event()
        with contextlib.suppress(OSError):  # restart the kernel's peak for this run
            (self.root / "memory.max_usage_in_bytes").write_text("0\n")

    def sample(self) -> int:
        try:
            usage = int((self.root / "memory.usage_in_bytes").read_text())
            stat = dict(line.split() for line in (self.root / "memory.stat").read_text().splitlines())
            return usage - int(stat.get("total_inactive_file", 0))
        except (OSError, ValueError):
            return 0

    def run(self) -> None:
        while not self.stop.is_set():
            self.peak = max(self.peak, self.sample())
            self.stop.wait(2)

    def peak_with_cache(self) -> int:
        try:
            return int((self.root / "memory.max_usage_in_bytes").read_text())
        except (OSError, ValueError):
            return 0


def run_steps(selected: list[Step], all_steps: list[Step], steps_dir: Path,
              checks: list[dict[str, Any]]) -> list[Result]:
    names = {s.name for s in selected}
    results: list[Result] = []
    for wave in step_catalog.waves(all_steps):
        wave = [s for s in wave if s.name in names]
        if not wave:
            continue
        if any(s.name == step_catalog.EC2_FIX_BEFORE for s in wave):
            t0 = time.monotonic()
            eni = vpc.set_source_dest_check(PUBLIC_ENI, False)
            log(f"EC2 fix: source/dest check off on {eni['eni_id']} ({PUBLIC_ENI}); ENI filter rewritten")
            results.append(Result("ec2-fix", "controller", round(time.monotonic() - t0, 1), True, 0))
            checks.append({"name": "ec2-source-dest-check-off", "ok": not vpc.find_eni(
                vpc.load_eni_table(), PUBLIC_ENI)["source_dest_check"], "status": "ok",
                "detail": f"{eni['eni_id']} in {config.SHOWN_BUILD}/eni.json", "node": "vpc", "step": "ec2-fix"})
        jobs = [(step, spec) for step in wave for spec in _targets(step)]
        log("wave: " + ", ".join(f"{step.name}@{spec.name}" for step, spec in jobs))
        out: list[Result] = []
        lock = threading.Lock()

        def work(step: Step, spec: NodeSpec, out: list[Result] = out, lock: threading.Lock = lock) -> None:
            try:
                res = run_step_on(step, spec, steps_dir)
            except Exception as exc:  # report any rig failure as the step's
                res = Result(step.name, spec.name, 0.0, False, None)
                res.tail.append(f"rig error: {exc}")
            with lock:
                out.append(res)

        threads = [threading.Thread(target=work, args=job, daemon=True) for job in jobs]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        order = {(s.name, n.name): i for i, (s, n) in enumerate(jobs)}
        out.sort(key=lambda r: order[(r.step, r.node)])
        results += out
        for res in out:
            checks += res.checks
        failed = [r for r in out if not r.ok]
        if failed:
            for res in failed:
                print(f"\n===== {res.step} failed on {res.node} (exit {res.rc}); last lines:", file=sys.stderr)
                print("\n".join(res.tail), file=sys.stderr)
            break
    return results


def print_table(results: list[Result], checks: list[dict[str, Any]]) -> None:
    print(f"\n{'step':20} {'node':11} {'seconds':>8}  result")
    for r in results:
        print(f"{r.step:20} {r.node:11} {r.seconds:8.1f}  {'ok' if r.ok else 'FAILED'}")
    if checks:
        print(f"\n{'check':40} {'node':11} result  detail")
        for c in checks:
            print(f"{c['name']:40} {c['node']:11} {c['status']:6}  {c['detail']}")


def run_command(steps_csv: str, from_step: str, keep: bool, steps_dir: Path | None,
                up: Callable[[], dict[str, float]]) -> int:
    steps_dir = (steps_dir or step_catalog.STEPS_DIR).resolve()
    all_steps = step_catalog.load_steps(steps_dir)
    only = [s.strip() for s in steps_csv.split(",") if s.strip()]
    try:
        selected = step_catalog.select(all_steps, from_step or None, only or None)
    except step_catalog.StepCatalogError as exc:
        raise RigError(str(exc)) from exc
    t0 = time.monotonic()
    results: list[Result] = []
    checks: list[dict[str, Any]] = []
    sampler = MemorySampler()
    timings: dict[str, float] = {}
    rc = 1
    try:
        timings = up()
        sampler.start()
        results = run_steps(selected, all_steps, steps_dir, checks)
        ran = {r.step for r in results}
        complete = {s.name for s in selected} <= ran
        if complete and "verify" in ran and all(r.ok for r in results):
            more, proof_checks = proofs.after_install(lambda step, spec: run_step_on(step, spec, steps_dir), all_steps)
            results += more
            checks += proof_checks
        all_ok = all(r.ok for r in results) and all(c["ok"] is not False for c in checks)
        rc = 0 if all_ok and complete else 1
    except KeyboardInterrupt:
        log("interrupted: stopping the running steps")
        rc = 130
    finally:
        kill_running_steps()
        sampler.stop.set()
        peak = max(sampler.peak, sampler.sample())
        report = {
            "nodes": [spec.name for spec in config.NODES],
            "steps": [{"step": r.step, "node": r.node, "seconds": r.seconds, "ok": r.ok} for r in results],
            "checks": checks,
            "total_seconds": round(time.monotonic() - t0, 1),
            "peak_memory_mb": round(peak / 2**20),
            "peak_memory_with_page_cache_mb": round(sampler.peak_with_cache() / 2**20),
            "rig_timings": {k: round(v, 1) for k, v in timings.items()},
            "steps_dir": str(steps_dir),
        }
        config.BUILD.mkdir(parents=True, exist_ok=True)
        config.REPORT.write_text(json.dumps(report, indent=1) + "\n")
        print_table(results, checks)
        print(f"\ntotal {report['total_seconds']}s, peak memory {report['peak_memory_mb']} MiB "
              f"(with page cache {report['peak_memory_with_page_cache_mb']} MiB); report: {config.REPORT}")
        if keep:
            log("nodes kept (RIG_KEEP/--keep): `python3 -m tests.rig.cli down` removes them")
        else:
            teardown.down()
    return rc
