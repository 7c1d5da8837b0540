"""The network stack: subnets and CIDRs in one AZ, egress per config, the Elastic IP, security-group rules."""

from __future__ import annotations

import pytest
from aws_cdk.assertions import Match

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


def test_nodes_talk_freely_and_nothing_is_public_by_default(synth_app: SynthesizedApp) -> None:
    template = synth_app.template(synth_app.stacks.network)
    ingress = template.find_resources("AWS::EC2::SecurityGroupIngress")
    assert any(
        r["Properties"]["IpProtocol"] == "-1" and "SourceSecurityGroupId" in r["Properties"] for r in ingress.values()
    )
    group = next(iter(template.find_resources("AWS::EC2::SecurityGroup").values()))
    cidrs = [rule.get("CidrIp") for rule in group["Properties"].get("SecurityGroupIngress", [])]
    assert "0.0.0.0/0" not in cidrs
    assert cidrs == ["172.31.33.0/24"]  # only the provider subnet, for the router's borrowed identity


def _public_rules(app: SynthesizedApp) -> dict[int, str]:
    group = next(iter(app.template(app.stacks.network).find_resources("AWS::EC2::SecurityGroup").values()))
    return {
        rule["FromPort"]: rule["CidrIp"]
        for rule in group["Properties"]["SecurityGroupIngress"]
        if rule.get("IpProtocol") == "tcp"
    }


@pytest.mark.synth
def test_allowed_cidr_opens_exactly_the_public_ports_and_ssh_only_with_a_key_pair() -> None:
    without_key = _public_rules(synthesize({"allowed_cidr": "203.0.113.7/32"}))
    assert without_key == {port: "203.0.113.7/32" for port in PUBLIC_PORTS}
    with_key = _public_rules(
        synthesize({"allowed_cidr": "203.0.113.7/32", "key_pair": "ops", "management_egress": "none"})
    )
    assert with_key == {**without_key, 22: "203.0.113.7/32"}
