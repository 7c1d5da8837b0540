"""The install machine of the fixture steps (tests/statemachine/fixtures/steps), synthesized once per session,
and a harness running it in moto's Step Functions engine with the real handlers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from moto import mock_aws

from stacks.app_builder import build_app
from tests.conftest import SynthesizedApp, cdk_json_context
from tests.statemachine.harness import MOTO_CONFIG, Harness

FIXTURE_STEPS = Path(__file__).resolve().parent / "fixtures" / "steps"
FIXTURE_EMAIL = "ops@example.com"


@pytest.fixture(scope="session")
def fixture_app(tmp_path_factory: pytest.TempPathFactory) -> SynthesizedApp:
    """The app with the fixture steps and an e-mail for notifications (no cdk-nag: tests/unit/test_compliance.py
    covers it on the real app)."""
    context = {**cdk_json_context(), "notification_email": FIXTURE_EMAIL}
    app = cdk.App(context=context, outdir=str(tmp_path_factory.mktemp("cdk-out-fixture")))
    stacks = build_app(app, nag=False, steps_dir=FIXTURE_STEPS)
    return SynthesizedApp(stacks, app.synth())


@pytest.fixture(scope="session")
def fixture_template(fixture_app: SynthesizedApp) -> dict[str, Any]:
    return fixture_app.assembly.get_stack_by_name(fixture_app.stacks.orchestration.stack_name).template


@pytest.fixture
def harness(fixture_template: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> Iterator[Harness]:
    with mock_aws(config=MOTO_CONFIG):
        yield Harness(fixture_template, monkeypatch).setup()
