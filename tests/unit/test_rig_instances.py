"""The rig's nodes are launched as the stacks launch EC2 instances: a stacks Config that agrees with the rig's
topology, the multipart userdata the nodes stack gives each instance, an IMDSv2 tree per node, DHCP leases by MAC,
and NIC names that do not follow the device index (so only userdata's pinning by MAC can name them)."""

from __future__ import annotations

import pytest

from stacks import userdata
from stacks.constructs.node_instance import _multipart
from tests.rig import ami, config, instances, nodes, vpc, vpc_services


@pytest.fixture(scope="module")
def cfg():  # type: ignore[no-untyped-def]
    return instances.stack_config()


def test_the_stacks_config_and_the_rig_agree_on_every_address(cfg) -> None:  # type: ignore[no-untyped-def]
    assert cfg.all_nodes == [spec.name for spec in config.NODES]
    for spec in config.NODES:
        assert cfg.management_ip(spec.name) == spec.mgmt_ip
        assert spec.role in cfg.roles and spec.name in cfg.node_names(spec.role)
        if len(spec.enis) > 1:
            assert cfg.provider_eni_ip(spec.name) == spec.enis[1].ip
    controller = config.node("controller")
    assert cfg.public_ip == controller.enis[2].ip
    assert cfg.floating_ip_addresses == [private for private, _ in config.FLOATING]
    assert (str(cfg.subnet_a_cidr), str(cfg.subnet_b_cidr)) == (config.SUBNET_A, config.SUBNET_B)
    assert (cfg.gateway(cfg.subnet_a_cidr), cfg.gateway(cfg.subnet_b_cidr)) == (config.GW_A, config.GW_B)
    assert cfg.nat_gateway_ip == config.NAT_GW_IP
    assert str(cfg.vpc_cidr.network_address + 2) == config.VPC_DNS
    assert cfg.probe_address == config.PROBE_IP


def test_each_node_is_served_its_own_enis_and_the_stacks_userdata(cfg) -> None:  # type: ignore[no-untyped-def]
    trees = instances.imds_trees()
    for spec in config.NODES:
        expected = _multipart(userdata.render(cfg, spec.name, spec.role, region=instances.REGION,
                                              elastic_ip=config.ELASTIC_IP, secret_arn=instances.SECRET_ARN,
                                              bucket=instances.BUCKET, ssm_agent_url=instances.AGENT_URL))
        for eni in spec.enis:
            for address in eni.addresses:  # every address of the node: each sees its own instance
                tree = trees[address]
                assert tree["user-data"] == expected
                macs = tree["meta-data"]["network"]["interfaces"]["macs"]
                assert {m: int(t["device-number"]) for m, t in macs.items()} == {e.mac: e.index for e in spec.enis}
                assert macs[eni.mac]["local-ipv4s"] == eni.addresses
                assert macs[eni.mac]["subnet-ipv4-cidr-block"] == eni.cidr
    body = (userdata.USERDATA_DIR / "node.sh").read_text().partition("\n")[2]
    assert trees[config.node("block1").mgmt_ip]["user-data"].count(body) == 1, "node.sh unchanged, whole"
    assert "power_state:\n  mode: reboot" in trees[config.node("block1").mgmt_ip]["user-data"]


def test_userdata_differs_from_ec2s_only_in_the_agents_url(cfg) -> None:  # type: ignore[no-untyped-def]
    spec = config.node("compute1")
    ec2 = userdata.render(cfg, spec.name, spec.role, region=instances.REGION, elastic_ip=config.ELASTIC_IP,
                          secret_arn=instances.SECRET_ARN, bucket=instances.BUCKET)
    rig = instances.user_data(spec, cfg)
    extra = [line for line in rig.splitlines() if line not in ec2.splitlines()]
    assert [line for line in extra if not line.startswith(("--==", "Content-", "MIME-", "#cloud-config", "power_state",
                                                           "  "))] == [f"SSM_AGENT_URL={instances.AGENT_URL}"]


def test_nics_are_named_by_slot_in_an_order_that_is_not_the_device_index() -> None:
    for spec in config.NODES:
        names = instances.nic_names(spec)
        assert sorted(names.values()) == [f"ens{5 + i}" for i in range(len(spec.enis))]
        if len(spec.enis) > 1:
            assert all(names[i] != f"ens{5 + i}" for i in names), names


def test_hardware_file_names_each_veth_and_each_disk_by_ebs_serial() -> None:
    spec = config.node("object1")
    text = ami.hw_file(spec, ["/dev/loop3", "/dev/loop4"])
    assert "NICS=rc-obj1-0=ens5\n" in text
    serials = [instances.disk_serial(spec, i) for i in range(2)]
    assert f"DISKS='/dev/loop3={serials[0]} /dev/loop4={serials[1]}'" in text
    assert len(set(serials)) == 2 and all(s.startswith("vol") and len(s) == 20 for s in serials)


def test_dhcp_gives_each_eni_its_address_and_only_primaries_a_router() -> None:
    args = vpc_services.dnsmasq_args()
    assert "--dhcp-host=02:00:ac:1f:20:0b,172.31.32.11" in args
    assert "--dhcp-host=02:00:ac:1f:21:0c,set:secondary,172.31.33.12" in args
    assert "--dhcp-option=tag:secondary,option:router" in args
    hosts = [a for a in args if a.startswith("--dhcp-host=")]
    assert len(hosts) == sum(len(spec.enis) for spec in config.NODES)


def test_an_eni_without_its_address_may_ask_dhcp_but_nothing_else_from_0_0_0_0() -> None:
    leave = vpc.filter_ruleset(vpc.default_eni_table()).split("chain leave_rv_ctl_0 {", 1)[1].split("\n  }", 1)[0]
    rules = [r.strip() for r in leave.strip().splitlines()]
    dhcp = next(i for i, r in enumerate(rules) if "udp sport 68 udp dport 67 return" in r)
    source = next(i for i, r in enumerate(rules) if "source check" in r)
    mac = next(i for i, r in enumerate(rules) if "foreign source MAC" in r)
    assert mac < dhcp < source
    assert "ip saddr 0.0.0.0 ip daddr 255.255.255.255" in rules[dhcp]


def test_the_rig_overrides_only_what_it_has_instead_of_aws() -> None:
    assert set(nodes.override_env()) == {"SECRET_SOURCE", "ARTIFACT_STORE", "TEST_IMAGE_URL", "APT_PROXY", "PROBE_NAME"}
    assert nodes.override_env()["SECRET_SOURCE"].startswith("file:")
