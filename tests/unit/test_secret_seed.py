"""The secret seeder fills missing keys only (a rebuild or stack update keeps the cloud's passwords)."""

from __future__ import annotations

import json

import boto3
from moto import mock_aws

from lambdas.common.secret_keys import SECRET_KEYS
from lambdas.secret_seed.logic import PASSWORD_LENGTH, fill_missing, seed_secret


def test_fill_missing_keeps_existing_values_and_makes_strong_ones() -> None:
    filled, added = fill_missing({"ADMIN_PASS": "kept", "_seed": "x"}, ["ADMIN_PASS", "NOVA_PASS", "RABBIT_PASS"])
    assert filled["ADMIN_PASS"] == "kept" and added == ["NOVA_PASS", "RABBIT_PASS"]
    assert len(filled["NOVA_PASS"]) == PASSWORD_LENGTH and filled["NOVA_PASS"].isalnum()
    assert filled["NOVA_PASS"] != filled["RABBIT_PASS"]


@mock_aws
def test_seed_secret_against_secrets_manager_is_idempotent() -> None:
    client = boto3.client("secretsmanager", region_name="eu-west-1")
    arn = client.create_secret(Name="p", SecretString='{"_seed": "abc"}')["ARN"]
    assert seed_secret(client, arn, list(SECRET_KEYS)) == list(SECRET_KEYS)
    first = json.loads(client.get_secret_value(SecretId=arn)["SecretString"])
    assert seed_secret(client, arn, list(SECRET_KEYS)) == []
    assert json.loads(client.get_secret_value(SecretId=arn)["SecretString"]) == first
    assert set(SECRET_KEYS) <= set(first)
