"""launch-instance's neutron-api-churn (issue 11: a router delete hung for minutes): its Python runs against a stand-in of
openstacksdk; ten clean rounds pass, a call that never answers fails within the per-call limit, naming the call."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import ROOT

SCRIPT = re.search(r"timeout 1200 python3 - <<'PY'\n(.*?)\nPY\n", (ROOT / "steps" / "99-launch-instance.sh").read_text(),
                   re.S).group(1)

# A stand-in for openstacksdk's network proxy: objects with ids; OSA_HANG names a method that never returns.
FAKE_SDK = '''
import itertools, os, time, types
_ids = itertools.count(1)


class _Network:
    def __getattr__(self, name):
        def call(*args, **kwargs):
            if name == os.environ.get("OSA_HANG"):
                time.sleep(3600)
            if name in ("routers", "networks", "ports"):
                return []
            return types.SimpleNamespace(id=str(next(_ids)), name=kwargs.get("name", ""), device_owner="")
        return call


def connect(**kwargs):
    assert kwargs.get("api_timeout"), "every call needs a timeout"
    return types.SimpleNamespace(network=_Network())
'''


def _run(tmp_path: Path, hang: str = "") -> subprocess.CompletedProcess[str]:
    (tmp_path / "openstack.py").write_text(FAKE_SDK)
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "OSA_HANG": hang, "OSA_CALL_TIMEOUT": "2"}
    return subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=60)


def test_ten_clean_rounds_pass_and_report_their_calls(tmp_path: Path) -> None:
    proc = _run(tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert re.match(r"10 rounds, 90 calls in \d+ s; slowest", proc.stdout)


def test_a_router_delete_that_never_answers_fails_within_the_limit(tmp_path: Path) -> None:
    t0 = time.monotonic()
    proc = _run(tmp_path, hang="delete_router")
    assert proc.returncode != 0
    assert "verify-churn-0: delete router: TimeoutError: no answer within 2 s" in proc.stderr
    assert time.monotonic() - t0 < 30
