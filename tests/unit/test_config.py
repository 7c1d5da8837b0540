"""Every configuration error names the key, the value and the accepted form; good values build a Config."""

from __future__ import annotations

import subprocess
import sys

import pytest

from stacks.config import DEFAULTS, ConfigError, load_config
from tests.conftest import ROOT, cdk_json_context


def error_of(**overrides: object) -> str:
    with pytest.raises(ConfigError) as caught:
        load_config(overrides)
    return str(caught.value)


def test_defaults_match_cdk_json_and_the_design() -> None:
    context = {k: v for k, v in cdk_json_context().items() if not k.startswith("@")}
    assert context == DEFAULTS
    config = load_config(context)
    assert str(config.vpc_cidr) == "172.31.0.0/16"
    assert str(config.subnet_a_cidr) == "172.31.32.0/24"
    assert str(config.subnet_b_cidr) == "172.31.33.0/24"
    assert config.controller.instance_type == "t3.xlarge" and config.controller.root_gib == 40
    assert config.block is not None and config.block.data_disks == 1 and config.block.data_gib == 40
    assert config.object is not None and config.object.data_disks == 2 and config.object_count == 2
    assert config.all_nodes == ["controller", "compute1", "block1", "object1", "object2"]
    assert config.allowed_cidr is None and config.rebuild_schedule == "cron(0 3 * * ? *)"


def test_addresses_are_derived_from_the_subnets() -> None:
    config = load_config({"subnet_a_cidr": "172.31.64.0/24", "subnet_b_cidr": "172.31.65.0/24"})
    assert config.management_ip("controller") == "172.31.64.11"
    assert config.management_ip("compute1") == "172.31.64.21"
    assert config.management_ip("object2") == "172.31.64.42"
    assert config.public_ip == "172.31.65.11"
    assert config.provider_eni_ip("controller") == "172.31.65.12"
    assert config.gateway(config.subnet_b_cidr) == "172.31.65.1"
    assert config.nat_gateway_ip == "172.31.65.5"
    assert config.floating_ip_addresses == ["172.31.65.50", "172.31.65.51", "172.31.65.52"]
    assert load_config({"floating_ips": 3}).floating_ip_addresses == ["172.31.33.50", "172.31.33.51", "172.31.33.52"]
    # the largest pool fits the smallest subnet B allowed (/26: hosts .1 to .62)
    assert load_config({"floating_ips": 8, "subnet_b_cidr": "172.31.33.0/26", "eip_quota": 10}).floating_ip_addresses[-1] == "172.31.33.57"


