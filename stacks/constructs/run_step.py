"""The state machine's building blocks: a Lambda task with the project's retry policy, and "run step X on role R".

RunStep is the reusable unit the install (and the nightly rebuild) machines are made of:

    X on R?  --no-->  X on R: skipped
      | yes
    X on R: send  ->  X on R: wait  ->  X on R: status  ->  X on R: finished?  --Success-->  X on R: done
                          ^                                       | otherwise
                          +---------------------------------------+

Whether X runs is decided at run time from `$.run.enabled` (the input validator's output), so one definition
serves `{}`, `{"from_step": ...}` and `{"only": [...]}`. A failed step raises `StepFailed` in the status task,
which ends the branch; the caller's Catch reports it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aws_cdk import Duration
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from lambdas.common.run_input import flag_key
from stacks.step_catalog import Step

DEFAULT_POLL_INTERVAL = Duration.seconds(15)
#: Retried with backoff: AWS throttling or server errors seen by a handler, and Lambda's own service errors.
TRANSIENT_ERRORS = (
    "TransientError",
    "Lambda.TooManyRequestsException",
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.ClientExecutionTimeoutException",
)
RETRY_INTERVAL = Duration.seconds(5)
RETRY_BACKOFF = 2.0
RETRY_MAX_ATTEMPTS = 6
RETRY_MAX_DELAY = Duration.seconds(120)


def invoke(
    scope: Construct,
    construct_id: str,
    function: lambda_.IFunction,
    *,
    state_name: str,
    result_path: str,
    payload: dict[str, Any] | None = None,
    input_path: str | None = None,
) -> tasks.LambdaInvoke:
    """A Lambda task whose result lands at `result_path`, retried with backoff on transient errors only."""
    task = tasks.LambdaInvoke(
        scope, construct_id, lambda_function=function, state_name=state_name, result_path=result_path,
        payload=sfn.TaskInput.from_object(payload) if payload is not None else None, input_path=input_path,
        payload_response_only=True, retry_on_service_exceptions=False,
    )  # fmt: skip
    task.add_retry(
        errors=list(TRANSIENT_ERRORS), interval=RETRY_INTERVAL, backoff_rate=RETRY_BACKOFF,
        max_attempts=RETRY_MAX_ATTEMPTS, max_delay=RETRY_MAX_DELAY, jitter_strategy=sfn.JitterType.FULL,
    )  # fmt: skip
    return task


@dataclass(frozen=True)
class StepFunctions:
    """The two Lambdas a RunStep calls."""

    send: lambda_.IFunction
    status: lambda_.IFunction


class RunStep(Construct):
    """Run one step's document on the instances of one role (found at `$.nodes.by_role.<role>`).

    `resume_from` is the step a failure message tells the operator to resume from: the first (by NN) of the
    step's wave, because a failed branch stops the other branches of its Parallel. With `from_step` selecting in
    NN order, that step's run covers its whole wave and every later one.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        step: Step,
        role: str,
        document: str,
        functions: StepFunctions,
        resume_from: str,
        poll_interval: Duration = DEFAULT_POLL_INTERVAL,
    ) -> None:
        super().__init__(scope, construct_id)
        label = f"{step.name} on {role}"
        send = invoke(
            self, "Send", functions.send, state_name=f"{label}: send", result_path="$.command",
            payload={"step": step.name, "role": role, "document": document, "timeout_seconds": step.timeout,
                     "resume_from": resume_from, "instances.$": f"$.nodes.by_role.{role}"},
        )  # fmt: skip
        wait = sfn.Wait(self, "Wait", state_name=f"{label}: wait", time=sfn.WaitTime.duration(poll_interval))
        status = invoke(
            self, "Status", functions.status, state_name=f"{label}: status", result_path="$.status",
            input_path="$.command",
        )  # fmt: skip
        finished = sfn.Choice(self, "Finished", state_name=f"{label}: finished?")
        finished.when(
            sfn.Condition.string_equals("$.status.status", "Success"),
            sfn.Pass(self, "Done", state_name=f"{label}: done"),
        ).otherwise(wait)
        send.next(wait).next(status).next(finished)

        self.start = sfn.Choice(self, "Selected", state_name=f"{label}?")
        self.start.when(sfn.Condition.boolean_equals(f"$.run.enabled.{flag_key(step.name)}", True), send)
        self.start.otherwise(sfn.Pass(self, "Skipped", state_name=f"{label}: skipped"))


def notify(
    scope: Construct, function: lambda_.IFunction, *, outcome: str, project: str, run: str, **payload: Any
) -> tasks.LambdaInvoke:
    """The SNS summary of a run: "Notify success" (result kept) or "Notify failure" (the Catch's error in `$`)."""
    failed = outcome == "FAILED"
    return invoke(
        scope, "NotifyFailure" if failed else "NotifySuccess", function,
        state_name="Notify failure" if failed else "Notify success",
        result_path=sfn.JsonPath.DISCARD if failed else "$.notification",
        payload={"outcome": outcome, "project": project, "run": run, "execution_arn.$": "$$.Execution.Id",
                 "started.$": "$$.Execution.StartTime", **({"error.$": "$"} if failed else {}), **payload},
    )  # fmt: skip


def failure_chain(scope: Construct, function: lambda_.IFunction, *, project: str, run: str) -> tasks.LambdaInvoke:
    """Notify failure, then Fail with the caught error (also when the notification itself fails)."""
    failed = sfn.Fail(scope, "Failed", state_name=f"{run.capitalize()} failed", error_path="$.Error",
                      cause_path="$.Cause")  # fmt: skip
    notice = notify(scope, function, outcome="FAILED", project=project, run=run)
    notice.add_catch(failed, result_path="$.notify_error").next(failed)
    return notice


def online_loop(
    scope: Construct, function: lambda_.IFunction, *, then: sfn.IChainable, choice_name: str, max_wait: Duration,
    poll: Duration, **payload: Any,
) -> tasks.LambdaInvoke:
    """Check SSM online -> all online? -> `then`, else Wait for SSM and check again (the Lambda fails past max_wait)."""
    check = invoke(
        scope, "CheckOnline", function, state_name="Check SSM online", result_path="$.online",
        payload={"instances.$": "$.nodes.names", "max_wait_seconds": int(max_wait.to_seconds()), **payload},
    )  # fmt: skip
    wait = sfn.Wait(scope, "WaitOnline", state_name="Wait for SSM", time=sfn.WaitTime.duration(poll))
    online = sfn.Choice(scope, "AllOnline", state_name=choice_name)
    online.when(sfn.Condition.boolean_equals("$.online.all_online", True), then).otherwise(wait)
    wait.next(check)
    check.next(online)
    return check


def discover_nodes(scope: Construct, function: lambda_.IFunction, *, project: str,
                   nodes: dict[str, list[str]]) -> tasks.LambdaInvoke:  # fmt: skip
    """Discover nodes: the deployment's instances and ENIs by tag, at `$.nodes`."""
    return invoke(
        scope, "Discover", function, state_name="Discover nodes", result_path="$.nodes",
        payload={"project": project, "expected": nodes},
    )  # fmt: skip
