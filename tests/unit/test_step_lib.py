"""steps/lib/common.sh's change journal: a step's last line says what it changed, or that nothing changed (how
the rig proves a re-run of the network fix is a no-op)."""

from __future__ import annotations

import re
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
    # The duration is wall time (a loaded CI machine can take a second), so only its shape is pinned.
    assert re.search(r"\[test\] done in \d+s; nothing changed$", out.splitlines()[-1])
    assert not list(tmp_path.glob("changes.*")), "the journal is removed at exit"


def test_a_node_whose_userdata_predates_vpc_dns_derives_it_from_imds(tmp_path: Path) -> None:
    (tmp_path / "node.env").write_text(
        "ROLE=controller\nNODE_NAME=controller\nMGMT_IF=mgmt0\nMGMT_IP=172.31.32.11\nMGMT_MAC=02:00:ac:1f:20:0b\n")
    (tmp_path / "cluster.env").write_text(
        "CONTROLLER_IP=172.31.32.11\nSECRET_SOURCE=file:/x\nARTIFACT_STORE=dir:/y\n")
    # curl stands in for IMDSv2: a token, then the VPC's range for the management ENI's MAC only.
    fake_imds = (
        'curl() { case "$*" in *api/token*) echo tok ;; '
        '*"-H X-aws-ec2-metadata-token: tok"*macs/02:00:ac:1f:20:0b/vpc-ipv4-cidr-block) echo 10.20.0.0/16 ;; '
        '*) return 22 ;; esac; }\n'
    )
    out = _bash(fake_imds + f'OSA_ETC="{tmp_path}"\nload_facts\necho "dns=$VPC_DNS"', tmp_path)
    assert out.splitlines()[-1] == "dns=10.20.0.2"
    (tmp_path / "cluster.env").write_text(
        "CONTROLLER_IP=172.31.32.11\nSECRET_SOURCE=file:/x\nARTIFACT_STORE=dir:/y\nVPC_DNS=172.31.0.2\n")
    out = _bash(fake_imds + f'OSA_ETC="{tmp_path}"\nload_facts\necho "dns=$VPC_DNS"', tmp_path)
    assert out.splitlines()[-1] == "dns=172.31.0.2"


def test_a_service_still_stopping_after_a_no_block_restart_is_waited_for_not_failed(tmp_path: Path) -> None:
    # systemctl stand-in: the old process is still stopping for the first three polls, then the service runs.
    fake = (
        f'systemctl() {{ n=$(($(cat "{tmp_path}/n" 2>/dev/null || echo 0) + 1)); echo "$n" >"{tmp_path}/n"; '
        '((n <= 3)) && echo deactivating || echo active; }\nexport -f systemctl\nsleep() { :; }\nexport -f sleep\n'
    )
    out = _bash(fake + "svc_check nova-compute; echo checked", tmp_path)
    assert out.splitlines()[-1] == "checked"
