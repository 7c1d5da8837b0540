"""The network stack: subnets and CIDRs in one AZ, egress per config, the Elastic IP, security-group rules."""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk.assertions import Match, Template

from stacks.network_stack import PUBLIC_PORTS
from tests.conftest import SynthesizedApp, synthesize


def test_vpc_and_subnets_use_the_configured_cidrs_in_one_zone(synth_app: SynthesizedApp) -> None:
    template = synth_app.template(synth_app.stacks.network)
    template.has_resource_properties("AWS::EC2::VPC", {"CidrBlock": "172.31.0.0/16"})
    subnets = template.find_resources("AWS::EC2::Subnet")
    assert sorted(s["Properties"]["CidrBlock"] for s in subnets.values()) == ["172.31.32.0/24", "172.31.33.0/24"]
    zones = {str(s["Properties"]["AvailabilityZone"]) for s in subnets.values()}
    assert len(zones) == 1
    assert all(s["Properties"]["MapPublicIpOnLaunch"] is False for s in subnets.values())


def test_subnet_a_egresses_through_a_nat_gateway_and_b_through_the_internet_gateway(synth_app: SynthesizedApp) -> None:
    template = synth_app.template(synth_app.stacks.network)
    template.resource_count_is("AWS::EC2::NatGateway", 1)
    # a fixed address: a random one could be a floating IP's or a node's before their ENIs exist
    template.has_resource_properties("AWS::EC2::NatGateway", {"PrivateIpAddress": "172.31.33.5"})
    template.has_resource_properties(
        "AWS::EC2::Route", {"DestinationCidrBlock": "0.0.0.0/0", "NatGatewayId": Match.any_value()}
    )
    template.has_resource_properties(
        "AWS::EC2::Route", {"DestinationCidrBlock": "0.0.0.0/0", "GatewayId": Match.any_value()}
    )
    template.has_resource_properties("AWS::EC2::VPCEndpoint", {"VpcEndpointType": "Gateway"})
    template.has_resource_properties("AWS::EC2::FlowLog", {"TrafficType": "REJECT"})


def test_nat_gateway_waits_for_the_internet_gateway_attachment(synth_app: SynthesizedApp) -> None:
    template = synth_app.template(synth_app.stacks.network)
    (attachment,) = template.find_resources("AWS::EC2::VPCGatewayAttachment")
    template.has_resource("AWS::EC2::NatGateway", {"DependsOn": Match.array_with([attachment])})


def test_elastic_ip_exists(synth_app: SynthesizedApp) -> None:
    template = synth_app.template(synth_app.stacks.network)
    eips = template.find_resources("AWS::EC2::EIP")
    assert len(eips) == 5  # the controller's, the NAT gateway's and the three floating IPs' (floating_ips=3)


def _group_id(template: Template, logical_prefix: str) -> str:
    (logical_id,) = [k for k in template.find_resources("AWS::EC2::SecurityGroup") if k.startswith(logical_prefix)]
    return logical_id


def _group(template: Template, logical_prefix: str) -> dict[str, Any]:
    return template.find_resources("AWS::EC2::SecurityGroup")[_group_id(template, logical_prefix)]


def _ingress_cidrs(group: dict[str, Any]) -> list[str]:
    return [rule["CidrIp"] for rule in group["Properties"].get("SecurityGroupIngress", [])]


def test_nodes_trust_only_the_node_group_and_no_group_lets_subnet_b_in(synth_app: SynthesizedApp) -> None:
    """Tenants' traffic reaches the VPC from subnet B (the router's gateway, floating IPs): the node group, on the
    management ENIs, takes nothing from there, only its members; nothing is public by default."""
    template = synth_app.template(synth_app.stacks.network)
    ingress = template.find_resources("AWS::EC2::SecurityGroupIngress")
    node_group = {"Fn::GetAtt": [_group_id(template, "NodeSecurityGroup"), "GroupId"]}
    assert [(r["Properties"]["GroupId"], r["Properties"]["IpProtocol"], r["Properties"]["SourceSecurityGroupId"])
            for r in ingress.values()] == [(node_group, "-1", node_group)]  # fmt: skip
    assert _ingress_cidrs(_group(template, "NodeSecurityGroup")) == []
    assert _ingress_cidrs(_group(template, "ProviderSecurityGroup")) == []
    groups = template.find_resources("AWS::EC2::SecurityGroup").values()
    assert not [c for g in groups for c in _ingress_cidrs(g) if c in ("0.0.0.0/0", "172.31.33.0/24")]


def test_the_public_eni_takes_the_router_and_floating_ips_traffic_for_the_internet() -> None:
    """The router's gateway (.12) and each floating IP send their traffic to the internet through eth2 (.11): all
    of it from those addresses, and nothing else from subnet B."""
    app = synthesize({"floating_ips": 2})
    public = _group(app.template(app.stacks.network), "PublicSecurityGroup")
    rules = {rule["CidrIp"]: rule["IpProtocol"] for rule in public["Properties"]["SecurityGroupIngress"]}
    assert rules == {"172.31.33.12/32": "-1", "172.31.33.50/32": "-1", "172.31.33.51/32": "-1"}


def _public_rules(app: SynthesizedApp) -> dict[int, str]:
    group = _group(app.template(app.stacks.network), "PublicSecurityGroup")
    return {
        rule["FromPort"]: rule["CidrIp"]
        for rule in group["Properties"]["SecurityGroupIngress"]
        if rule.get("IpProtocol") == "tcp"
    }


@pytest.mark.synth
def test_allowed_cidr_opens_exactly_the_public_ports_and_ssh_only_with_a_key_pair() -> None:
    without_key = _public_rules(synthesize({"allowed_cidr": "203.0.113.7/32"}))
    assert without_key == {port: "203.0.113.7/32" for port in PUBLIC_PORTS}
    app = synthesize({"allowed_cidr": "203.0.113.7/32", "key_pair": "ops", "management_egress": "none"})
    assert _public_rules(app) == {**without_key, 22: "203.0.113.7/32"}
    # Only on the public ENI: the management ENIs have no address the internet reaches.
    assert _ingress_cidrs(_group(app.template(app.stacks.network), "NodeSecurityGroup")) == []
