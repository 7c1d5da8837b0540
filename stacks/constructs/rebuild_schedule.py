"""The nightly rebuild's EventBridge Scheduler schedule, with a retry policy and a dead-letter queue.

A start that still fails after the retries lands in the queue, and an alarm on the queue tells the operator
(SNS), so a missed night is never silent.
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

MAX_RETRIES = 3
MAX_EVENT_AGE = Duration.hours(1)


class RebuildSchedule(Construct):
    def __init__(
        self, scope: Construct, construct_id: str, *, prefix: str, expression: str, state_machine: sfn.IStateMachine,
        topic: sns.ITopic,
    ) -> None:  # fmt: skip
        super().__init__(scope, construct_id)
        self.dead_letters = sqs.Queue(
            self, "DeadLetters", encryption=sqs.QueueEncryption.SQS_MANAGED, enforce_ssl=True,
            retention_period=Duration.days(14),
        )  # fmt: skip
        role = iam.Role(
            self, "Role", assumed_by=iam.ServicePrincipal("scheduler.amazonaws.com"),
            description=f"{prefix}: lets the nightly schedule start the rebuild machine",
        )  # fmt: skip
        state_machine.grant_start_execution(role)
        self.dead_letters.grant_send_messages(role)
        self.schedule = scheduler.CfnSchedule(
            self, "Schedule", name=f"{prefix}-nightly-rebuild", schedule_expression=expression,
            schedule_expression_timezone="UTC", state="ENABLED",
            description="Restores every OpenStack node to launch state and installs again",
            flexible_time_window=scheduler.CfnSchedule.FlexibleTimeWindowProperty(mode="OFF"),
            target=scheduler.CfnSchedule.TargetProperty(
                arn=state_machine.state_machine_arn, role_arn=role.role_arn, input="{}",
                retry_policy=scheduler.CfnSchedule.RetryPolicyProperty(
                    maximum_retry_attempts=MAX_RETRIES, maximum_event_age_in_seconds=int(MAX_EVENT_AGE.to_seconds())),
                dead_letter_config=scheduler.CfnSchedule.DeadLetterConfigProperty(arn=self.dead_letters.queue_arn),
            ),
        )  # fmt: skip
        alarm = cloudwatch.Alarm(
            self, "MissedRebuild", alarm_name=f"{prefix}-rebuild-not-started",
            alarm_description="The nightly schedule could not start the rebuild: see the dead-letter queue's message",
            metric=self.dead_letters.metric_approximate_number_of_messages_visible(period=Duration.minutes(5)),
            threshold=1, evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )  # fmt: skip
        alarm.add_alarm_action(cloudwatch_actions.SnsAction(topic))
