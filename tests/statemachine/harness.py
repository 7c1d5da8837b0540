"""The synthesized install state machine, executed by moto's Step Functions engine with the real handlers.

The template's definition is rendered (its Fn::Join / Fn::GetAtt resolved to moto ARNs), every Lambda of the
template is created in moto with its handler and environment, and moto's simple Lambda backend is patched to run
the handler in-process. Wait states and retry back-offs take no time; the back-offs are recorded.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from moto.awslambda_simple.models import LambdaSimpleBackend
from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_sfn import (
    StateTaskServiceSfn,
)
from moto.stepfunctions.parser.asl.component.state.wait.wait_function.wait_function import WaitFunction

from tests.aws_fakes import FakeSsm, create_nodes
from tests.lambda_runtime import invoke_bytes

ACCOUNT = "123456789012"
MOTO_CONFIG = {"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}}
PSEUDO = {"AWS::Partition": "aws", "AWS::AccountId": ACCOUNT, "AWS::URLSuffix": "amazonaws.com"}


def resolve(value: Any, refs: dict[str, str]) -> Any:
    """CloudFormation intrinsics -> values: Fn::Join, Fn::GetAtt (…Arn) and Ref, from `refs`."""
    if isinstance(value, dict) and len(value) == 1:
        (key, arg), = value.items()
        if key == "Fn::Join":
            return arg[0].join(str(resolve(part, refs)) for part in arg[1])
        if key == "Fn::GetAtt":
            return refs[f"{arg[0]}.{arg[1]}"]
        if key == "Ref":
            return refs[arg]
    if isinstance(value, dict):
        return {k: resolve(v, refs) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(v, refs) for v in value]
    return value


INSTALL = "InstallStateMachine"
REBUILD = "RebuildStateMachine"


def state_machine_logical_id(template: dict[str, Any], prefix: str = INSTALL) -> str:
    """The logical ID of the template's install (or rebuild) machine."""
    (logical_id,) = [
        k for k, r in template["Resources"].items()
        if r["Type"] == "AWS::StepFunctions::StateMachine" and k.startswith(prefix)
    ]  # fmt: skip
    return logical_id


def state_machine_resource(template: dict[str, Any], prefix: str = INSTALL) -> dict[str, Any]:
    return dict(template["Resources"][state_machine_logical_id(template, prefix)])


def template_refs(template: dict[str, Any], region: str) -> dict[str, str]:
    """Values for the intrinsics the orchestration template uses: pseudo parameters, Lambda ARNs, log groups."""
    refs = {**PSEUDO, "AWS::Region": region}
    for logical_id, resource in template["Resources"].items():
        if resource["Type"] == "AWS::Lambda::Function":
            refs[f"{logical_id}.Arn"] = f"arn:aws:lambda:{region}:{ACCOUNT}:function:{logical_id}"
        elif resource["Type"] == "AWS::Logs::LogGroup":
            refs[logical_id] = resource["Properties"].get("LogGroupName", logical_id)
    return refs


