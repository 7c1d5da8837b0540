"""The rig's emulated VPC as data (no root needed): the floating IP pool is a secondary address of the
controller's provider ENI, the ENI filter admits it, the internet gateway maps it to its own Elastic IP, and the
node facts carry it as FLOATING_IPS like userdata does on AWS (stacks/config.py places the pool the same way)."""

from __future__ import annotations

from stacks.config import load_config
from tests.rig import config, instances, vpc


def test_the_rigs_floating_pool_is_where_the_cdk_app_puts_it() -> None:
    cdk = load_config({"subnet_b_cidr": config.SUBNET_B})
    assert [private for private, _ in config.FLOATING] == cdk.floating_ip_addresses


def test_provider_eni_lists_its_secondary_address_and_the_igw_maps_it() -> None:
    table = vpc.default_eni_table()
    provider = vpc.find_eni(table, "controller:1")
    assert provider["addresses"] == ["172.31.33.12", "172.31.33.50", "172.31.33.51", "172.31.33.52"]
    assert vpc.elastic_ip_pairs([provider]) == [(f"203.0.113.{n}", f"172.31.33.{n}") for n in (50, 51, 52)]
    ruleset = vpc.igw_ruleset(table)
    assert "203.0.113.50 : 172.31.33.50" in ruleset and "172.31.33.50 : 203.0.113.50" in ruleset
    assert "203.0.113.10 : 172.31.33.11" in ruleset
    leave = vpc.filter_ruleset(table).split("chain leave_rv_ctl_1 {")[1].split("  }\n")[0]
    assert "ip saddr != { 172.31.33.12, 172.31.33.50, 172.31.33.51, 172.31.33.52 } counter drop comment" in leave


def test_a_table_written_before_secondary_addresses_still_maps_the_primary_elastic_ip() -> None:
    old = [
        {"private_ip": "172.31.33.11", "elastic_ip": "203.0.113.10"},
        {"private_ip": "172.31.33.12", "elastic_ip": ""},
    ]
    assert vpc.elastic_ip_pairs(old) == [("203.0.113.10", "172.31.33.11")]


def test_controller_provider_eni_carries_the_pool_and_compute_has_none() -> None:
    """What IMDS tells userdata, which writes FLOATING_IPS from the provider ENI's secondary addresses."""
    trees = instances.imds_trees()

    def provider_ipv4s(node: str) -> list[str]:
        spec = config.node(node)
        return trees[spec.mgmt_ip]["meta-data"]["network"]["interfaces"]["macs"][spec.enis[1].mac]["local-ipv4s"]

    assert provider_ipv4s("controller") == ["172.31.33.12", "172.31.33.50", "172.31.33.51", "172.31.33.52"]
    assert provider_ipv4s("compute1") == ["172.31.33.22"]
