"""launch-instance with 2+ compute nodes: every hypervisor whose Host IP is in COMPUTE_IPS must be up, and an instance admin
pins to each host (zone nova:HOST) must go ACTIVE there; a leftover of an interrupted run is replaced and every
pinned instance is deleted afterwards. The section runs against a stand-in of the openstack CLI."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from tests.conftest import ROOT

LIB = ROOT / "steps" / "lib"
VERIFY = (ROOT / "steps" / "99-launch-instance.sh").read_text()
CHECK_FN = re.search(r"^check\(\) \{\n.*?^\}\n", (LIB / "optional" / "checks.sh").read_text(), re.S | re.M).group(0)
SECTION = re.search(r"^# --- 2\+ compute nodes:.*?(?=^# --- Neutron's API under churn)", VERIFY, re.S | re.M).group(0)

# The cloud as files under $S: hypervisors ("hostname ip state" lines), servers/<name> ("host status"), broken (hosts
# where a boot ends in ERROR), calls (every create and delete). Nothing sleeps.
FAKE = r"""
sleep() { :; }
openstack() {
    local name="${*: -1}" args="$*"
    case "$1 $2" in
    "hypervisor list") cat "$S/hypervisors" ;;
    "network show") echo net-1 ;;
    "server create")
        echo "create $args" >>"$S/calls"
        local host=${args#*--availability-zone nova:}
        host=${host%% *}
        if grep -qxF "$host" "$S/broken"; then echo "None ERROR" >"$S/servers/$name"
        else echo "$host ACTIVE" >"$S/servers/$name"; fi ;;
    "server delete")
        echo "delete $name" >>"$S/calls"
        rm "$S/servers/$name" ;;
    "server show")
        [[ -e "$S/servers/$3" ]] || { echo "No server with a name or ID of '$3' exists." >&2; return 1; }
        case "$args" in
        *"-c fault"*) echo "{'message': 'No valid host was found.'}" ;;
        *) tr ' ' '\n' <"$S/servers/$3" ;;
        esac ;;
    *) echo "unexpected: openstack $*" >&2; return 1 ;;
    esac
}
"""

IPS = ["172.31.32.21", "172.31.32.22", "172.31.32.23"]


def _verify(tmp_path: Path, computes: int, hypervisors: str, broken: str = "",
            servers: dict[str, str] | None = None) -> tuple[list[str], list[str], int]:
    """(CHECK lines, calls, failed) of the section with the first `computes` of IPS in COMPUTE_IPS."""
    (tmp_path / "servers").mkdir()
    (tmp_path / "hypervisors").write_text(hypervisors)
    (tmp_path / "broken").write_text(broken)
    (tmp_path / "calls").write_text("")
    for name, line in (servers or {}).items():
        (tmp_path / "servers" / name).write_text(line + "\n")
    prologue = (
        f'set -euo pipefail\n. "{LIB}/common.sh"\n. "{LIB}/openstack.sh"\n'
        f'OSA_RUN="{tmp_path}"; OSA_STEP=verify; OSA_T0=$SECONDS; S="{tmp_path}"\n'
        f'COMPUTE_IPS="{" ".join(IPS[:computes])}"; n_compute={computes}; failed=0\n'
    )
    script = prologue + FAKE + CHECK_FN + SECTION + 'echo "failed=$failed"\n'
    proc = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    checks = [line for line in lines if line.startswith("CHECK ")]
    return checks, (tmp_path / "calls").read_text().splitlines(), int(lines[-1].removeprefix("failed="))


def test_one_compute_node_adds_no_check_and_boots_nothing(tmp_path: Path) -> None:
    assert _verify(tmp_path, 1, "compute1 172.31.32.21 up\n") == ([], [], 0)


def test_every_hypervisor_runs_an_instance_pinned_to_it_and_nothing_is_left_behind(tmp_path: Path) -> None:
    # a hypervisor of another deployment's address is not ours; a hypervisor hostname may be a FQDN
    hypervisors = "compute1 172.31.32.21 up\ncompute2.ec2.internal 172.31.32.22 up\nstray 10.0.0.9 down\n"
    checks, calls, failed = _verify(tmp_path, 2, hypervisors)
    assert failed == 0, checks
    assert checks == [
        "CHECK hypervisors-up ok 2 hypervisors (172.31.32.21 172.31.32.22) up",
        "CHECK instance-on-compute1 ok verify-on-compute1 (zone nova:compute1) ACTIVE on compute1",
        "CHECK instance-on-compute2 ok verify-on-compute2 (zone nova:compute2) ACTIVE on compute2",
    ]
    creates, deletes = calls[:2], calls[2:]
    assert ["--availability-zone nova:compute1" in creates[0], "--availability-zone nova:compute2" in creates[1]] == [
        True, True]
    assert all("--nic net-id=net-1" in c and "--flavor m1.verify --image verify-image" in c for c in creates)
    assert deletes == ["delete verify-on-compute1", "delete verify-on-compute2"]
    assert not list((tmp_path / "servers").iterdir())


def test_a_hypervisor_down_and_a_boot_in_error_fail_with_the_reason_and_are_cleaned_up(tmp_path: Path) -> None:
    hypervisors = "compute1 172.31.32.21 up\ncompute2 172.31.32.22 up\ncompute3 172.31.32.23 down\n"
    checks, calls, failed = _verify(tmp_path, 3, hypervisors, broken="compute3\n")
    assert failed == 2
    assert checks[0].startswith("CHECK hypervisors-up fail 3 hypervisors") and "compute3 172.31.32.23 down" in checks[0]
    assert [c.split()[1:3] for c in checks[1:3]] == [["instance-on-compute1", "ok"], ["instance-on-compute2", "ok"]]
    assert checks[3].startswith("CHECK instance-on-compute3 fail ")
    assert "None ERROR" in checks[3] and "No valid host was found" in checks[3]
    assert calls[-1] == "delete verify-on-compute3" and not list((tmp_path / "servers").iterdir())


def test_an_unlisted_hypervisor_fails_the_count(tmp_path: Path) -> None:
    checks, _, failed = _verify(tmp_path, 2, "compute1 172.31.32.21 up\n")
    assert failed == 1 and checks[0].startswith("CHECK hypervisors-up fail 2 hypervisors")


def test_a_leftover_of_an_interrupted_run_is_replaced_by_a_fresh_boot(tmp_path: Path) -> None:
    hypervisors = "compute1 172.31.32.21 up\ncompute2 172.31.32.22 up\n"
    checks, calls, failed = _verify(tmp_path, 2, hypervisors, servers={"verify-on-compute2": "None ERROR"})
    assert failed == 0, checks
    assert calls[1] == "delete verify-on-compute2" and "nova:compute2" in calls[2]
