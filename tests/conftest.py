"""Shared fixtures: the CDK app synthesized once per test session (synth takes seconds)."""

from __future__ import annotations

import os

# Before aws_cdk is imported: jsii checks it when its runtime starts.
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Template

import tests.lambda_runtime  # noqa: F401  lambdas/ on sys.path, as in the Lambda runtime, for every test module
from stacks.app_builder import AppStacks, build_app

ROOT = Path(__file__).resolve().parent.parent


def cdk_json_context() -> dict[str, Any]:
    return dict(json.loads((ROOT / "cdk.json").read_text())["context"])


@dataclass
class SynthesizedApp:
    stacks: AppStacks
    assembly: cdk.cx_api.CloudAssembly

    def template(self, stack: cdk.Stack) -> Template:
        return Template.from_json(self.assembly.get_stack_by_name(stack.stack_name).template)

    def template_files(self) -> list[Path]:
        return [Path(self.assembly.directory) / s.template_file for s in self.assembly.stacks]


def synthesize(overrides: dict[str, Any] | None = None, *, outdir: Path | None = None) -> SynthesizedApp:
    """Build and synthesize the whole app (cdk-nag included) with cdk.json's context plus overrides."""
    context = {**cdk_json_context(), **(overrides or {})}
    app = cdk.App(context=context, outdir=str(outdir) if outdir else None)
    stacks = build_app(app)
    return SynthesizedApp(stacks, app.synth())


@pytest.fixture(scope="session")
def synth_app(tmp_path_factory: pytest.TempPathFactory) -> SynthesizedApp:
    """The default configuration, synthesized once."""
    return synthesize(outdir=tmp_path_factory.mktemp("cdk-out"))