def test_context_strings_from_the_command_line_are_parsed() -> None:
    config = load_config({"object_count": "0", "block_storage": "false", "allowed_cidr": "203.0.113.7/32"})
    assert config.object is None and config.block is None
    assert list(config.roles) == ["controller", "compute"]
    assert str(config.allowed_cidr) == "203.0.113.7/32"
    assert load_config({"rebuild_schedule": "off"}).rebuild_schedule is None


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"vpc_cidr": "172.31.0.0/33"}, "config 'vpc_cidr' = '172.31.0.0/33' is invalid: expected an IPv4 CIDR"),
        ({"subnet_a_cidr": "not-a-cidr"}, "config 'subnet_a_cidr' = 'not-a-cidr' is invalid: expected an IPv4 CIDR"),
        ({"subnet_b_cidr": "172.31.33.5/24"}, "'subnet_b_cidr' = '172.31.33.5/24' is invalid"),
        (
            {"subnet_a_cidr": "10.0.0.0/24"},
            "config 'subnet_a_cidr' = '10.0.0.0/24' is invalid: expected a subnet inside vpc_cidr 172.31.0.0/16",
        ),
        ({"subnet_b_cidr": "172.31.32.128/25"}, "expected a subnet that does not overlap subnet_a_cidr 172.31.32.0/24"),
        (
            {"allowed_cidr": "0.0.0.0/0"},
            "config 'allowed_cidr' = '0.0.0.0/0' is invalid: expected a narrower CIDR (e.g. your.ip/32), or 0.0.0.0/0 together with allow_world=true",
        ),
        ({"allowed_cidr": "300.1.1.1/32"}, "config 'allowed_cidr' = '300.1.1.1/32' is invalid: expected an IPv4 CIDR"),
        (
            {"controller_instance_type": "t3.micro"},
            "config 'controller_instance_type' = 't3.micro' is invalid: expected a type that takes at least 3 ENIs for the controller (t3.micro takes 2)",
        ),
        (
            {"compute_instance_type": "t4g.xlarge"},
            "config 'compute_instance_type' = 't4g.xlarge' is invalid: expected an x86_64 EC2 instance type of a known family",
        ),
        (
            {"compute_nested_virtualization": True},
            "config 'compute_nested_virtualization' = True is invalid: expected false for t3.xlarge: nested virtualization needs a C8i, M8i or R8i compute_instance_type",
        ),
        (
            {"rebuild_schedule": "0 3 * * *"},
            "config 'rebuild_schedule' = '0 3 * * *' is invalid: expected an EventBridge cron expression like cron(0 3 * * ? *)",
        ),
        ({"rebuild_schedule": "cron(0 3 * * * *)"}, "'?' in day-of-month or day-of-week"),
        ({"rebuild_schedule": "cron(0 25 * * ? *)"}, "config 'rebuild_schedule' = 'cron(0 25 * * ? *)' is invalid"),
        ({"object_count": 9}, "config 'object_count' = 9 is invalid: expected a whole number from 0 to 8"),
        ({"object_count": "two"}, "config 'object_count' = 'two' is invalid: expected a whole number from 0 to 8"),
        ({"block_data_gib": 0}, "config 'block_data_gib' = 0 is invalid: expected a whole number from 1 to 16384"),
        ({"block_storage": "maybe"}, "config 'block_storage' = 'maybe' is invalid: expected true or false"),
        (
            {"management_egress": "nat"},
            "config 'management_egress' = 'nat' is invalid: expected one of nat-gateway, none",
        ),
        (
            {"notification_email": "ops-at-example"},
            "config 'notification_email' = 'ops-at-example' is invalid: expected an e-mail address, or empty",
        ),
        ({"prefix": "OpenStack"}, "config 'prefix' = 'OpenStack' is invalid: expected 3-32 lower-case letters"),
        (
            {"availability_zone": "europe"},
            "config 'availability_zone' = 'europe' is invalid: expected a zone like eu-west-1a",
        ),
        (
            {"controler_instance_type": "t3.xlarge"},
            "config 'controler_instance_type' = 't3.xlarge' is invalid: expected a known key (did you mean 'controller_instance_type'?)",
        ),
        ({"probe_address": "10.0.0.1"}, "config 'probe_address' = '10.0.0.1' is invalid: expected a public IPv4 address that answers ping"),
        ({"probe_name": "not a name"}, "config 'probe_name' = 'not a name' is invalid: expected a DNS name the VPC resolver answers"),
        ({"floating_ips": 9}, "config 'floating_ips' = 9 is invalid: expected a whole number from 0 to 8"),
        (
            {"floating_ips": 2, "controller_instance_type": "t3.nano"},
            "config 'controller_instance_type' = 't3.nano' is invalid",
        ),
        (
            {"floating_ips": 4, "controller_instance_type": "t3.small"},
            "config 'floating_ips' = 4 is invalid: expected at most 3 with controller_instance_type t3.small (an ENI of it takes 4 IPv4 addresses, one is the router's), or a larger controller_instance_type",
        ),
        ({"zzz": 1}, "config 'zzz' = 1 is invalid: expected a known key (see the README's configuration table)"),
    ],
)
def test_every_bad_value_names_key_value_and_accepted_form(overrides: dict[str, object], expected: str) -> None:
    assert expected in error_of(**overrides)


def test_elastic_ips_beyond_the_regions_quota_fail_synth_saying_what_to_do() -> None:
    assert load_config({}).elastic_ips == {"NAT gateway": 1, "controller": 1, "floating IPs": 3}
    assert load_config({"floating_ips": 3}).eip_quota == 5  # 5 = AWS's default: NAT + controller + 3 fit
    message = error_of(floating_ips=4)
    assert message.startswith("config 'eip_quota' = 5 is invalid: expected at least the 6 Elastic IPs")
    assert "(1 NAT gateway, 1 controller, 4 floating IPs)" in message
    for advice in ("lower floating_ips", "L-0263D0A3", "set eip_quota"):
        assert advice in message
    assert load_config({"floating_ips": 4, "eip_quota": 6}).floating_ips == 4
    assert load_config({"floating_ips": 4, "management_egress": "none"}).elastic_ips["NAT gateway"] == 0
    assert "'eip_quota' = 0 is invalid" in error_of(eip_quota=0)


