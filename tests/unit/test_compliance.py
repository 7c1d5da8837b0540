"""cfn-lint has no errors on any template; cdk-nag passes only because each finding is acknowledged."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import stacks.app_builder
from tests.conftest import SynthesizedApp, synthesize


def test_cfn_lint_reports_no_errors_on_every_template(synth_app: SynthesizedApp) -> None:
    files = [str(f) for f in synth_app.template_files()]
    assert len(files) >= 2
    result = subprocess.run(
        [sys.executable, "-m", "cfnlint", "--format", "parseable", *files], capture_output=True, text=True, timeout=300
    )
    errors = [line for line in result.stdout.splitlines() if ":E" in line]
    assert errors == [], "\n".join(errors)
    assert result.returncode & 2 == 0, result.stdout  # cfn-lint's bit 2 means errors


def test_cdk_nag_ran_and_every_finding_is_acknowledged(synth_app: SynthesizedApp) -> None:
    report = json.loads((Path(synth_app.assembly.directory) / "validation-report.json").read_text())
    (nag,) = [r for r in report["pluginReports"] if r["pluginName"] == "AwsSolutions"]
    assert nag["conclusion"] == "success" and nag["violations"] == []
    acknowledged = nag["suppressedViolations"]
    assert acknowledged, "cdk-nag found nothing at all: it probably did not run"
    assert all(len(v["reason"]) > 20 for v in acknowledged)


@pytest.mark.synth
def test_an_unacknowledged_finding_fails_synth(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stacks.app_builder, "acknowledge_all", lambda *args: None)
    with pytest.raises(Exception, match=r"(?i)validation"):
        synthesize()
