"""A password rotated in the secret reaches every place that keeps it (issue 13, item 11): Keystone users (service
users, demo, and admin through keystone-manage bootstrap), MariaDB's root, RabbitMQ's user openstack and the cell
mappings in nova_api. Each block runs as the step has it, against stand-ins that keep their state in files: rotated,
it updates once and journals the change; unchanged (and on the re-run), it updates nothing and says so. No secret
reaches an argument of any command (the stand-ins log their argv) or the step's output.

Keystone is a small HTTP server that answers token requests as Keystone does (201 for a user's right password,
401 otherwise), so the real jq and curl of os_password_ok build and send the request."""

from __future__ import annotations

import json
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.conftest import ROOT

LIB = ROOT / "steps" / "lib"
STEPS = ROOT / "steps"
OLD, NEW = "0ldPassw0rdAAAA1111", "n3wPassw0rdBBBB2222"  # URL-safe, as the stack generates them


def _block(step: str, first: str, end: str) -> str:
    """The lines of steps/<step> from the one starting with `first` up to (without) the one starting with `end`."""
    lines = (STEPS / step).read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(first))
    stop = next(i for i in range(start + 1, len(lines)) if lines[i].startswith(end))
    return "\n".join(lines[start:stop]) + "\n"


class _Keystone(BaseHTTPRequestHandler):
    users: Path  # {"name": {"password", "enabled", "projects" (with a role)}}; "status" beside it forces an answer

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        forced = self.users.parent / "status"
        status = int(forced.read_text()) if forced.exists() else 401
        if not forced.exists() and self.path == "/v3/auth/tokens":
            ident = body["auth"]["identity"]
            user = ident["password"]["user"]
            have = json.loads(self.users.read_text()).get(user["name"])
            # a token scoped to a project needs a role there (Keystone: 401 "has no access to project")
            scope = body["auth"].get("scope", {}).get("project")
            if (ident["methods"] == ["password"] and user["domain"] == {"id": "default"} and have
                    and have["enabled"] and have["password"] == user["password"]
                    and (scope is None or (scope["domain"] == {"id": "default"}
                                           and scope["name"] in have["projects"]))):  # fmt: skip
                status = 201
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def keystone(tmp_path: Path) -> Iterator[int]:
    handler = type("Keystone", (_Keystone,), {"users": tmp_path / "keystone.json"})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


