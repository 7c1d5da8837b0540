"""The install state machine's graph, built from the step plan:

    Validate input -> Discover nodes -> Check SSM online <-> Wait for SSM -> Wave 1 -> ... -> Wave n -> Notify -> Done

Each wave (stacks/step_catalog.waves) is a Parallel with one RunStep branch per (step, role), the controller's
first. The EC2 fix runs right before the wave holding `network-fix` (or after the last wave when there is none).
Every state that can fail is caught: Notify failure (step, node, output tail) -> Install failed.
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import Duration
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from lambdas.common.models import DELIVERY_TIMEOUT_SECONDS
from lambdas.common.run_input import flag_key
from stacks.constructs.run_step import (
    DEFAULT_POLL_INTERVAL,
    RunStep,
    StepFunctions,
    discover_nodes,
    failure_chain,
    invoke,
    notify,
    online_loop,
)
from stacks.step_catalog import EC2_FIX_BEFORE, ROLES, Step, waves

ONLINE_MAX_WAIT = Duration.minutes(30)
ONLINE_POLL_INTERVAL = Duration.seconds(15)
STATE_NAME_LIMIT = 80


@dataclass(frozen=True)
class InstallFunctions:
    validate: lambda_.IFunction
    discover: lambda_.IFunction
    wait_online: lambda_.IFunction
    send: lambda_.IFunction
    status: lambda_.IFunction
    ec2_fix: lambda_.IFunction
    notify: lambda_.IFunction


@dataclass(frozen=True)
class InstallPlan:
    project: str
    steps: list[Step]  # only steps with at least one role this deployment has; roles trimmed to those
    nodes: dict[str, list[str]]  # role -> node names
    documents: dict[str, str]  # step -> SSM document name

    @property
    def waves(self) -> list[list[Step]]:
        return waves(self.steps)

    @property
    def ec2_fix_before(self) -> int:
        """Index of the wave the EC2 fix precedes (len(waves) means: after the last wave)."""
        found = [i for i, wave in enumerate(self.waves) if any(s.name == EC2_FIX_BEFORE for s in wave)]
        return found[0] if found else len(self.waves)

    @property
    def ec2_fix_gate(self) -> str:
        """The step whose selection decides whether the EC2 fix runs."""
        names = [s.name for s in self.steps]
        return EC2_FIX_BEFORE if EC2_FIX_BEFORE in names else names[-1]


def _name(text: str) -> str:
    return text if len(text) <= STATE_NAME_LIMIT else text[: STATE_NAME_LIMIT - 3] + "..."


class InstallDefinition(Construct):
    """`self.start` is the first state; `self.timeout` bounds a whole run (every wave at its slowest step)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        plan: InstallPlan,
        functions: InstallFunctions,
        poll_interval: Duration = DEFAULT_POLL_INTERVAL,
    ) -> None:
        super().__init__(scope, construct_id)
        if not plan.steps:
            raise ValueError("the install plan has no steps: steps/ holds no NN-name.sh for this deployment's roles")
        self.plan, self.functions = plan, functions
        self.notify_failure = failure_chain(self, functions.notify, project=plan.project, run="install")
        notify_success = notify(
            self, functions.notify, outcome="SUCCEEDED", project=plan.project, run="install",
            **{"steps.$": "$.run.selected"},
        )  # fmt: skip
        notify_success.next(sfn.Succeed(self, "Succeeded", state_name="Install succeeded"))

        entry: sfn.IChainable = notify_success
        wave_states = [self._wave(i, wave, poll_interval) for i, wave in enumerate(plan.waves)]
        for index in range(len(wave_states), -1, -1):  # built backwards: each state needs its successor
            if index < len(wave_states):
                wave_states[index].next(entry)
                entry = wave_states[index]
            if index == plan.ec2_fix_before:
                entry = self._ec2_fix(entry)
        self.start = self._prologue(entry)
        # Each wave at its slowest step, plus SSM's delivery timeout; one hour of slack for polling and retries.
        slowest = sum(max(s.timeout for s in wave) + DELIVERY_TIMEOUT_SECONDS for wave in plan.waves)
        self.timeout = ONLINE_MAX_WAIT.plus(Duration.seconds(slowest)).plus(Duration.hours(1))

    def _catch(self, state: sfn.TaskStateBase | sfn.Parallel) -> None:
        state.add_catch(self.notify_failure, result_path="$")

    def _prologue(self, first_wave: sfn.IChainable) -> sfn.IChainable:
        plan, fn = self.plan, self.functions
        validate = invoke(
            self, "Validate", fn.validate, state_name="Validate input", result_path="$",
            payload={"input.$": "$", "steps": [s.name for s in plan.steps]},
        )  # fmt: skip
        discover = discover_nodes(self, fn.discover, project=plan.project, nodes=plan.nodes)
        check = online_loop(
            self, fn.wait_online, then=first_wave, choice_name="All nodes online?", max_wait=ONLINE_MAX_WAIT,
            poll=ONLINE_POLL_INTERVAL, **{"started.$": "$$.Execution.StartTime"},
        )  # fmt: skip
        for state in (validate, discover, check):
            self._catch(state)
        validate.next(discover).next(check)
        return validate

    def _wave(self, index: int, wave: list[Step], poll_interval: Duration) -> sfn.Parallel:
        parallel = sfn.Parallel(
            self, f"Wave{index + 1}", result_path=sfn.JsonPath.DISCARD,
            state_name=_name(f"Wave {index + 1}: {', '.join(s.name for s in wave)}"),
        )  # fmt: skip
        pairs = sorted(((s, r) for s in wave for r in s.roles), key=lambda p: (ROLES.index(p[1]), p[0].number))
        for step, role in pairs:
            branch = RunStep(
                self, f"{step.name}-{role}", step=step, role=role, document=self.plan.documents[step.name],
                functions=StepFunctions(send=self.functions.send, status=self.functions.status),
                resume_from=min(wave, key=lambda s: s.number).name, poll_interval=poll_interval,
            )  # fmt: skip
            parallel.branch(branch.start)
        self._catch(parallel)
        return parallel

    def _ec2_fix(self, following: sfn.IChainable) -> sfn.IChainable:
        fix = invoke(
            self, "Ec2Fix", self.functions.ec2_fix, state_name="EC2 fix: source/dest check off on eth2",
            result_path="$.ec2_fix", payload={"node": "controller", "enis.$": "$.nodes.nodes.controller.enis"},
        )  # fmt: skip
        self._catch(fix)
        fix.next(following)
        gate = sfn.Choice(self, "Ec2FixSelected", state_name="EC2 fix needed?")
        gate.when(sfn.Condition.boolean_equals(f"$.run.enabled.{flag_key(self.plan.ec2_fix_gate)}", True), fix)
        return gate.otherwise(following)
