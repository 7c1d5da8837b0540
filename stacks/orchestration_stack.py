"""The install orchestration: the Lambdas, the Step Functions state machine that runs the steps' SSM documents
(stacks/documents_stack.py) on the nodes, its notifications and alarm, and the trigger that starts an install
after `cdk deploy`.
"""

from __future__ import annotations

import dataclasses

from aws_cdk import ArnFormat, CfnOutput, CustomResource, Duration, RemovalPolicy, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import custom_resources as cr
from constructs import Construct

from stacks.config import Config
from stacks.constructs.dashboard import OperationsDashboard
from stacks.constructs.install_definition import InstallDefinition, InstallFunctions, InstallPlan
from stacks.constructs.python_function import PythonFunction
from stacks.constructs.rebuild import NightlyRebuild, RebuildFunctions
from stacks.constructs.rebuild_schedule import RebuildSchedule
from stacks.constructs.ssm_documents import document_name
from stacks.documents_stack import DocumentsStack
from stacks.nodes_stack import PROJECT_TAG, NodesStack
from stacks.step_catalog import Step

#: construct ID -> (folder under lambdas/, description); handler is `<folder>.handler.handler`.
FUNCTIONS = {
    "ValidateInput": ("validate_input", "Checks a run's input and selects its steps"),
    "DiscoverNodes": ("discover_nodes", "Finds the nodes' instances and ENIs by tag"),
    "WaitOnline": ("wait_online", "Reports which nodes SSM sees Online"),
    "SendStep": ("send_step", "Sends a step's SSM document to a role's instances"),
    "StepStatus": ("step_status", "Aggregates a sent step's invocations; reports a failure's output tail"),
    "Ec2Fix": ("ec2_fix", "Turns source/dest check off on the controller's public ENI"),
    "Notify": ("notify", "Publishes a run's summary to the SNS topic"),
    "StartInstall": ("start_install", "Starts the install after cdk deploy creates the nodes"),
}


def plan_for(config: Config, steps: list[Step]) -> list[Step]:
    """The steps this deployment runs: roles it lacks (block_storage off, no object nodes) are left out.

    A step left out entirely hands its own dependencies to the steps that waited for it, so the order holds.
    """
    kept: list[Step] = []
    inherited: dict[str, tuple[str, ...]] = {}  # dropped step -> what it waited for
    for step in steps:
        after = tuple(dict.fromkeys(dep for a in step.after for dep in inherited.get(a, (a,))))
        roles = tuple(r for r in step.roles if r in config.roles)
        if roles:
            kept.append(dataclasses.replace(step, roles=roles, after=after))
        else:
            inherited[step.name] = after
    return kept


