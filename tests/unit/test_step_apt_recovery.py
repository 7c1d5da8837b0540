"""steps/lib/common.sh's apt_install after a killed run (issue 13, item 10): a stale policy-rc.d of ours is removed,
an interrupted dpkg is finished with `dpkg --configure -a` before installing, and apt waits for a held dpkg lock.

apt, dpkg and debconf are bash functions here that log their calls: the test is about what the library asks of
them and in which order, on a machine whose real package state it must not touch."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.conftest import ROOT

LIB = ROOT / "steps" / "lib" / "common.sh"

FAKES = """
calls=$TMP/calls
dpkg-query() { echo "install ok not-installed"; }
debconf-set-selections() { cat >/dev/null; }
apt-cache() { return 0; }
apt-get() { echo "apt-get $* policy=$([[ -e $OSA_POLICY_RC ]] && echo on || echo off)" >>"$calls"; }
dpkg() {
    echo "dpkg $*" >>"$calls"
    if [[ $1 == --audit && -e $TMP/interrupted ]]; then echo " nova-common   half-configured"; fi
    if [[ $1 == --configure ]]; then rm -f "$TMP/interrupted"; fi
    return 0
}
"""


def _bash(script: str, tmp: Path) -> subprocess.CompletedProcess[str]:
    prologue = (
        f'set -euo pipefail\n. "{LIB}"\nTMP="{tmp}"; OSA_RUN="{tmp}"; OSA_STEP=test; OSA_T0=$SECONDS\n'
        f'OSA_POLICY_RC="{tmp}/policy-rc.d"; OSA_APT_LOG="{tmp}/apt.log"\n'
    )
    return subprocess.run(["bash", "-c", prologue + FAKES + script], capture_output=True, text=True,
                          env={**os.environ, "APT_PROXY": ""})


def _calls(tmp: Path) -> list[str]:
    path = tmp / "calls"
    return path.read_text().splitlines() if path.exists() else []


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_a_policy_rc_left_by_a_killed_run_is_removed_at_step_start(tmp_path: Path) -> None:
    (tmp_path / "policy-rc.d").write_text(f"#!/bin/sh\n# openstack-aws apt_install, pid {_dead_pid()}\nexit 101\n")
    proc = _bash("policy_rc_clean", tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert not (tmp_path / "policy-rc.d").exists()
    assert "left by an interrupted run" in proc.stderr


def test_a_policy_rc_of_a_running_step_or_of_someone_else_stays(tmp_path: Path) -> None:
    live = subprocess.Popen(["sleep", "30"])
    try:
        (tmp_path / "policy-rc.d").write_text(f"#!/bin/sh\n# openstack-aws apt_install, pid {live.pid}\nexit 101\n")
        assert _bash("policy_rc_clean", tmp_path).returncode == 0
        assert (tmp_path / "policy-rc.d").exists(), "a step still installing keeps its policy-rc.d"
    finally:
        live.kill()
        live.wait()
    (tmp_path / "policy-rc.d").write_text("#!/bin/sh\n# the image's own\nexit 101\n")
    assert _bash("policy_rc_clean", tmp_path).returncode == 0
    assert (tmp_path / "policy-rc.d").exists(), "a policy-rc.d without our tag is not ours to remove"


def test_apt_install_after_a_killed_run_removes_its_policy_rc_and_installs_without_it_left(tmp_path: Path) -> None:
    (tmp_path / "policy-rc.d").write_text(f"#!/bin/sh\n# openstack-aws apt_install, pid {_dead_pid()}\nexit 101\n")
    proc = _bash("apt_install nova-common", tmp_path)
    assert proc.returncode == 0, proc.stderr
    install = [c for c in _calls(tmp_path) if c.startswith("apt-get install")]
    assert install and install[0].endswith("policy=on"), "packages are installed under our fresh policy-rc.d"
    assert not (tmp_path / "policy-rc.d").exists(), "and it is gone afterwards, not kept as someone else's"


def test_an_interrupted_dpkg_is_configured_before_apt_installs(tmp_path: Path) -> None:
    (tmp_path / "interrupted").touch()
    proc = _bash("apt_install nova-common", tmp_path)
    assert proc.returncode == 0, proc.stderr
    calls = _calls(tmp_path)
    configure = next(i for i, c in enumerate(calls) if c.startswith("dpkg --configure -a"))
    install = next(i for i, c in enumerate(calls) if c.startswith("apt-get install"))
    assert configure < install
    assert "dpkg was interrupted" in proc.stderr


def test_a_clean_dpkg_is_not_reconfigured_and_apt_waits_for_the_lock(tmp_path: Path) -> None:
    proc = _bash("apt_install nova-common", tmp_path)
    assert proc.returncode == 0, proc.stderr
    calls = _calls(tmp_path)
    assert not any(c.startswith("dpkg --configure") for c in calls)
    assert all("-o DPkg::Lock::Timeout=600" in c for c in calls if c.startswith("apt-get"))