# Every command the blocks run, as a stand-in that logs its argv to $S/argv and its effect to $S/calls. The cloud's
# state lives in files under $S; a stand-in changes it only from its stdin or environment, as the real one would.
FAKES = r"""
argv() { printf '%s\n' "$*" >>"$S/argv"; }
sleep() { :; }
# the real jq and curl, logged; the Keystone stand-in listens on localhost
jq() { argv jq "$@"; command jq "$@"; }
curl() { argv curl "$@"; command curl "$@"; }
internal_url() { printf 'http://127.0.0.1:%s%s' "$KS_PORT" "${1#:5000}"; }
openstack() {
    argv openstack "$@"
    case "$1 $2" in
    "user show") command jq -e --arg n "${*: -1}" 'has($n)' "$S/keystone.json" >/dev/null && echo "${*: -1}" ;;
    "token issue") ;;
    *) echo "unexpected: openstack $*" >&2; return 1 ;;
    esac
}
# openstacksdk's user calls (os_ensure_user's script), applied to the Keystone stand-in
python3() {
    argv python3 "$@"
    local script
    script=$(cat)
    if [[ -n "${OSA_ID:-}" && "$script" == *update_user* ]]; then
        echo "update_user $OSA_ID" >>"$S/calls"
        command jq --arg u "$OSA_ID" '.[$u].password = env.OSA_PASS' "$S/keystone.json" >"$S/k" && mv "$S/k" "$S/keystone.json"
    elif [[ "$script" == *create_user* ]]; then
        echo "create_user $OSA_USER" >>"$S/calls"
        command jq --arg u "$OSA_USER" '.[$u] = {password: env.OSA_PASS, enabled: true, projects: []}' "$S/keystone.json" >"$S/k" &&
            mv "$S/k" "$S/keystone.json"
    else
        echo "unexpected python3 script" >&2; return 1
    fi
}
keystone-manage() {
    argv keystone-manage "$@"
    echo "keystone-manage $1" >>"$S/calls"
    # bootstrap sets the admin password it cannot authenticate and admin's role on project admin (keystone/cmd/bootstrap.py)
    command jq '.admin = {password: env.OS_BOOTSTRAP_PASSWORD, enabled: true, projects: ["admin"]}' "$S/keystone.json" >"$S/k" &&
        mv "$S/k" "$S/keystone.json"
}
wait_for() { shift 2; "$@" >/dev/null; }
svc_apply() { :; }
# rabbitmqctl reads a password it is not given from stdin (3.10's add_user, authenticate_user, change_password),
# but RabbitMQ 4's (Debian 13) never returns when also given -q
rabbitmqctl() {
    argv rabbitmqctl "$@"
    local line quiet=
    if [[ "$1" == -q ]]; then quiet=1; shift; fi
    case "$1" in add_user | change_password | authenticate_user)
        [[ -z "$quiet" ]] || { echo "rabbitmqctl -q $1 would wait forever on RabbitMQ 4" >&2; return 1; } ;;
    esac
    set -- "" "$@"
    case "$2" in
    status) ;;
    list_users) [[ ! -e "$S/rabbit" ]] || printf 'openstack\t[]\n' ;;
    add_user | change_password) IFS= read -r line; printf '%s' "$line" >"$S/rabbit"; echo "rabbitmqctl $2" >>"$S/calls" ;;
    authenticate_user) IFS= read -r line; [[ "$line" == "$(cat "$S/rabbit")" ]] ;;
    list_user_permissions) printf '/\t.*\t.*\t.*\n' ;;
    *) echo "unexpected: rabbitmqctl $*" >&2; return 1 ;;
    esac
}
# MariaDB's root: the password of its hash in $S/root; the SQL comes on stdin
mysql_root() {
    argv mysql "$@"
    local sql
    sql=$(cat)
    case "$sql" in
    *"SELECT JSON_VALUE"*) [[ "$sql" == *"PASSWORD('$(cat "$S/root")')"* ]] && echo 1 || echo 0 ;;
    *"ALTER USER 'root'@'localhost'"*)
        echo "mysql ALTER USER root" >>"$S/calls"
        sed -n "s/.*USING PASSWORD('\([^']*\)').*/\1/p" <<<"$sql" >"$S/root" ;;
    *) echo "unexpected SQL" >&2; return 1 ;;
    esac
}
# nova-manage's cell mappings: "name uuid transport_url database_connection" lines in $S/cells; update_cell without
# URLs takes them from the configuration, which oslo.config's OS_<GROUP>__<OPTION> variables override
as_service() { shift; "$@"; }
nova-manage() {
    argv nova-manage "$@"
    case "$2" in
    list_cells)
        [[ "$3" == --verbose ]] || { echo "list_cells masks passwords without --verbose" >&2; return 1; }
        printf '+------+------+---------------+---------------------+----------+\n'
        printf '| Name | UUID | Transport URL | Database Connection | Disabled |\n'
        while read -r name uuid mq db; do printf '| %s | %s | %s | %s | False |\n' "$name" "$uuid" "$mq" "$db"; done <"$S/cells" ;;
    update_cell)
        # like the real one, nova-manage loads its own transport first: none:/// has no driver
        [[ "${OS_DEFAULT__TRANSPORT_URL:-}" != none:* ]] ||
            { echo 'DriverLoadFailure: Failed to load transport driver "none"' >&2; return 1; }
        [[ "$3" == --cell_uuid && ($# == 4 || ($# == 6 && "$5" == --transport-url)) ]] ||
            { echo "unexpected: nova-manage $*" >&2; return 1; }
        echo "update_cell $4" >>"$S/calls"
        MQ=${6:-${OS_DEFAULT__TRANSPORT_URL:?the test expects every URL given}} \
            awk -v u="$4" '$2 == u { $3 = ENVIRON["MQ"]; $4 = ENVIRON["OS_DATABASE__CONNECTION"] } 1' \
            "$S/cells" >"$S/c" && mv "$S/c" "$S/cells" ;;
    *) echo "unexpected: nova-manage $*" >&2; return 1 ;;
    esac
}
"""

