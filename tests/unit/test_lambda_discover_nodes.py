"""Discovery by tag against moto: instances per role, ENIs (ID, MAC, address) per node by eth index."""

from __future__ import annotations

import boto3
import pytest
from moto import mock_aws

from tests.aws_fakes import DEFAULT_NODES, create_nodes
from tests.lambda_runtime import invoke

HANDLER = "discover_nodes.handler.handler"
EXPECTED = {"controller": ["controller"], "compute": ["compute1"], "block": ["block1"], "object": ["object1", "object2"]}


@pytest.fixture
def ec2():
    with mock_aws():
        yield boto3.client("ec2")


def test_finds_every_node_with_its_enis(ec2) -> None:
    made = create_nodes(ec2, "osa")
    create_nodes(ec2, "another-project", {"controller": "controller"})
    result, failed = invoke(HANDLER, {"project": "osa", "expected": EXPECTED})
    assert not failed, result
    assert result["by_role"]["object"] == {made["object1"]["instance_id"]: "object1",
                                           made["object2"]["instance_id"]: "object2"}  # fmt: skip
    assert sorted(result["names"].values()) == sorted(DEFAULT_NODES)
    controller = result["nodes"]["controller"]
    assert controller["instance_id"] == made["controller"]["instance_id"]
    assert {k: v["eni_id"] for k, v in controller["enis"].items()} == made["controller"]["enis"]
    assert all(e["mac"].count(":") == 5 and e["ip"] for e in controller["enis"].values())
    assert sorted(result["nodes"]["compute1"]["enis"]) == ["eth0", "eth1"]


def test_a_missing_node_fails_naming_it(ec2) -> None:
    create_nodes(ec2, "osa", {"controller": "controller"})
    result, failed = invoke(HANDLER, {"project": "osa", "expected": {"controller": ["controller"],
                                                                       "compute": ["compute1"]}})  # fmt: skip
    assert failed and result["errorType"] == "NodesMissing"
    assert "compute1" in result["errorMessage"] and "stopped or terminated" in result["errorMessage"]
