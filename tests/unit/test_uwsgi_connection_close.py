"""Debian's uwsgi APIs answer `Connection: close` (lib/optional/service.sh, uwsgi_processes): their plain
--http-socket closes after every response without saying so, and a client that sends its next request on the
same socket after a body-less answer (a DELETE's 204) gets "Connection reset by peer". The rig showed it with
`openstack server delete --wait` and with 4 of 15 GETs sent right after a DELETE (0 of 15 with the header)."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from tests.conftest import ROOT

STEPS = ROOT / "steps"
LIB = STEPS / "lib"


def test_uwsgi_processes_sets_the_workers_and_connection_close(tmp_path: Path) -> None:
    ini = tmp_path / "api-uwsgi.ini"
    ini.write_text("[uwsgi]\nhttp-socket = :8774\nprocesses = 8\n")
    script = (f'set -euo pipefail\n. "{LIB}/common.sh"\n. "{LIB}/optional/service.sh"\n'
              f'OSA_RUN="{tmp_path}"; OSA_STEP=test\nuwsgi_processes "{ini}" 2\nuwsgi_processes "{ini}" 2\n')  # fmt: skip
    env = {**os.environ, "PATH": f"{ROOT / '.venv' / 'bin'}:{os.environ['PATH']}"}
    subprocess.run(["bash", "-c", script], check=True, capture_output=True, text=True, env=env)
    lines = [line.strip() for line in ini.read_text().splitlines()]
    assert "processes = 2" in lines
    assert lines.count("add-header = Connection: close") == 1, lines


def test_every_uwsgi_api_a_step_configures_goes_through_it() -> None:
    """Each `-uwsgi.ini` a step names is one it passes to uwsgi_processes (keystone, glance, placement, nova-api,
    nova-api-metadata, neutron-api, cinder-api)."""
    seen = 0
    for step in sorted(STEPS.glob("*.sh")):
        text = step.read_text()
        named = set(re.findall(r"(/etc/\S+-uwsgi\.ini)", text))
        tuned = set(re.findall(r"^uwsgi_processes (\S+)", text, re.M))
        assert named <= tuned, f"{step.name}: {sorted(named - tuned)} not passed to uwsgi_processes"
        seen += len(named)
    assert seen >= 7