class OrchestrationStack(Stack):
    def __init__(
        self, scope: Construct, construct_id: str, *, config: Config, nodes: NodesStack, steps: list[Step],
        documents: list[DocumentsStack], rebuild_steps: list[Step] | None = None, **kwargs: object,
    ) -> None:  # fmt: skip
        super().__init__(scope, construct_id, **kwargs)
        self.config = config
        for stack in documents:  # the documents exist before the trigger sends the first step
            self.add_stack_dependency(stack)
        self.document_names = {s.name: document_name(config.prefix, s.name) for s in steps}
        self.document_arns = [
            self.format_arn(service="ssm", resource="document", resource_name=name)
            for name in self.document_names.values()
        ]
        self.command_logs = logs.LogGroup(
            self, "CommandLogs", log_group_name=f"/{config.prefix}/run-command",
            retention=logs.RetentionDays.ONE_MONTH, removal_policy=RemovalPolicy.DESTROY,
        )  # fmt: skip
        self.node_output_policy = self._node_output_policy(nodes)
        self.topic = self._topic()
        self.functions = {
            cid: PythonFunction(
                self, cid, handler=f"{folder}.handler.handler", description=f"{config.prefix}: {text}",
                service=folder.replace("_", "-"), timeout=Duration.seconds(60),
                environment={"AWS_RETRY_MODE": "standard"},
            )
            for cid, (folder, text) in FUNCTIONS.items()
        }
        self._grant()
        self.plan = InstallPlan(
            project=config.prefix,
            steps=plan_for(config, steps),
            nodes={role: config.node_names(role) for role in config.roles},
            documents=self.document_names,
        )
        fn = {cid: f.function for cid, f in self.functions.items()}
        definition = InstallDefinition(
            self, "Install", plan=self.plan,
            functions=InstallFunctions(
                validate=fn["ValidateInput"], discover=fn["DiscoverNodes"], wait_online=fn["WaitOnline"],
                send=fn["SendStep"], status=fn["StepStatus"], ec2_fix=fn["Ec2Fix"], notify=fn["Notify"],
            ),
        )  # fmt: skip
        self.state_machine = self._state_machine(definition)
        self.alarm = self._alarm(self.state_machine, "install")
        self.trigger = self._trigger(nodes)
        self.rebuild = NightlyRebuild(
            self, "Rebuild", prefix=config.prefix, project_tag=PROJECT_TAG, nodes=self.plan.nodes,
            steps=plan_for(config, rebuild_steps or []), install=self.state_machine, image_id=config.ami_id or "",
            functions=RebuildFunctions(discover=fn["DiscoverNodes"], wait_online=fn["WaitOnline"], send=fn["SendStep"],
                                       status=fn["StepStatus"], notify=fn["Notify"]),
        )  # fmt: skip
        self.rebuild_alarm = self._alarm(self.rebuild.state_machine, "rebuild")
        self.schedule = (
            RebuildSchedule(self, "Schedule", prefix=config.prefix, expression=config.rebuild_schedule,
                            state_machine=self.rebuild.state_machine, topic=self.topic)
            if config.rebuild_schedule else None
        )  # fmt: skip
        self.dashboard = OperationsDashboard(
            self, "Dashboard", prefix=config.prefix, steps=[s.name for s in self.plan.steps],
            machines={"install": self.state_machine, "rebuild": self.rebuild.state_machine},
        )  # fmt: skip
        self._outputs()

    def _node_output_policy(self, nodes: NodesStack) -> iam.Policy:
        """The nodes' SSM agent streams command output to the log group (a policy here, on the nodes' role)."""
        return iam.Policy(
            self, "NodeCommandOutput", roles=[nodes.role],
            statements=[
                iam.PolicyStatement(
                    actions=["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
                    resources=[self.command_logs.log_group_arn],
                ),
                iam.PolicyStatement(
                    actions=["logs:DescribeLogGroups"],
                    resources=[self.format_arn(service="logs", resource="log-group", resource_name="*",
                                               arn_format=ArnFormat.COLON_RESOURCE_NAME)],
                ),
            ],
        )  # fmt: skip

    def _topic(self) -> sns.Topic:
        topic = sns.Topic(
            self, "Notifications", display_name=f"{self.config.prefix} OpenStack install", enforce_ssl=True
        )
        # enforce_ssl gives the topic a policy of its own, which replaces SNS's default one (the account may
        # publish): CloudWatch, a service principal, now needs its own grant, or every alarm fails silently.
        # The Notify Lambda publishes through its IAM role (same account), which needs nothing here.
        topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowProjectAlarms", actions=["sns:Publish"], resources=[topic.topic_arn],
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                conditions={
                    "StringEquals": {"aws:SourceAccount": self.account},
                    "ArnLike": {"aws:SourceArn": self.format_arn(
                        service="cloudwatch", resource="alarm", resource_name=f"{self.config.prefix}-*",
                        arn_format=ArnFormat.COLON_RESOURCE_NAME)},
                },
            )
        )  # fmt: skip
        if self.config.notification_email:
            topic.add_subscription(subscriptions.EmailSubscription(self.config.notification_email))
        return topic

    def _grant(self) -> None:
        fn = {cid: f.function for cid, f in self.functions.items()}
        project_condition = {"StringEquals": {f"ssm:resourceTag/{PROJECT_TAG}": self.config.prefix}}
        fn["SendStep"].add_environment("COMMAND_LOG_GROUP", self.command_logs.log_group_name)
        fn["SendStep"].add_to_role_policy(
            iam.PolicyStatement(actions=["ssm:SendCommand"], resources=self.document_arns)
        )
        fn["SendStep"].add_to_role_policy(
            iam.PolicyStatement(
                actions=["ssm:SendCommand"], conditions=project_condition,
                resources=[self.format_arn(service="ec2", resource="instance", resource_name="*")],
            )
        )  # fmt: skip
        fn["StepStatus"].add_to_role_policy(
            iam.PolicyStatement(actions=["ssm:ListCommandInvocations", "ssm:GetCommandInvocation"], resources=["*"])
        )
        # A failure's output tail comes from the log streams: SSM's own copy is only the head of a long output.
        self.command_logs.grant(fn["StepStatus"], "logs:DescribeLogStreams", "logs:GetLogEvents")
        fn["WaitOnline"].add_to_role_policy(
            iam.PolicyStatement(actions=["ssm:DescribeInstanceInformation"], resources=["*"])
        )
        fn["DiscoverNodes"].add_to_role_policy(
            iam.PolicyStatement(actions=["ec2:DescribeInstances", "ec2:DescribeNetworkInterfaces"], resources=["*"])
        )
        fn["Ec2Fix"].add_to_role_policy(
            iam.PolicyStatement(
                actions=["ec2:ModifyNetworkInterfaceAttribute"],
                resources=[self.format_arn(service="ec2", resource="network-interface", resource_name="*")],
                conditions={"StringEquals": {f"aws:ResourceTag/{PROJECT_TAG}": self.config.prefix}},
            )
        )
        fn["Notify"].add_environment("TOPIC_ARN", self.topic.topic_arn)
        self.topic.grant_publish(fn["Notify"])

    def _state_machine(self, definition: InstallDefinition) -> sfn.StateMachine:
        log_group = logs.LogGroup(
            self, "StateMachineLogs", log_group_name=f"/aws/vendedlogs/states/{self.config.prefix}-install",
            retention=logs.RetentionDays.ONE_MONTH, removal_policy=RemovalPolicy.DESTROY,
        )  # fmt: skip
        return sfn.StateMachine(
            self, "InstallStateMachine", state_machine_name=f"{self.config.prefix}-install",
            state_machine_type=sfn.StateMachineType.STANDARD,
            definition_body=sfn.DefinitionBody.from_chainable(definition.start),
            timeout=definition.timeout, tracing_enabled=True,
            # Execution data (inputs, outputs) stays out of the logs: no value of any kind leaks there.
            logs=sfn.LogOptions(destination=log_group, level=sfn.LogLevel.ALL, include_execution_data=False),
            comment=f"{self.config.prefix}: installs OpenStack on the nodes, step by step (input: {{}}, "
            '{"from_step": "<step>"} or {"only": ["<step>", ...]})',
        )  # fmt: skip

    def _alarm(self, machine: sfn.StateMachine, title: str) -> cloudwatch.Alarm:
        alarm = cloudwatch.Alarm(
            self, f"{title.capitalize()}FailedAlarm", alarm_name=f"{self.config.prefix}-{title}-failed",
            alarm_description=f"An OpenStack {title} execution failed: see the SNS message or the execution's graph",
            metric=machine.metric_failed(period=Duration.minutes(5), statistic="Sum"),
            threshold=1, evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )  # fmt: skip
        alarm.add_alarm_action(cloudwatch_actions.SnsAction(self.topic))
        return alarm

    def _trigger(self, nodes: NodesStack) -> CustomResource:
        """Starts an install when the stack is created and whenever the nodes' instances are replaced."""
        starter = self.functions["StartInstall"].function
        arn = self.state_machine.state_machine_arn
        self.state_machine.grant_start_execution(starter)
        starter.add_to_role_policy(iam.PolicyStatement(actions=["states:ListExecutions"], resources=[arn]))
        starter.add_to_role_policy(
            iam.PolicyStatement(
                actions=["states:StopExecution"],
                resources=[self.format_arn(service="states", resource="execution",
                                           resource_name=f"{self.state_machine.state_machine_name}:*",
                                           arn_format=ArnFormat.COLON_RESOURCE_NAME)],
            )
        )  # fmt: skip
        self.trigger_provider = cr.Provider(self, "StartInstallProvider", on_event_handler=starter)
        trigger = CustomResource(
            self, "InstallTrigger", service_token=self.trigger_provider.service_token,
            properties={"StateMachineArn": arn, "Nodes": [n.instance.ref for n in nodes.nodes.values()]},
        )  # fmt: skip
        trigger.node.add_dependency(self.node_output_policy)
        return trigger

    def _outputs(self) -> None:
        arn, region = self.state_machine.state_machine_arn, self.region
        CfnOutput(
            self, "InstallConsoleUrl", description="Watch the install step by step",
            value=f"https://{region}.console.aws.amazon.com/states/home?region={region}#/statemachines/view/{arn}",
        )  # fmt: skip
        CfnOutput(self, "InstallStateMachineArn", value=arn, description="Start a run: input {} / from_step / only")
        CfnOutput(self, "NotificationTopicArn", value=self.topic.topic_arn, description="Run summaries and alarms")
        CfnOutput(self, "CommandLogGroup", value=self.command_logs.log_group_name,
                  description="Every step's output, stream <command-id>/<instance-id>/aws-runShellScript/stdout")
        rebuild = self.rebuild.state_machine.state_machine_arn
        CfnOutput(self, "RebuildStateMachineArn", value=rebuild, description="Start a rebuild: input {}")
        CfnOutput(
            self, "RebuildConsoleUrl", description="Watch the nightly rebuild",
            value=f"https://{region}.console.aws.amazon.com/states/home?region={region}#/statemachines/view/{rebuild}",
        )  # fmt: skip
        CfnOutput(
            self, "DashboardUrl", description="Executions, failures by step, step durations",
            value=f"https://{region}.console.aws.amazon.com/cloudwatch/home?region={region}#dashboards:name="
            f"{self.config.prefix}-operations",
        )  # fmt: skip
        CfnOutput(self, "DocumentPrefix", value=f"{self.config.prefix}-",
                  description="SSM document of a step: <prefix>-<step>, e.g. re-run one step from Run Command")
