"""The kill harness (tests/rig/kill_harness.py) on fake nodes: each node is a folder and its steps run in a local
bash through the runner's own run_script_on (only nodes.node_cmd is replaced), so the kill is the real process
group SIGKILL and the re-runs are the runner's."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest

from stacks import step_catalog
from tests.rig import cli, config, installed, kill_harness, kill_report, nodes, state
from tests.rig.sh import RigError, pid_alive

HEADER = "#!/usr/bin/env bash\n# step: {name}\n# roles: {roles}\n# after: -\n# timeout: 60\n# inputs: -\n# guarantees: -\n"
#: A step's run counter, in the node: the first run (the one the harness kills) is the long one, as real work is.
COUNT = 'S=$(dirname "$0"); n=$(cat "$S/{name}.runs" 2>/dev/null || echo 0); echo $((n + 1)) > "$S/{name}.runs"\n'
SLOW = ('echo "phase one"\nif [ "$n" = 0 ]; then echo "phase two: working"; sleep 30 & echo $! > "$S/{name}.child"; '
        "wait; fi\n")
DONE = 'echo "00:00:00 [{name}] done in 0s; nothing changed"\n'
BODIES = {
    "slow": SLOW + DONE,
    "quick": DONE,
    "fails": SLOW + 'if [ "$n" -ge 1 ]; then echo "cannot recover"; exit 3; fi\n' + DONE,
    "chatty": 'if [ "$n" = 0 ]; then sleep 30; fi\necho "00:00:00 [{name}] done in 0s; changed: object:x"\n',
    # `timeout` makes its own process group: the group kill misses it, as SSM's does on EC2
    "verify": 'if [ "$n" = 0 ]; then sleep 30; fi\necho "00:00:00 [{name}] done in 0s; changed: server:x"\n',
    # its first two runs take 3 s: the first attempt's delay (from a 100-s install) lands after it, the second in it
    "measured": 'if [ "$n" -le 1 ]; then echo "phase one"; sleep 0.3; echo "phase two: working"; sleep 2.7; fi\n' + DONE,
    "escapes": 'if [ "$n" = 0 ]; then timeout 20 sleep 21 & echo $! > "$S/{name}.timeout"; sleep 30; fi\n' + DONE,
}
FAKE_NODES = (
    config.NodeSpec("kt-ctl", "controller", "ktc", (config.EniSpec(0, "A", "10.99.0.11"),)),
    config.NodeSpec("kt-cmp1", "compute", "ktm", (config.EniSpec(0, "A", "10.99.0.21"),)),
)


@pytest.fixture
def rig(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A rig of fake nodes in tmp_path: state, logs, reports and root folders are never the real rig's."""
    build = tmp_path / "build"
    for name, value in (("BUILD", build), ("STATE", build / "state.json"), ("LOGS", build / "logs"),
                        ("NODES_DIR", build / "nodes"), ("REPORT", build / "report.json"), ("NODES", FAKE_NODES)):
        monkeypatch.setattr(config, name, value)

    def node_cmd(spec: config.NodeSpec, argv: list[str], env: dict[str, str] | None = None) -> list[str]:
        return [argv[0], str(nodes.rootfs(spec) / argv[1].lstrip("/"))]  # bash /root/rig-steps/X.sh of the node

    monkeypatch.setattr(nodes, "node_cmd", node_cmd)
    monkeypatch.setattr(nodes, "leader", lambda spec: os.getpid())
    steps = tmp_path / "steps"
    (steps / "lib").mkdir(parents=True)
    (steps / "lib" / "common.sh").write_text("# the library: functions only\n")
    for number, (name, body) in enumerate(BODIES.items(), start=10):
        roles = "controller,compute" if name == "slow" else "controller"
        text = HEADER.format(name=name, roles=roles) + COUNT.format(name=name) + body
        (steps / f"{number}-{name}.sh").write_text(text.replace("{name}", name))
    return tmp_path


def _node_file(node: int, name: str) -> Path:
    """A file a test step left in a node's /root/rig-steps."""
    return nodes.rootfs(FAKE_NODES[node]) / "root" / "rig-steps" / name


