"""The nightly rebuild: every node's root volume back to launch state, data disks wiped, then the install machine.

    Check input, nothing running -> discover nodes -> replace root volumes -> wait until every task succeeded
      -> wait until SSM sees every node again (pings after the replacement) -> wipe data disks (block, object)
      -> install machine (startExecution.sync:2) -> notify

Any failure notifies (SNS) and fails the execution. The construct reuses the install machine's Lambdas for
discovery, the SSM wait, running a step and notifying; only the root-volume calls and the guard are its own.
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import ArnFormat, Duration, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from lambdas.common.run_input import flag_key
from stacks.constructs.python_function import PythonFunction
from stacks.constructs.run_step import (
    RunStep,
    StepFunctions,
    discover_nodes,
    failure_chain,
    invoke,
    notify,
    online_loop,
)
from stacks.constructs.ssm_documents import StepDocuments
from stacks.step_catalog import Step

ROOT_VOLUME_POLL = Duration.seconds(30)
ROOT_VOLUME_MAX_WAIT = Duration.hours(1)
ONLINE_POLL = Duration.seconds(30)
#: After a root volume is restored the node runs its userdata again (SSM agent, package prefetch, one reboot).
ONLINE_MAX_WAIT = Duration.minutes(45)


@dataclass(frozen=True)
class RebuildFunctions:
    """The install machine's Lambdas the rebuild reuses."""

    discover: lambda_.IFunction
    wait_online: lambda_.IFunction
    send: lambda_.IFunction
    status: lambda_.IFunction
    notify: lambda_.IFunction


