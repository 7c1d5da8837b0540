"""steps/lib/openstack.sh's endpoints: public ones https on the Elastic IP, internal/admin plain http on the
management address, and an older install's endpoints corrected in place (issue 11: a mixed catalog broke every
remote client; issue 13 item 3: the public side became https)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.conftest import ROOT

LIB = ROOT / "steps" / "lib"

# A stand-in for the openstack CLI: endpoints live in a file of "ID TYPE INTERFACE URL" lines; the user, grant and
# service helpers are stubbed (they have their own checks before creating anything).
FAKE = r"""
os_ensure_user() { :; }; os_ensure_grant() { :; }; os_ensure_role() { :; }; os_ensure_service() { :; }
openstack() {
    case "$1 $2" in
    "endpoint list")
        awk -v t="$4" -v i="$6" '$2 == t && $3 == i { print $1, $4 }' "$EP" ;;
    "endpoint create")
        echo "e$RANDOM $5 $6 $7" >>"$EP" ;;
    "endpoint set")
        awk -v id="$5" -v url="$4" '$1 == id { $4 = url } { print }' "$EP" >"$EP.new" && mv "$EP.new" "$EP" ;;
    *) echo "unexpected: openstack $*" >&2; return 1 ;;
    esac
}
"""


def _bash(script: str, tmp: Path) -> str:
    prologue = (
        f'set -euo pipefail\n. "{LIB}/common.sh"\n. "{LIB}/openstack.sh"\n'
        f'OSA_RUN="{tmp}"; OSA_STEP=test; OSA_T0=$SECONDS; EP="{tmp}/endpoints"; touch "$EP"\n'
        "CONTROLLER_IP=172.31.32.11 ELASTIC_IP=203.0.113.10\n"
    )
    proc = subprocess.run(["bash", "-c", prologue + FAKE + script], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_a_new_service_gets_https_on_the_elastic_ip_and_internal_admin_http_on_the_management_address(
    tmp_path: Path,
) -> None:
    _bash("os_register glance image Image GLANCE_PASS :9292", tmp_path)
    rows = sorted(line.split()[1:] for line in (tmp_path / "endpoints").read_text().splitlines())
    assert rows == [
        ["image", "admin", "http://172.31.32.11:9292"],
        ["image", "internal", "http://172.31.32.11:9292"],
        ["image", "public", "https://203.0.113.10:9292"],
    ]


def test_an_old_private_public_endpoint_is_corrected_and_journaled_then_a_rerun_changes_nothing(
    tmp_path: Path,
) -> None:
    (tmp_path / "endpoints").write_text(
        "e1 compute public http://172.31.32.11:8774/v2.1\n"
        "e2 compute internal http://172.31.32.11:8774/v2.1\n"
        "e3 compute admin http://172.31.32.11:8774/v2.1\n"
    )
    out = _bash("os_register nova compute Compute NOVA_PASS :8774/v2.1\n_osa_changes", tmp_path)
    assert "e1 compute public https://203.0.113.10:8774/v2.1" in (tmp_path / "endpoints").read_text()
    assert out.splitlines()[-1] == "changed: endpoint:compute:public"
    for f in tmp_path.glob("changes.*"):
        f.unlink()
    out = _bash("os_register nova compute Compute NOVA_PASS :8774/v2.1\n_osa_changes", tmp_path)
    assert out.splitlines()[-1] == "nothing changed"


def test_the_public_scheme_lives_in_one_place_and_is_https(tmp_path: Path) -> None:
    out = _bash("public_url :5000/v3/; echo; PUBLIC_SCHEME=http public_url :6080/vnc_auto.html", tmp_path)
    assert out.splitlines() == ["https://203.0.113.10:5000/v3/", "http://203.0.113.10:6080/vnc_auto.html"]


def test_a_previous_releases_http_public_endpoint_becomes_https_once(tmp_path: Path) -> None:
    """The release before TLS registered http://ELASTIC_IP: a re-run corrects only the public endpoint."""
    (tmp_path / "endpoints").write_text(
        "e1 volumev3 public http://203.0.113.10:8776/v3/%(project_id)s\n"
        "e2 volumev3 internal http://172.31.32.11:8776/v3/%(project_id)s\n"
        "e3 volumev3 admin http://172.31.32.11:8776/v3/%(project_id)s\n"
    )
    register = "os_register cinder volumev3 Volume CINDER_PASS ':8776/v3/%(project_id)s' cinderv3\n_osa_changes"
    out = _bash(register, tmp_path)
    assert out.splitlines()[-1] == "changed: endpoint:volumev3:public"
    assert (tmp_path / "endpoints").read_text().splitlines() == [
        "e1 volumev3 public https://203.0.113.10:8776/v3/%(project_id)s",
        "e2 volumev3 internal http://172.31.32.11:8776/v3/%(project_id)s",
        "e3 volumev3 admin http://172.31.32.11:8776/v3/%(project_id)s",
    ]
    for f in tmp_path.glob("changes.*"):
        f.unlink()
    assert _bash(register, tmp_path).splitlines()[-1] == "nothing changed"