def _steps(rig: Path, *names: str) -> list[step_catalog.Step]:
    return step_catalog.select(step_catalog.load_steps(rig / "steps"), None, list(names))


def _opts(low: float = 1.0, high: float = 1.0, grace: float = 5.0) -> kill_harness.Options:
    return kill_harness.Options(seed=7, low=low, high=high, fraction=0.8, grace=grace, skips={})


def _pass(rig: Path, *names: str, opts: kill_harness.Options | None = None) -> tuple[int, dict]:
    selected = _steps(rig, *names)
    code = kill_harness.run_pass(selected, opts or _opts(), kill_harness.rig_runner(rig / "steps"), rig / "steps")
    return code, json.loads(kill_report.report_path().read_text())


def _install(rig: Path) -> None:
    """What a completed install leaves: state.json's nodes, and per step and node a script and a `done` log."""
    state.set_value("nodes", [spec.name for spec in FAKE_NODES])
    for step in step_catalog.load_steps(rig / "steps"):
        for spec in (s for s in FAKE_NODES if s.role in step.roles):
            script = nodes.rootfs(spec) / "root" / "rig-steps" / f"{step.number:02d}-{step.name}.sh"
            script.parent.mkdir(parents=True, exist_ok=True)
            script.write_text("")
            log = config.LOGS / "steps" / f"{script.stem}.{spec.name}.log"
            log.parent.mkdir(parents=True, exist_ok=True)
            log.write_text(f"12:00:00 [{step.name}] done in 3s; nothing changed\n")


def test_the_delay_comes_from_the_seeded_rng_within_its_bounds() -> None:
    draw = kill_harness.draw_delay
    delays = [draw(seed, "keystone", "controller", 2.0, 50.0, None, 0.8) for seed in range(200)]
    assert all(2.0 <= d <= 50.0 for d in delays) and len(set(delays)) == 200
    assert draw(3, "keystone", "controller", 2.0, 50.0, None, 0.8) == draw(3, "keystone", "controller", 2.0, 50.0,
                                                                            None, 0.8)  # reproducible
    assert draw(3, "keystone", "controller", 2.0, 50.0, None, 0.8) != draw(3, "glance", "controller", 2.0, 50.0,
                                                                            None, 0.8)
    measured = [draw(seed, "base", "compute1", 1.0, 50.0, 100.0, 0.3) for seed in range(200)]
    assert all(1.0 <= d <= 30.0 for d in measured) and max(measured) > 25  # a fraction of the duration, not --max
    assert draw(1, "base", "compute1", 5.0, 50.0, 4.0, 0.5) == 5.0  # never below --min


def test_the_delay_is_bounded_by_the_last_measured_run(rig: Path) -> None:
    config.BUILD.mkdir(parents=True)
    config.REPORT.write_text(json.dumps({"steps": [
        {"step": "slow", "node": "kt-ctl", "seconds": 10.0, "ok": True},
        {"step": "quick (re-run)", "node": "kt-ctl", "seconds": 4.0, "ok": True},  # the proofs' re-run wins
        {"step": "quick", "node": "kt-ctl", "seconds": 90.0, "ok": True},
    ]}))
    opts = _opts()
    planned = {(step.name, spec.name): (seconds, source) for step, spec, seconds, source
               in kill_harness.plan(_steps(rig, "slow", "quick"), opts)}
    assert planned == {("slow", "kt-ctl"): (10.0, "report.json"), ("slow", "kt-cmp1"): (None, ""),
                       ("quick", "kt-ctl"): (4.0, "report.json re-run")}
    assert kill_harness.bound(opts, 10.0, "report.json") == "0.8 x 10s (report.json)"
    assert kill_harness.bound(opts, None, "") == "--max 1s"  # nothing measured for this node
    # an earlier kill test measured the re-run on an installed node (what the killed run is): it wins
    kill_report.report_path().write_text('{"trials": [{"step": "slow", "node": "kt-ctl", "third_seconds": 2.0}]}')
    assert next(kill_harness.plan(_steps(rig, "slow"), opts))[2:] == (2.0, "kill-report.json")