CELL0_UUID, CELL1_UUID = "00000000-0000-0000-0000-000000000000", "6c4e3f0a-1b2c-4d5e-8f90-a1b2c3d4e5f6"


def _run(
    tmp: Path, block: str, secrets: dict[str, str], port: int = 0
) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    """`block` after the library and the stand-ins, with `secrets` as the secret; returns the process and the
    calls the stand-ins made (a fresh list per run). The last line of stdout is the change journal."""
    source = tmp / "secrets.json"
    source.write_text(json.dumps(secrets))
    for name in ("argv", "calls"):
        (tmp / name).write_text("")
    for journal in tmp.glob("changes.*"):
        journal.unlink()
    prologue = (
        f'set -euo pipefail\n. "{LIB}/common.sh"\n. "{LIB}/openstack.sh"\n'
        f'OSA_RUN="{tmp}"; OSA_STEP=test; OSA_T0=$SECONDS; S="{tmp}"; KS_PORT={port}\n'
        "CONTROLLER_IP=172.31.32.11 ELASTIC_IP=203.0.113.10 MGMT_IP=172.31.32.11\n"
        f"SECRET_SOURCE=file:{source}\n"
    )
    proc = subprocess.run(
        ["bash", "-c", prologue + FAKES + block + "_osa_changes\n"], capture_output=True, text=True, timeout=60
    )
    argv = (tmp / "argv").read_text()
    for value in secrets.values():
        assert value not in argv, f"a secret in a command's arguments:\n{argv}"
        assert value not in proc.stdout + proc.stderr, "a secret in the output"
    return proc, (tmp / "calls").read_text().splitlines()


