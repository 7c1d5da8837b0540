"""The synthesized state machines executed by moto's Step Functions engine with the real Lambda handlers in-process.

Shared by the fast tests (tests/statemachine, waits instant) and `make local` (tests/local, waits short but real):
the template's definition is rendered (intrinsics resolved to moto ARNs), every Lambda of the template is created
in moto with its handler and environment, and moto's simple Lambda backend runs the handler in this process.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Collection
from typing import Any

import boto3
import botocore.client
from moto.awslambda_simple.models import LambdaSimpleBackend
from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_sfn import (
    StateTaskServiceSfn,
)
from moto.stepfunctions.parser.asl.component.state.wait.wait_function.wait_function import WaitFunction

from tests.lambda_runtime import invoke_bytes

ACCOUNT = "123456789012"
MOTO_CONFIG = {"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}}
PSEUDO = {"AWS::Partition": "aws", "AWS::AccountId": ACCOUNT, "AWS::URLSuffix": "amazonaws.com"}
INSTALL = "InstallStateMachine"
REBUILD = "RebuildStateMachine"

#: (object, attribute, value): what pytest's monkeypatch.setattr and tests/local's Patcher both take.
SetAttr = Callable[[Any, str, Any], None]
SetEnv = Callable[[str, str], None]


def route_operations(setattr: SetAttr, service: str, operations: Collection[str], handler: Any) -> None:
    """Answer `operations` of `service` with `handler`'s same-named methods (boto3 response shapes), before moto;
    every other call goes on as before (to moto, or to an earlier route)."""
    original = botocore.client.BaseClient._make_api_call

    def make_api_call(client: Any, operation: str, params: dict[str, Any]) -> Any:
        if client.meta.service_model.service_name == service and operation in operations:
            return getattr(handler, operation)(params)
        return original(client, operation, params)

    setattr(botocore.client.BaseClient, "_make_api_call", make_api_call)


def resolve(value: Any, refs: dict[str, str]) -> Any:
    """CloudFormation intrinsics -> values: Fn::Join, Fn::GetAtt (…Arn) and Ref, from `refs`."""
    if isinstance(value, dict) and len(value) == 1:
        ((key, arg),) = value.items()
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


def state_machine_logical_id(template: dict[str, Any], prefix: str = INSTALL) -> str:
    """The logical ID of the template's install (or rebuild) machine."""
    (logical_id,) = [
        k
        for k, r in template["Resources"].items()
        if r["Type"] == "AWS::StepFunctions::StateMachine" and k.startswith(prefix)
    ]
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


def create_topics(template: dict[str, Any], refs: dict[str, str]) -> None:
    for logical_id, resource in template["Resources"].items():
        if resource["Type"] == "AWS::SNS::Topic":
            refs[logical_id] = boto3.client("sns").create_topic(Name=logical_id)["TopicArn"]


def create_functions(template: dict[str, Any], refs: dict[str, str], setenv: SetEnv) -> None:
    """Every Lambda of the template in moto, with its handler; its environment goes into this process's."""
    role = boto3.client("iam").create_role(RoleName="lambda", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    client = boto3.client("lambda")
    for logical_id, resource in template["Resources"].items():
        if resource["Type"] != "AWS::Lambda::Function":
            continue
        props = resource["Properties"]
        env = {k: str(resolve(v, refs)) for k, v in props.get("Environment", {}).get("Variables", {}).items()}
        for key, value in env.items():  # one process runs every handler: their settings must not clash
            if not key.startswith("POWERTOOLS_"):
                setenv(key, value)
        client.create_function(
            FunctionName=logical_id, Runtime="python3.12", Role=role, Handler=props["Handler"],
            Code={"ZipFile": b"in-process"}, Environment={"Variables": env},
        )  # fmt: skip


def patch_engine(setattr: SetAttr, *, wait: Callable[[float], None], backoff: Callable[[float], None]) -> None:
    """Run handlers in-process, Wait states through `wait(seconds)`, retry back-offs through `backoff(seconds)`."""
    lock = threading.Lock()  # one invocation at a time, as in one Lambda sandbox: Powertools' state is global

    def run_handler(backend: Any, name: str, qualifier: Any, body: Any, headers: Any, response: Any) -> bytes:
        function = backend.get_function(name, qualifier)
        with lock:
            payload, failed = invoke_bytes(function.handler, body, function.function_name)
        if failed:
            response["x-amz-function-error"] = "Unhandled"
        return payload

    def wait_interval(self: Any, env: Any, wait_seconds: int) -> None:
        wait(wait_seconds)

    class Sleep:
        @staticmethod
        def sleep(seconds: float) -> None:
            backoff(seconds)

    _patch_sfn_integration(setattr)
    setattr(LambdaSimpleBackend, "invoke", run_handler)
    setattr(WaitFunction, "_wait_interval", wait_interval)
    setattr(retrier_decl, "time", Sleep)


def _patch_sfn_integration(setattr: SetAttr) -> None:
    """moto 5.2.5's `states:startExecution(.sync:2)` passes ASL's PascalCase names (StateMachineArn, Input) to
    boto3, which wants camelCase, and reads boto3's camelCase answer as PascalCase: translate both ways, as AWS
    does (the rebuild starts the install machine through it)."""

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

    setattr(StateTaskServiceSfn, "_normalise_parameters", parameters)
    setattr(StateTaskServiceSfn, "_eval_service_task", evaluate)
    setattr(StateTaskServiceSfn, "_normalise_response", response)


def create_state_machine(name: str, definition: dict[str, Any]) -> str:
    sfn = boto3.client("stepfunctions")
    return str(
        sfn.create_state_machine(
            name=name, definition=json.dumps(definition), roleArn=f"arn:aws:iam::{ACCOUNT}:role/sfn"
        )["stateMachineArn"]
    )