def test_a_kill_that_missed_the_run_is_drawn_again_within_the_run_it_measured(rig: Path) -> None:
    config.BUILD.mkdir(parents=True)
    config.REPORT.write_text('{"steps": [{"step": "measured", "node": "kt-ctl", "seconds": 100.0, "ok": true}]}')
    opts = _opts(low=0.5)
    assert kill_harness.draw_delay(7, "measured", "kt-ctl", 0.5, 1.0, 100.0, 0.8) > 3  # the first attempt: too late
    code, report = _pass(rig, "measured", opts=opts)
    (trial,) = report["trials"]
    assert code == 0 and trial["killed"] is True and trial["killed_at"] == "phase two: working"
    assert len(trial["earlier"]) == 1 and "(0.8 x 100s (report.json)): finished in 3" in trial["earlier"][0]
    assert trial["basis"].startswith("0.8 x 3s (the run before)") and 0.5 <= trial["delay"] <= 2.5
    assert trial["third"] == "unchanged"


def test_the_report_records_the_kill_point_and_the_rerun(rig: Path) -> None:
    code, report = _pass(rig, "slow")
    assert code == 0 and report["ok"] is True and report["seed"] == 7
    trials = {t["node"]: t for t in report["trials"]}
    assert set(trials) == {"kt-ctl", "kt-cmp1"}  # every node of the step's roles
    for node, t in trials.items():
        assert t["delay"] == 1.0 and t["killed"] is True and t["finished_before_kill"] is False
        assert t["killed_at"] == "phase two: working" and t["first_rc"] == -signal.SIGKILL
        assert t["rerun_ok"] is True and t["rerun_rc"] == 0 and t["third"] == "unchanged" and t["survivors"] == []
        assert (config.LOGS / "steps" / f"10-slow-killed.{node}.log").read_text().endswith("phase two: working\n")
    # the group kill reached the step's child, as it reaches the script's children inside a node
    for node in (0, 1):
        assert not pid_alive(int(_node_file(node, "slow.child").read_text()))
        assert _node_file(node, "slow.runs").read_text().strip() == "3"  # killed, re-run, third run


def test_a_failing_rerun_makes_the_exit_code_non_zero(rig: Path) -> None:
    code, report = _pass(rig, "quick", "fails")
    assert code == 1 and report["ok"] is False
    failed = next(t for t in report["trials"] if t["step"] == "fails")
    assert failed["killed"] is True and failed["rerun_ok"] is False and failed["rerun_rc"] == 3
    assert failed["third"] == "not run" and "cannot recover" in failed["tail"] and failed["ok"] is False
    assert next(t for t in report["trials"] if t["step"] == "quick")["ok"] is True


def test_a_step_that_finished_before_the_kill_is_reported_as_such(rig: Path, capsys: pytest.CaptureFixture) -> None:
    code, report = _pass(rig, "quick")
    (trial,) = report["trials"]
    assert code == 0 and trial["killed"] is False and trial["finished_before_kill"] is True
    assert trial["first_rc"] == 0 and trial["rerun_ok"] is True and trial["ok"] is True
    assert len(trial["earlier"]) == 1  # drawn again within the run it measured: still too short to kill
    out = capsys.readouterr().out
    assert "finished before the kill (exit 0)" in out and "1 finished before the kill" in out


@pytest.mark.parametrize(("name", "ok", "third"), [("chatty", False, "changed: 00:00:00 [chatty] done in 0s; "
                                                   "changed: object:x"),
                                                   ("verify", True, "n/a: creates and deletes its test objects on "
                                                   "every run")])
def test_the_third_run_must_change_nothing_unless_the_step_makes_test_objects(rig: Path, name: str, ok: bool,
                                                                               third: str) -> None:
    code, report = _pass(rig, name)
    (trial,) = report["trials"]
    assert trial["rerun_ok"] is True and trial["third"] == third and trial["ok"] is ok and code == (0 if ok else 1)


def test_what_escapes_the_group_is_reported_and_killed_at_the_end(rig: Path) -> None:
    code, report = _pass(rig, "escapes", opts=_opts(grace=0.5))
    (trial,) = report["trials"]
    assert code == 0 and trial["killed"] is True
    assert sorted(s.split(" ", 1)[1] for s in trial["survivors"]) == ["sleep 21", "timeout 20 sleep 21"]
    assert not pid_alive(int(_node_file(0, "escapes.timeout").read_text()))  # cleanup: nothing left running


