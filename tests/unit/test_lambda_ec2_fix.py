"""The EC2 fix against moto: source/dest check off on eth2 only; eth1's MAC and address returned."""

from __future__ import annotations

import boto3
from moto import mock_aws

from tests.aws_fakes import create_nodes
from tests.lambda_runtime import invoke

DISCOVER, FIX = "discover_nodes.handler.handler", "ec2_fix.handler.handler"


@mock_aws
def test_turns_off_source_dest_check_on_eth2_and_returns_eth1() -> None:
    ec2 = boto3.client("ec2")
    made = create_nodes(ec2, "osa", {"controller": "controller"})["controller"]["enis"]
    nodes, _ = invoke(DISCOVER, {"project": "osa", "expected": {"controller": ["controller"]}})
    enis = nodes["nodes"]["controller"]["enis"]
    result, failed = invoke(FIX, {"node": "controller", "enis": enis})
    assert not failed, result
    checks = {e["NetworkInterfaceId"]: e["SourceDestCheck"] for e in ec2.describe_network_interfaces()["NetworkInterfaces"]}
    assert checks == {made["eth0"]: True, made["eth1"]: True, made["eth2"]: False}
    assert result["provider_mac"] == enis["eth1"]["mac"] and result["provider_ip"] == enis["eth1"]["ip"]
    assert result["public_eni"] == made["eth2"]
    assert invoke(FIX, {"node": "controller", "enis": enis})[1] is False  # idempotent


def test_a_controller_without_eth2_fails_clearly() -> None:
    result, failed = invoke(FIX, {"node": "controller", "enis": {"eth0": {"eni_id": "eni-1", "mac": "m", "ip": "i"}}})
    assert failed and result["errorType"] == "NodesMissing" and "openstack-aws:eni=eth2" in result["errorMessage"]