def _journal(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.splitlines()[-1]


def _users(tmp: Path, **passwords: str) -> None:
    users = {u: {"password": p, "enabled": True, "projects": [u]} for u, p in passwords.items()}
    (tmp / "keystone.json").write_text(json.dumps(users))


# ---------------------------------------------------------------------------------------------------- Keystone
def test_a_service_user_gets_a_rotated_password_once_and_an_unchanged_one_is_left_alone(
    tmp_path: Path, keystone: int
) -> None:
    _users(tmp_path, glance=OLD)
    secrets = {"GLANCE_PASS": NEW}
    proc, calls = _run(tmp_path, "os_ensure_user glance GLANCE_PASS\n", secrets, keystone)
    assert calls == ["update_user glance"]
    assert _journal(proc) == "changed: user:glance:password"
    assert "user glance: the secret's password set (Keystone refused it)" in proc.stdout
    assert json.loads((tmp_path / "keystone.json").read_text())["glance"]["password"] == NEW
    again, calls = _run(tmp_path, "os_ensure_user glance GLANCE_PASS\n", secrets, keystone)
    assert calls == [] and _journal(again) == "nothing changed"


def test_a_missing_user_is_created_with_the_secrets_password(tmp_path: Path, keystone: int) -> None:
    _users(tmp_path)
    proc, calls = _run(tmp_path, "os_ensure_user demo DEMO_PASS\n", {"DEMO_PASS": NEW}, keystone)
    assert calls == ["create_user demo"] and _journal(proc) == "changed: user:demo"


def test_a_user_keystone_still_refuses_stops_the_step_instead_of_resetting_it_on_every_run(
    tmp_path: Path, keystone: int
) -> None:
    (tmp_path / "keystone.json").write_text(json.dumps({"swift": {"password": OLD, "enabled": False, "projects": []}}))
    proc, calls = _run(tmp_path, "os_ensure_user swift SWIFT_PASS\n", {"SWIFT_PASS": OLD}, keystone)
    assert proc.returncode != 0 and "Keystone still refuses the password of swift" in proc.stderr
    assert calls == ["update_user swift"]


def test_keystone_answering_anything_but_201_or_401_changes_no_password(tmp_path: Path, keystone: int) -> None:
    _users(tmp_path, nova=OLD)
    (tmp_path / "status").write_text("503")
    proc, calls = _run(tmp_path, "os_ensure_user nova NOVA_PASS\n", {"NOVA_PASS": NEW}, keystone)
    assert proc.returncode != 0 and "Keystone answered HTTP 503" in proc.stderr
    assert calls == []


def _keystone_block() -> str:
    block = _block("30-keystone.sh", "os_admin", "os_ensure_endpoint identity public")
    assert "keystone-manage bootstrap" in block
    return "load_secrets ADMIN_PASS\n" + block


def test_a_rotated_admin_password_is_set_by_bootstrap_and_journaled(tmp_path: Path, keystone: int) -> None:
    block = _keystone_block()
    _users(tmp_path, admin=OLD)
    secrets = {"ADMIN_PASS": NEW}
    proc, calls = _run(tmp_path, block, secrets, keystone)
    assert calls == ["keystone-manage bootstrap"] and _journal(proc) == "changed: user:admin"
    assert json.loads((tmp_path / "keystone.json").read_text())["admin"]["password"] == NEW
    again, calls = _run(tmp_path, block, secrets, keystone)
    assert calls == [] and _journal(again) == "nothing changed"


def test_an_admin_without_its_role_on_project_admin_is_bootstrapped_again(tmp_path: Path, keystone: int) -> None:
    # a first run killed inside bootstrap: the user exists with the secret's password, the role assignment not yet
    (tmp_path / "keystone.json").write_text(json.dumps({"admin": {"password": NEW, "enabled": True, "projects": []}}))
    proc, calls = _run(tmp_path, _keystone_block(), {"ADMIN_PASS": NEW}, keystone)
    assert calls == ["keystone-manage bootstrap"] and _journal(proc) == "changed: user:admin"


# ---------------------------------------------------------------------------------------------------- RabbitMQ
def _rabbit_block() -> str:
    return "epmd_dropin=/x\nload_secrets RABBIT_PASS\n" + _block(
        "20-controller-infra.sh", "# --- user openstack", "# --- memcached"
    )


def test_rabbitmq_takes_a_rotated_password_on_stdin_once(tmp_path: Path) -> None:
    (tmp_path / "rabbit").write_text(OLD)
    proc, calls = _run(tmp_path, _rabbit_block(), {"RABBIT_PASS": NEW})
    assert calls == ["rabbitmqctl change_password"] and _journal(proc) == "changed: rabbitmq:openstack:password"
    assert (tmp_path / "rabbit").read_text() == NEW
    again, calls = _run(tmp_path, _rabbit_block(), {"RABBIT_PASS": NEW})
    assert calls == [] and _journal(again) == "nothing changed"


def test_rabbitmq_user_is_created_once(tmp_path: Path) -> None:
    proc, calls = _run(tmp_path, _rabbit_block(), {"RABBIT_PASS": NEW})
    assert calls == ["rabbitmqctl add_user"] and _journal(proc) == "changed: rabbitmq:openstack"


# ---------------------------------------------------------------------------------------------------- MariaDB root
def _root_block() -> str:
    return _block("20-controller-infra.sh", "load_secrets DB_ROOT_PASS", "# The guide's mysql_secure_installation")


@pytest.mark.parametrize("before", ["invalid", OLD], ids=["debian-default", "rotated"])
def test_mariadb_root_gets_the_secrets_password_once(tmp_path: Path, before: str) -> None:
    (tmp_path / "root").write_text(before)
    secrets = {"DB_ROOT_PASS": NEW, "RABBIT_PASS": "rabbitUnchanged42"}
    proc, calls = _run(tmp_path, _root_block(), secrets)
    assert calls == ["mysql ALTER USER root"] and _journal(proc) == "changed: database:root"
    again, calls = _run(tmp_path, _root_block(), secrets)
    assert calls == [] and _journal(again) == "nothing changed"


# ---------------------------------------------------------------------------------------------------- cells
def _cells_block() -> str:
    return "load_secrets NOVA_DBPASS RABBIT_PASS\n" + _block(
        "50-nova-controller.sh", "# cell_mappings (nova_api)", "as_service nova nova-manage db sync"
    )


def _cells(tmp: Path, db_pass: str, rabbit_pass: str) -> None:
    (tmp / "cells").write_text(
        f"cell0 {CELL0_UUID} none:/// mysql+pymysql://nova:{db_pass}@172.31.32.11/nova_cell0\n"
        f"cell1 {CELL1_UUID} rabbit://openstack:{rabbit_pass}@172.31.32.11:5672/ "
        f"mysql+pymysql://nova:{db_pass}@172.31.32.11/nova\n"
    )


@pytest.mark.parametrize(("rotated", "updated", "journal"), [
    ("NOVA_DBPASS", [CELL0_UUID, CELL1_UUID], "changed: cell:cell0 cell:cell1"),  # both cells' databases
    ("RABBIT_PASS", [CELL1_UUID], "changed: cell:cell1"),  # cell0 has no message queue
])  # fmt: skip
def test_cell_mappings_follow_a_rotated_password_once(
    tmp_path: Path, rotated: str, updated: list[str], journal: str
) -> None:
    _cells(tmp_path, OLD, OLD)
    secrets = {"NOVA_DBPASS": OLD, "RABBIT_PASS": OLD} | {rotated: NEW}
    proc, calls = _run(tmp_path, _cells_block(), secrets)
    assert calls == [f"update_cell {u}" for u in updated] and _journal(proc) == journal
    db, mq = secrets["NOVA_DBPASS"], secrets["RABBIT_PASS"]
    assert (tmp_path / "cells").read_text().splitlines() == [
        f"cell0 {CELL0_UUID} none:/// mysql+pymysql://nova:{db}@172.31.32.11/nova_cell0",
        f"cell1 {CELL1_UUID} rabbit://openstack:{mq}@172.31.32.11:5672/ mysql+pymysql://nova:{db}@172.31.32.11/nova",
    ]
    again, calls = _run(tmp_path, _cells_block(), secrets)
    assert calls == [] and _journal(again) == "nothing changed"


def test_cell_mappings_that_match_the_secret_are_not_touched(tmp_path: Path) -> None:
    _cells(tmp_path, OLD, NEW)
    proc, calls = _run(tmp_path, _cells_block(), {"NOVA_DBPASS": OLD, "RABBIT_PASS": NEW})
    assert calls == [] and _journal(proc) == "nothing changed"
    argv = (tmp_path / "argv").read_text().splitlines()
    assert [a for a in argv if a.startswith("nova-manage")] == ["nova-manage cell_v2 list_cells --verbose"]


# ---------------------------------------------------------------------------------------------------- the rig
def test_the_rig_rotates_only_the_named_keys_in_its_file_and_every_node_copy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.rig import config, nodes, rotate

    monkeypatch.setattr(config, "BUILD", tmp_path)
    monkeypatch.setattr(config, "STATE", tmp_path / "state.json")
    monkeypatch.setattr(config, "NODES_DIR", tmp_path / "nodes")
    monkeypatch.setattr(config, "SECRETS", tmp_path / "secrets.json")
    before = nodes.rig_secrets()
    running = config.NODES[:2]  # the others are down: their copy is written when the rig boots them
    for spec in running:
        (nodes.rootfs(spec) / "etc/openstack-aws").mkdir(parents=True)
    copies = rotate.rotate(["RABBIT_PASS"])
    after = json.loads(config.SECRETS.read_text())
    assert after["RABBIT_PASS"] != before["RABBIT_PASS"] and after["RABBIT_PASS"].isalnum()
    assert {k: v for k, v in after.items() if k != "RABBIT_PASS"} == {
        k: v for k, v in before.items() if k != "RABBIT_PASS"
    }
    assert sorted(copies) == sorted(nodes.rootfs(s) / "etc/openstack-aws/secrets.json" for s in running)
    assert all(json.loads(c.read_text()) == after and c.stat().st_mode & 0o777 == 0o600 for c in copies)
    for bad in (["SWIFT_HASH_PATH_SUFFIX"], ["NO_SUCH_KEY"], []):
        with pytest.raises(SystemExit):
            rotate.rotate(bad)
    assert json.loads(config.SECRETS.read_text()) == after