def test_an_interrupt_kills_what_the_harness_started(rig: Path) -> None:
    real = kill_harness.rig_runner(rig / "steps")

    def interrupted(*args: object) -> kill_harness.Result:
        raise KeyboardInterrupt  # Ctrl-C during the re-run

    steps = kill_harness.StepRunner(killable=real.killable, run=interrupted)
    t0 = time.monotonic()
    code = kill_harness.run_pass(_steps(rig, "escapes"), _opts(grace=0.5), steps, rig / "steps")
    assert code == 130 and time.monotonic() - t0 < 15
    assert not pid_alive(int(_node_file(0, "escapes.timeout").read_text()))
    assert json.loads(kill_report.report_path().read_text())["interrupted"] is True


def _main(monkeypatch: pytest.MonkeyPatch, *argv: str) -> int:
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    return kill_harness.main(["--steps-dir", str(config.BUILD.parent / "steps"), "--min", "1", "--max", "1", *argv])


def test_it_refuses_a_rig_without_nodes(rig: Path, monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture) -> None:
    assert _main(monkeypatch) == 1
    assert "no rig nodes recorded" in capsys.readouterr().err
    assert not _node_file(0, "slow.runs").exists()  # nothing ran


def test_it_refuses_while_another_command_holds_the_rig(rig: Path, monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture) -> None:
    _install(rig)
    held = cli._lock("local run")  # noqa: F841 (the other command)
    assert _main(monkeypatch) == 1
    assert "the rig is busy" in capsys.readouterr().err and "local run" in (config.BUILD / "rig.lock").read_text()


def test_it_refuses_a_rig_that_is_not_fully_installed(rig: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    all_steps = step_catalog.load_steps(rig / "steps")
    _install(rig)
    installed.require_installed(all_steps)  # the control: complete evidence passes
    log = config.LOGS / "steps" / "10-slow.kt-cmp1.log"
    log.write_text("12:00:00 [slow] phase one\n")  # its last run never finished
    with pytest.raises(RigError, match=r"not fully installed: .*slow@kt-cmp1"):
        installed.require_installed(all_steps)
    log.write_text("12:00:00 [slow] done in 3s; changed: x\n")
    (nodes.rootfs(FAKE_NODES[1]) / "root" / "rig-steps" / "10-slow.sh").unlink()  # a log of an earlier rig's node
    with pytest.raises(RigError, match=r"slow@kt-cmp1"):
        installed.require_installed(all_steps)
    monkeypatch.setattr(nodes, "leader", lambda spec: None)
    with pytest.raises(RigError, match=r"not running: kt-ctl, kt-cmp1"):
        installed.require_installed(all_steps)


def test_make_local_runs_count_as_installed(rig: Path) -> None:
    names = ["nova-compute", "compute", "base"]
    assert installed._local_step("local-openstack-aws-nova-compute", names) == "nova-compute"
    assert installed._local_step("local-my-site-base", names) == "base"
    assert installed._local_step("10-base", names) is None


def test_the_cli_runs_a_pass_on_an_installed_rig(rig: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _install(rig)
    assert _main(monkeypatch, "--steps", "quick,slow", "--skip", "slow=no install side effects here") == 0
    report = json.loads(kill_report.report_path().read_text())
    assert [t["step"] for t in report["trials"]] == ["quick"]
    assert report["skipped"] == [{"step": "slow", "reason": "no install side effects here"}]
    with pytest.raises(SystemExit):
        kill_harness.parse_args(["--skip", "slow"])  # a skip without its reason


def test_a_kill_test_of_some_steps_needs_only_them_and_what_they_wait_for_installed() -> None:
    from stacks import step_catalog
    from tests.rig.kill_harness import with_dependencies

    steps = step_catalog.load_steps()
    chosen = [s for s in steps if s.name == "keystone"]
    assert [s.name for s in with_dependencies(chosen, steps)] == ["base", "datapath", "controller-infra", "keystone"]
