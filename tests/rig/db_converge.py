"""Proof that steps/lib's db_ensure converges from the states a killed run or a rotated secret leave (issue 13,
item 11), on the controller's real MariaDB, with a scratch database and user that it removes again:

1. fresh: database, user and grants created;  2. re-run: nothing changed;
3. grants of 'user'@'%' revoked (a run killed between CREATE USER and GRANT): granted again;
4. the secret's password changed: ALTER USER, and the new password logs in over TCP;  5. re-run: nothing changed.

`python3 -m tests.rig.db_converge` runs it alone on a running controller whose controller-infra step has run.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from stacks import step_catalog

from . import config, nodes

SCRATCH_DB, SCRATCH_USER = "osa_converge_test", "osa_converge"

SCENARIO = f"""
OSA_RUN=$(mktemp -d); OSA_STEP=db-converge; OSA_T0=$SECONDS
trap 'mysql_root -e "DROP DATABASE IF EXISTS {SCRATCH_DB}; DROP USER IF EXISTS {SCRATCH_USER}@localhost;
      DROP USER IF EXISTS {SCRATCH_USER}@\\"%\\";"; rm -rf "$OSA_RUN"' EXIT
umask 077
printf '{{"A": "%s", "B": "%s"}}' "$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \\n')" \\
    "$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \\n')" >"$OSA_RUN/s.json"
SECRET_SOURCE=file:$OSA_RUN/s.json
mysql_root -e "DROP DATABASE IF EXISTS {SCRATCH_DB}; DROP USER IF EXISTS {SCRATCH_USER}@localhost;
    DROP USER IF EXISTS {SCRATCH_USER}@'%';"
phase() {{ rm -f "$OSA_RUN"/changes.*; db_ensure {SCRATCH_DB} {SCRATCH_USER} "$2" >/dev/null; echo "$1: $(_osa_changes)"; }}
phase fresh A
phase rerun A
mysql_root -e "REVOKE ALL PRIVILEGES ON {SCRATCH_DB}.* FROM '{SCRATCH_USER}'@'%'"
phase regrant A
phase rotated B
MYSQL_PWD=$(secret B) mysql -u{SCRATCH_USER} -h "$MGMT_IP" {SCRATCH_DB} -e 'SELECT 1' >/dev/null && echo "login: ok"
phase rerun-after B
"""

EXPECTED = [
    f"fresh: changed: database:{SCRATCH_DB}",
    "rerun: nothing changed",
    f"regrant: changed: database:{SCRATCH_DB}",
    f"rotated: changed: database:{SCRATCH_DB}",
    "login: ok",
    "rerun-after: nothing changed",
]



def db_ensure_converges(step: str = "controller-infra") -> dict[str, Any]:
    spec = config.node("controller")
    library = step_catalog.library(step_catalog.STEPS_DIR / "lib", ("service",))  # db_ensure's optional library
    script = "set -euo pipefail\n" + library + "\nload_facts\n" + SCENARIO
    # from a file, as the rig and SSM run a composed step (the library expects BASH_SOURCE)
    runner = 'f=$(mktemp); cat >"$f"; rc=0; bash "$f" || rc=$?; rm -f "$f"; exit $rc'
    proc = nodes.node_run(spec, ["bash", "-c", runner], input=script, timeout=120)
    seen = [line for line in proc.stdout.splitlines() if line.split(":")[0] in {e.split(":")[0] for e in EXPECTED}]
    passed = proc.returncode == 0 and seen == EXPECTED
    detail = "; ".join(seen) if passed else f"exit {proc.returncode}: {seen} {proc.stderr.strip()[-300:]}"
    return {"name": "db-ensure-converges", "ok": passed, "status": "ok" if passed else "fail", "detail": detail,
            "node": "controller", "step": step}


if __name__ == "__main__":
    check = db_ensure_converges()
    print(json.dumps(check, indent=1))
    sys.exit(0 if check["ok"] else 1)
