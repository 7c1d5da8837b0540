"""A Python 3.12 Lambda from `lambdas/`: Powertools from AWS's public layer, X-Ray, its own log group.

The whole `lambdas/` folder is one asset (handlers import `common`), packaged without Docker.
"""

from __future__ import annotations

from pathlib import Path

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_ssm as ssm
from constructs import Construct

LAMBDAS_DIR = Path(__file__).resolve().parents[2] / "lambdas"
POWERTOOLS_VERSION = "3.37.0"  # the same version requirements.txt pins for the tests
_EXCLUDE = ["**/__pycache__", "**/*.pyc", "tests"]
_DEFAULT_TIMEOUT = Duration.seconds(60)


def lambdas_code() -> lambda_.Code:
    return lambda_.Code.from_asset(str(LAMBDAS_DIR), exclude=_EXCLUDE)


class PythonFunction(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        handler: str,
        description: str,
        environment: dict[str, str] | None = None,
        timeout: Duration = _DEFAULT_TIMEOUT,
        service: str,
    ) -> None:
        super().__init__(scope, construct_id)
        layer_arn = ssm.StringParameter.value_for_string_parameter(
            self, f"/aws/service/powertools/python/x86_64/python3.12/{POWERTOOLS_VERSION}"
        )
        self.log_group = logs.LogGroup(
            self, "Logs", retention=logs.RetentionDays.ONE_MONTH, removal_policy=RemovalPolicy.DESTROY
        )
        self.function = lambda_.Function(
            self,
            "Function",
            runtime=lambda_.Runtime.PYTHON_3_12,
            architecture=lambda_.Architecture.X86_64,
            code=lambdas_code(),
            handler=handler,
            description=description,
            timeout=timeout,
            memory_size=256,
            tracing=lambda_.Tracing.ACTIVE,
            log_group=self.log_group,
            layers=[lambda_.LayerVersion.from_layer_version_arn(self, "Powertools", layer_arn)],
            environment={
                "POWERTOOLS_SERVICE_NAME": service,
                "POWERTOOLS_METRICS_NAMESPACE": "OpenStackOnAws",
                **(environment or {}),
            },
        )
