"""The operator's CloudWatch dashboard: executions of both machines, failures by step, step durations.

Step metrics are the Powertools metrics the step-status Lambda emits (namespace OpenStackOnAws, dimensions
service=step-status and step=<name>).
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

NAMESPACE = "OpenStackOnAws"
STEP_STATUS_SERVICE = "step-status"
PERIOD = Duration.days(1)


def step_metric(name: str, step: str, statistic: str) -> cloudwatch.Metric:
    return cloudwatch.Metric(
        namespace=NAMESPACE, metric_name=name, dimensions_map={"service": STEP_STATUS_SERVICE, "step": step},
        statistic=statistic, period=PERIOD, label=step,
    )  # fmt: skip


class OperationsDashboard(Construct):
    def __init__(
        self, scope: Construct, construct_id: str, *, prefix: str, machines: dict[str, sfn.StateMachine],
        steps: list[str],
    ) -> None:  # fmt: skip
        super().__init__(scope, construct_id)
        executions = [
            metric
            for title, machine in machines.items()
            for metric in (
                machine.metric_started(period=PERIOD, label=f"{title} started"),
                machine.metric_succeeded(period=PERIOD, label=f"{title} succeeded"),
                machine.metric_failed(period=PERIOD, label=f"{title} failed"),
            )
        ]
        self.dashboard = cloudwatch.Dashboard(self, "Dashboard", dashboard_name=f"{prefix}-operations")
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(title="Executions (per day)", left=executions, width=24),
            cloudwatch.GraphWidget(
                title="Failures by step (per day)", width=12, view=cloudwatch.GraphWidgetView.BAR,
                left=[step_metric("StepFailed", s, "Sum") for s in steps],
            ),
            cloudwatch.GraphWidget(
                title="Step duration, seconds (daily average)", width=12,
                left=[step_metric("StepDuration", s, "Average") for s in steps],
            ),
        )  # fmt: skip
