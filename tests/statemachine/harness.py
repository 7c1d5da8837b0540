"""The synthesized install state machine, executed by moto's Step Functions engine with the real handlers.

tests/moto_engine.py renders the definition and runs the handlers in-process; here Wait states and retry
back-offs take no time (the back-offs are recorded), SSM is faked (tests/aws_fakes.py), EC2 is moto's.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest

from tests.aws_fakes import FakeSsm, create_nodes
from tests.moto_engine import (
    INSTALL,
    MOTO_CONFIG,
    REBUILD,
    create_functions,
    create_state_machine,
    create_topics,
    patch_engine,
    render_definition,
    state_machine_logical_id,
    state_machine_resource,
    template_refs,
)

__all__ = ["INSTALL", "MOTO_CONFIG", "REBUILD", "render_definition", "state_machine_logical_id",
           "state_machine_resource", "template_refs"]


@dataclass
class Execution:
    status: str
    output: Any
    error: str
    cause: str
    events: list[dict[str, Any]]

    @property
    def entered(self) -> list[str]:
        return [e["stateEnteredEventDetails"]["name"] for e in self.events if "stateEnteredEventDetails" in e]

    @property
    def transitions(self) -> int:
        """States entered: what Standard Workflows bill as state transitions."""
        return len(self.entered)


@dataclass
class Harness:
    template: dict[str, Any]
    monkeypatch: pytest.MonkeyPatch
    project: str = "openstack-aws"
    ssm: FakeSsm = field(default_factory=FakeSsm)
    backoffs: list[float] = field(default_factory=list)
    nodes: dict[str, dict[str, Any]] = field(default_factory=dict)
    refs: dict[str, str] = field(default_factory=dict)
    definition: dict[str, Any] = field(default_factory=dict)

    def setup(self) -> Harness:
        self.refs = template_refs(self.template, boto3.session.Session().region_name)
        create_topics(self.template, self.refs)
        self.definition = render_definition(self.template, self.refs)
        create_functions(self.template, self.refs, self.monkeypatch.setenv)
        patch_engine(self.monkeypatch.setattr, wait=lambda seconds: None, backoff=self.backoffs.append)
        self.nodes = create_nodes(boto3.client("ec2"), self.project)
        self.ssm.online = {n["instance_id"] for n in self.nodes.values()}
        self.ssm.install(self.monkeypatch)
        return self

    def _create(self, name: str, definition: dict[str, Any]) -> str:
        return create_state_machine(name, definition)

    def run(self, run_input: Any = None, timeout: float = 120) -> Execution:
        sfn = boto3.client("stepfunctions")
        arn = self._create(f"install-{len(sfn.list_state_machines()['stateMachines'])}", self.definition)
        return self.execute(arn, run_input, timeout)

    def run_rebuild(self, run_input: Any = None, timeout: float = 120) -> Execution:
        """The rebuild machine, wired to an install machine of its own (its startExecution.sync:2 target)."""
        install_arn = self._create(f"{self.project}-install", self.definition)
        refs = {**self.refs, state_machine_logical_id(self.template): install_arn}
        rebuild_arn = self._create(f"{self.project}-rebuild", render_definition(self.template, refs, REBUILD))
        return self.execute(rebuild_arn, run_input, timeout)

    def execute(self, arn: str, run_input: Any = None, timeout: float = 120) -> Execution:
        sfn = boto3.client("stepfunctions")
        execution = sfn.start_execution(stateMachineArn=arn, input=json.dumps({} if run_input is None else run_input))
        deadline = time.monotonic() + timeout
        while (described := sfn.describe_execution(executionArn=execution["executionArn"]))["status"] == "RUNNING":
            assert time.monotonic() < deadline, "the execution did not end in time"
            time.sleep(0.05)
        pages = sfn.get_paginator("get_execution_history").paginate(executionArn=execution["executionArn"])
        return Execution(
            status=described["status"], output=json.loads(described.get("output") or "null"),
            error=described.get("error", ""), cause=described.get("cause", ""),
            events=[e for page in pages for e in page["events"]],
        )  # fmt: skip

    # --- what the run did -------------------------------------------------------------------------------------

    def published(self) -> list[dict[str, Any]]:
        return [params for service, op, params in self.ssm.api_calls if (service, op) == ("sns", "Publish")]

    def sent_steps(self) -> list[tuple[str, str]]:
        """(step, node) for each instance each SendCommand went to, in send order."""
        names = {n["instance_id"]: node for node, n in self.nodes.items()}
        prefix = f"{self.project}-"
        return [(p["DocumentName"].removeprefix(prefix), names[i]) for p in self.ssm.sent for i in p["InstanceIds"]]