class NightlyRebuild(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        prefix: str,
        project_tag: str,
        nodes: dict[str, list[str]],
        steps: list[Step],
        functions: RebuildFunctions,
        install: sfn.IStateMachine,
        image_id: str = "",
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self.prefix, self.nodes, self.functions, self.image_id = prefix, nodes, functions, image_id
        self.machine_name = f"{prefix}-rebuild"
        self.documents = StepDocuments(self, "Documents", prefix=prefix, steps=steps)
        functions.send.add_to_role_policy(
            iam.PolicyStatement(actions=["ssm:SendCommand"], resources=self.documents.arns)
        )

        self.guard = PythonFunction(
            self, "Guard", handler="rebuild_guard.handler.handler", service="rebuild-guard",
            description=f"{prefix}: checks the rebuild's input; refuses while an install or rebuild runs",
        )  # fmt: skip
        self.replace = PythonFunction(
            self, "ReplaceRootVolumes", handler="replace_root_volumes.handler.handler", service="replace-root-volumes",
            description=f"{prefix}: restores every node's root volume to its launch state",
        )  # fmt: skip
        self.replace_status = PythonFunction(
            self, "RootVolumeStatus", handler="root_volume_status.handler.handler", service="root-volume-status",
            description=f"{prefix}: polls the replace-root-volume tasks",
        )  # fmt: skip
        self.replace.function.add_to_role_policy(
            iam.PolicyStatement(
                actions=["ec2:CreateReplaceRootVolumeTask"],
                resources=[stack.format_arn(service="ec2", resource="instance", resource_name="*")],
                conditions={"StringEquals": {f"aws:ResourceTag/{project_tag}": prefix}},
            )
        )
        self.replace.function.add_to_role_policy(
            iam.PolicyStatement(
                actions=["ec2:CreateReplaceRootVolumeTask", "ec2:CreateTags"],
                resources=[stack.format_arn(service="ec2", resource="replace-root-volume-task", resource_name="*")],
            )
        )
        if image_id:
            # An AMI upgrade names the image: public AMIs live in no account, hence the empty account field.
            self.replace.function.add_to_role_policy(
                iam.PolicyStatement(
                    actions=["ec2:CreateReplaceRootVolumeTask"],
                    resources=[stack.format_arn(service="ec2", account="", resource="image", resource_name=image_id)],
                )
            )
        self.replace_status.function.add_to_role_policy(
            iam.PolicyStatement(actions=["ec2:DescribeReplaceRootVolumeTasks"], resources=["*"])
        )

        self.state_machine = self._state_machine(steps, install)
        # The rebuild machine's ARN from its name: its token would make machine -> guard -> policy -> machine a cycle.
        own_arn = stack.format_arn(service="states", resource="stateMachine", resource_name=self.machine_name,
                                   arn_format=ArnFormat.COLON_RESOURCE_NAME)  # fmt: skip
        self.guard.function.add_to_role_policy(
            iam.PolicyStatement(actions=["states:ListExecutions"], resources=[install.state_machine_arn, own_arn])
        )

    # --- the definition ---------------------------------------------------------------------------------------

    def _state_machine(self, steps: list[Step], install: sfn.IStateMachine) -> sfn.StateMachine:
        fn = self.functions
        notify_failure = failure_chain(self, fn.notify, project=self.prefix, run="rebuild")
        notify_success = notify(
            self, fn.notify, outcome="SUCCEEDED", project=self.prefix, run="rebuild",
            steps=["restore root volumes", "wipe data disks", "install"],
        )  # fmt: skip

        guard = invoke(
            self, "CheckInput", self.guard.function, state_name="Check input and running executions",
            result_path=sfn.JsonPath.DISCARD,
            payload={"input.$": "$", "execution_id.$": "$$.Execution.Id", "rebuild_arn.$": "$$.StateMachine.Id",
                     "install_arn": install.state_machine_arn},
        )  # fmt: skip
        discover = discover_nodes(self, fn.discover, project=self.prefix, nodes=self.nodes)
        replace = invoke(
            self, "Replace", self.replace.function, state_name="Restore root volumes", result_path="$.replace",
            payload={"instances.$": "$.nodes.names", "execution_id.$": "$$.Execution.Id", "project": self.prefix,
                     "image_id": self.image_id},
        )  # fmt: skip
        replace_wait = sfn.Wait(self, "ReplaceWait", state_name="Wait for root volumes",
                                time=sfn.WaitTime.duration(ROOT_VOLUME_POLL))  # fmt: skip
        replace_status = invoke(
            self, "ReplaceStatus", self.replace_status.function, state_name="Root volumes restored?",
            result_path="$.replace",
            payload={"tasks.$": "$.replace.tasks", "instances.$": "$.replace.instances",
                     "started.$": "$$.Execution.StartTime", "max_wait_seconds": int(ROOT_VOLUME_MAX_WAIT.to_seconds())},
        )  # fmt: skip
        replaced = sfn.Choice(self, "Replaced", state_name="All root volumes restored?")

        enable = sfn.Pass(
            self, "EnableWipe", state_name="Select the wipe step", result_path="$.run",
            result=sfn.Result.from_object({"enabled": {flag_key(s.name): True for s in steps}}),
        )  # fmt: skip
        pairs = [(step, role) for step in steps for role in step.roles if role in self.nodes]
        wipe = None
        if pairs:  # a Parallel needs a branch: without block and object nodes there is nothing to wipe
            wipe = sfn.Parallel(self, "Wipe", state_name="Wipe data disks", result_path=sfn.JsonPath.DISCARD)
        for step, role in pairs:
            branch = RunStep(
                self, f"{step.name}-{role}", step=step, role=role, document=self.documents.names[step.name],
                functions=StepFunctions(send=fn.send, status=fn.status), resume_from=step.name,
            )  # fmt: skip
            wipe.branch(branch.start)  # type: ignore[union-attr]
        run_install = tasks.StepFunctionsStartExecution(
            self, "Install", state_name="Install (state machine)", state_machine=install,
            integration_pattern=sfn.IntegrationPattern.RUN_JOB, input=sfn.TaskInput.from_object({}),
            result_path="$.install", result_selector={"status.$": "$.Status", "execution.$": "$.ExecutionArn"},
        )  # fmt: skip

        check_online = online_loop(
            self, fn.wait_online, then=enable, choice_name="All nodes online again?", max_wait=ONLINE_MAX_WAIT,
            poll=ONLINE_POLL, **{"started.$": "$.replace.completed_at", "online_since.$": "$.replace.completed_at"},
        )  # fmt: skip
        for state in (guard, discover, replace, replace_status, check_online, wipe, run_install):
            if state is not None:
                state.add_catch(notify_failure, result_path="$")
        replace_wait.next(replace_status).next(replaced)
        replaced.when(sfn.Condition.boolean_equals("$.replace.all_succeeded", True), check_online)
        replaced.otherwise(replace_wait)
        after_wipe = run_install.next(notify_success).next(sfn.Succeed(self, "Done", state_name="Rebuild succeeded"))
        if wipe is not None:
            enable.next(wipe)
            wipe.next(after_wipe)
        else:
            enable.next(after_wipe)
        definition = guard.next(discover).next(replace).next(replace_wait)

        log_group = logs.LogGroup(
            self, "Logs", log_group_name=f"/aws/vendedlogs/states/{self.prefix}-rebuild",
            retention=logs.RetentionDays.ONE_MONTH, removal_policy=RemovalPolicy.DESTROY,
        )  # fmt: skip
        return sfn.StateMachine(
            self, "StateMachine", state_machine_name=self.machine_name,
            state_machine_type=sfn.StateMachineType.STANDARD,
            definition_body=sfn.DefinitionBody.from_chainable(definition),
            timeout=Duration.hours(12), tracing_enabled=True,
            logs=sfn.LogOptions(destination=log_group, level=sfn.LogLevel.ALL, include_execution_data=False),
            comment=f"{self.prefix}: restores every node to launch state and installs again (input: {{}})",
        )  # fmt: skip
