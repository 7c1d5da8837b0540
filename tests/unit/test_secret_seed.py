"""The secret seeder fills missing keys only (a rebuild or stack update keeps the cloud's passwords); the stack, the
rig and steps/README.md name the same keys."""

from __future__ import annotations

import json
import re
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from lambdas.common.secret_keys import SECRET_KEYS
from lambdas.secret_seed.logic import PASSWORD_LENGTH, fill_missing, seed_secret
from tests.conftest import ROOT
from tests.rig import config as rig_config
from tests.rig import nodes


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


def test_every_list_of_secret_keys_has_the_memcache_key() -> None:
    """One list for the stack's seeder and the rig (tests/rig/config.py takes the stack's); steps/README.md names
    every key a step may read."""
    assert "MEMCACHE_SECRET_KEY" in SECRET_KEYS
    assert rig_config.SECRET_KEYS == SECRET_KEYS
    readme = (ROOT / "steps" / "README.md").read_text()
    listed = re.search(r"read only through `secret NAME`[^`]*`([A-Z_ \n]+)`", readme)
    assert listed and sorted(listed.group(1).split()) == sorted(SECRET_KEYS)


def test_the_rigs_secret_gets_a_key_a_later_release_added_and_keeps_the_others(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    older = {key: f"old-{key}" for key in SECRET_KEYS if key != "MEMCACHE_SECRET_KEY"}
    monkeypatch.setattr(rig_config, "SECRETS", tmp_path / "secrets.json")
    rig_config.SECRETS.write_text(json.dumps(older))
    values = nodes.rig_secrets()
    assert values.items() >= older.items() and len(values["MEMCACHE_SECRET_KEY"]) == 32
    assert json.loads(rig_config.SECRETS.read_text()) == values and rig_config.SECRETS.stat().st_mode & 0o077 == 0
    assert nodes.rig_secrets() == values
