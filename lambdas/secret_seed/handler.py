"""Custom resource (CDK Provider framework, on_event): seeds the project's secret on Create and Update."""

from __future__ import annotations

from typing import Any

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext
from secret_seed.logic import seed_secret

logger = Logger(service="secret-seed")


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    props = event["ResourceProperties"]
    secret_id = props["SecretId"]
    if event["RequestType"] in ("Create", "Update"):
        added = seed_secret(boto3.client("secretsmanager"), secret_id, list(props["Keys"]))
        logger.info("secret seeded", extra={"added_keys": added})
    return {"PhysicalResourceId": f"seed-{secret_id}"}
