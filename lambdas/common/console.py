"""Links into the AWS console for operators (e-mails, stack outputs, the CLI)."""

from __future__ import annotations


def region_of(arn: str) -> str:
    return arn.split(":")[3]


def execution_url(execution_arn: str) -> str:
    region = region_of(execution_arn)
    return f"https://{region}.console.aws.amazon.com/states/home?region={region}#/v2/executions/details/{execution_arn}"
