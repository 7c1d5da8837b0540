"""checkov finds nothing unexplained in any synthesized template: each finding is fixed or skipped with its reason
in the resource's metadata (stacks/checkov_skips.py).

One checkov run scans every template plus a canary template holding one known-bad resource, so the same run shows
that a finding is seen and reported: the canary's findings must be the only ones.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, SynthesizedApp

CHECKOV = ROOT / ".venv-checkov" / "bin" / "checkov"
CANARY = {
    "AWSTemplateFormatVersion": "2010-09-09",
    "Resources": {"CanaryQueue": {"Type": "AWS::SQS::Queue", "Properties": {}}},
}


def run_checkov(files: list[Path]) -> list[dict[str, Any]]:
    """checkov's JSON reports (one per framework), offline: no mapping download, no network namespace to use."""
    assert CHECKOV.exists(), f"{CHECKOV} is missing: run `make setup` (requirements-checkov.txt)"
    env = {**os.environ, "BC_SKIP_MAPPING": "TRUE", "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2": "false"}
    isolate = ["unshare", "--net"] if os.geteuid() == 0 and shutil.which("unshare") else []
    args = [str(CHECKOV), "--framework", "cloudformation", "-o", "json", "--skip-download", "--compact"]
    for file in files:
        args += ["-f", str(file)]
    result = subprocess.run([*isolate, *args], capture_output=True, text=True, timeout=600, env=env)
    assert result.stdout.strip().startswith(("[", "{")), result.stdout[-2000:] + result.stderr[-2000:]
    reports = json.loads(result.stdout)
    return reports if isinstance(reports, list) else [reports]


@pytest.fixture(scope="module")
def findings(synth_app: SynthesizedApp, tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[dict[str, Any]]]:
    canary = tmp_path_factory.mktemp("checkov") / "canary.template.json"
    canary.write_text(json.dumps(CANARY))
    reports = run_checkov([*synth_app.template_files(), canary])
    return {
        kind: [check for report in reports for check in report["results"].get(kind, [])]
        for kind in ("failed_checks", "skipped_checks", "passed_checks")
    }


def test_every_finding_is_fixed_or_skipped_with_a_reason(findings: dict[str, list[dict[str, Any]]]) -> None:
    failed = [f for f in findings["failed_checks"] if not f["file_path"].endswith("canary.template.json")]
    assert failed == [], "\n".join(f"{f['check_id']} {f['resource']} ({f['file_path']}): {f['check_name']}" for f in failed)
    skipped = findings["skipped_checks"]
    assert skipped, "checkov skipped nothing: the metadata of stacks/checkov_skips.py did not reach the templates"
    assert all(len(s["check_result"].get("suppress_comment", "")) > 40 for s in skipped)
    assert len(findings["passed_checks"]) > 300  # it did read the templates (410 checks passed when written)


def test_checkov_reports_a_finding_when_there_is_one(findings: dict[str, list[dict[str, Any]]]) -> None:
    canary = {(f["check_id"], f["resource"]) for f in findings["failed_checks"]}
    assert ("CKV_AWS_27", "AWS::SQS::Queue.CanaryQueue") in canary