def render_definition(
    template: dict[str, Any], refs: dict[str, str] | None = None, prefix: str = INSTALL
) -> dict[str, Any]:
    """The state machine's ASL as deployed (with ARNs in place of the template's intrinsics)."""
    definition = state_machine_resource(template, prefix)["Properties"]["DefinitionString"]
    return json.loads(resolve(definition, refs or template_refs(template, "eu-west-1")))


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
        for logical_id, resource in self.template["Resources"].items():
            if resource["Type"] == "AWS::SNS::Topic":
                self.refs[logical_id] = boto3.client("sns").create_topic(Name=logical_id)["TopicArn"]
        self.definition = render_definition(self.template, self.refs)
        self._create_functions(self.template["Resources"])
        self._patch_engine()
        self.nodes = create_nodes(boto3.client("ec2"), self.project)
        self.ssm.online = {n["instance_id"] for n in self.nodes.values()}
        self.ssm.install(self.monkeypatch)
        return self

    def _create_functions(self, resources: dict[str, Any]) -> None:
        role = boto3.client("iam").create_role(RoleName="lambda", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        client = boto3.client("lambda")
        for logical_id, resource in resources.items():
            if resource["Type"] != "AWS::Lambda::Function":
                continue
            props = resource["Properties"]
            env = {k: str(resolve(v, self.refs)) for k, v in props.get("Environment", {}).get("Variables", {}).items()}
            for key, value in env.items():  # one process runs every handler: their settings must not clash
                if key.startswith("POWERTOOLS_"):
                    continue
                self.monkeypatch.setenv(key, value)
            client.create_function(
                FunctionName=logical_id, Runtime="python3.12", Role=role, Handler=props["Handler"],
                Code={"ZipFile": b"in-process"}, Environment={"Variables": env},
            )  # fmt: skip

    def _patch_engine(self) -> None:
        lock = threading.Lock()  # one invocation at a time, as in one Lambda sandbox: Powertools' state is global

        def run_handler(backend: Any, name: str, qualifier: Any, body: Any, headers: Any, response: Any) -> bytes:
            function = backend.get_function(name, qualifier)
            with lock:
                payload, failed = invoke_bytes(function.handler, body, function.function_name)
            if failed:
                response["x-amz-function-error"] = "Unhandled"
            return payload

        def no_wait(self: Any, env: Any, wait_seconds: int) -> None:
            return None

        class Sleep:
            @staticmethod
            def sleep(seconds: float) -> None:
                self.backoffs.append(seconds)

        self._patch_sfn_integration()
        self.monkeypatch.setattr(LambdaSimpleBackend, "invoke", run_handler)
        self.monkeypatch.setattr(WaitFunction, "_wait_interval", no_wait)
        self.monkeypatch.setattr(retrier_decl, "time", Sleep)

    def _patch_sfn_integration(self) -> None:
        """moto 5.2.5's `states:startExecution(.sync:2)` passes ASL's PascalCase names (StateMachineArn, Input)
        to boto3, which wants camelCase, and reads boto3's camelCase answer as PascalCase: translate both ways,
        as AWS does (the rebuild starts the install machine through it)."""

        def pascal(response: dict[str, Any]) -> None:
            for key in list(response):
                response[key[0].upper() + key[1:]] = response.pop(key)

        original_parameters = StateTaskServiceSfn._normalise_parameters
        original_eval = StateTaskServiceSfn._eval_service_task
        original_response = StateTaskServiceSfn._normalise_response

        def parameters(task: Any, *args: Any, **kwargs: Any) -> None:
            original_parameters(task, *args, **kwargs)
            params = kwargs["parameters"] if "parameters" in kwargs else args[0]
            for key in list(params):
                params[key[0].lower() + key[1:]] = params.pop(key)

        def evaluate(task: Any, env: Any, *args: Any, **kwargs: Any) -> None:
            original_eval(task, env, *args, **kwargs)
            pascal(env.stack[-1])

        def response(task: Any, *args: Any, **kwargs: Any) -> None:
            original_response(task, *args, **kwargs)
            pascal(kwargs["response"] if "response" in kwargs else args[0])

        self.monkeypatch.setattr(StateTaskServiceSfn, "_normalise_parameters", parameters)
        self.monkeypatch.setattr(StateTaskServiceSfn, "_eval_service_task", evaluate)
        self.monkeypatch.setattr(StateTaskServiceSfn, "_normalise_response", response)

    def _create(self, name: str, definition: dict[str, Any]) -> str:
        sfn = boto3.client("stepfunctions")
        return str(sfn.create_state_machine(
            name=name, definition=json.dumps(definition), roleArn=f"arn:aws:iam::{ACCOUNT}:role/sfn",
        )["stateMachineArn"])  # fmt: skip

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
