"""steps/lib/common.sh's change journal: a step's last line says what it changed, or that nothing changed (how
the rig proves a re-run of the network fix is a no-op)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.conftest import ROOT

LIB = ROOT / "steps" / "lib" / "common.sh"


def _bash(script: str, run_dir: Path) -> str:
    prologue = f'set -euo pipefail\n. "{LIB}"\nOSA_RUN="{run_dir}"; OSA_STEP=test; OSA_T0=$SECONDS\n'
    proc = subprocess.run(["bash", "-c", prologue + script], capture_output=True, text=True, check=True)
    return proc.stdout


def test_changes_in_the_step_and_in_subshells_are_listed(tmp_path: Path) -> None:
    out = _bash(
        f'write_file "{tmp_path}/a.conf" 0644 <<<x\nid=$(mark_changed "network:provider"; echo 1)\n_osa_changes',
        tmp_path,
    )
    assert out.splitlines()[-1] == f"changed: {tmp_path}/a.conf network:provider"


def test_a_run_that_writes_identical_content_changed_nothing_and_says_so_last(tmp_path: Path) -> None:
    (tmp_path / "a.conf").write_text("x\n")
    out = _bash(f'trap _osa_on_exit EXIT\nwrite_file "{tmp_path}/a.conf" 0644 <<<x', tmp_path)
    assert out.splitlines()[-1].endswith("[test] done in 0s; nothing changed")
    assert not list(tmp_path.glob("changes.*")), "the journal is removed at exit"