def test_ipv4_host_without_prefix_is_a_host_route_not_an_error() -> None:
    # "1.2.3.4" is a valid /32 for ipaddress: it means that one address, which is what a user typing it wants.
    assert str(load_config({"allowed_cidr": "1.2.3.4"}).allowed_cidr) == "1.2.3.4/32"


def test_world_access_needs_the_explicit_flag() -> None:
    config = load_config({"allowed_cidr": "0.0.0.0/0", "allow_world": "true"})
    assert str(config.allowed_cidr) == "0.0.0.0/0"


def test_nested_virtualization_on_a_supported_type() -> None:
    config = load_config({"compute_instance_type": "m8i.xlarge", "compute_nested_virtualization": "true"})
    assert config.compute_nested_virtualization


def test_cdk_internal_context_keys_are_not_unknown_keys() -> None:
    load_config({"@aws-cdk/core:target-partitions": ["aws"], "aws:cdk:enable-path-metadata": True})


def test_synth_prints_one_clear_line_and_exits_2_on_bad_config() -> None:
    result = subprocess.run(
        [sys.executable, "app.py"],
        cwd=ROOT,
        env={
            "CDK_CONTEXT_JSON": '{"subnet_a_cidr": "10.9.0.0/24"}',
            "PATH": "/usr/bin:/bin",
            "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert "configuration error: config 'subnet_a_cidr' = '10.9.0.0/24' is invalid" in result.stderr
    assert "Traceback" not in result.stderr


def test_eni_limits_that_just_fit_are_accepted() -> None:
    # t3.medium takes exactly 3 ENIs (controller's need) and t3.nano exactly 2 (compute's need).
    config = load_config({"controller_instance_type": "t3.medium", "compute_instance_type": "t3.nano"})
    assert (config.controller.instance_type, config.compute.instance_type) == ("t3.medium", "t3.nano")


def test_compute_count_numbers_nodes_and_addresses_after_compute1_up_to_the_block_nodes_range() -> None:
    config = load_config({"compute_count": 3})
    assert config.node_names("compute") == ["compute1", "compute2", "compute3"]
    assert [config.management_ip(n) for n in config.node_names("compute")] == [
        "172.31.32.21", "172.31.32.22", "172.31.32.23"]  # fmt: skip
    assert [config.provider_eni_ip(n) for n in config.node_names("compute")] == [
        "172.31.33.22", "172.31.33.23", "172.31.33.24"]  # fmt: skip
    largest = load_config({"compute_count": 10})
    assert largest.management_ip("compute10") == "172.31.32.30" < largest.management_ip("block1")
    assert max(largest.provider_eni_ip(n) for n in largest.node_names("compute")) < largest.floating_ip_addresses[0]
    for bad in (0, 11, "two"):
        assert "config 'compute_count'" in error_of(compute_count=bad) and "from 1 to 10" in error_of(compute_count=bad)


def test_ami_id_is_an_ami_or_empty() -> None:
    assert load_config({"ami_id": "ami-0123456789abcdef0"}).ami_id == "ami-0123456789abcdef0"
    assert load_config({"ami_id": ""}).ami_id is None
    assert "an AMI ID like ami-0123456789abcdef0" in error_of(ami_id="debian-12")


def test_os_release_defaults_to_bookworm_and_names_its_ami_parameter() -> None:
    config = load_config({})
    assert config.os_release == "bookworm"
    assert config.ami_parameter == "/aws/service/debian/release/12/latest/amd64"
    trixie = load_config({"os_release": "trixie"})
    assert trixie.os_release == "trixie"
    assert trixie.ami_parameter == "/aws/service/debian/release/13/latest/amd64"
    assert load_config({"os_release": " trixie "}).os_release == "trixie"  # as -c passes it, spaces and all


@pytest.mark.parametrize("bad", ["sid", "Trixie", "13", "", "debian-12"])
def test_a_bad_os_release_names_the_key_the_value_and_every_release(bad: str) -> None:
    message = error_of(os_release=bad)
    assert message.startswith(f"config 'os_release' = {bad!r} is invalid: expected one of ")
    assert "bookworm (Debian 12, OpenStack Zed)" in message
    assert "trixie (Debian 13, OpenStack 2025.1 Epoxy, experimental)" in message
