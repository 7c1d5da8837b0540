"""COMPUTE_COUNT=N: the rig and `make local` build compute1..computeN where the CDK app's compute_count=N puts
them, everything that enumerates nodes follows, `down` removes nodes of an earlier larger count, and a running rig
refuses to change its node set."""

from __future__ import annotations

import importlib
import ipaddress
import os
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from stacks import step_catalog
from stacks.config import load_config
from tests.lambda_runtime import invoke
from tests.local import aws_side
from tests.rig import config, instances, nodes, runner, state, teardown, vpc, vpc_services
from tests.rig.sh import RigError

#: The rig before COMPUTE_COUNT: node, role, short name, (ENI address, MAC) by device index, data disks.
BEFORE = [
    ("controller", "controller", "ctl",
     [("172.31.32.11", "02:00:ac:1f:20:0b"), ("172.31.33.12", "02:00:ac:1f:21:0c"),
      ("172.31.33.11", "02:00:ac:1f:21:0b")], ()),
    ("compute1", "compute", "cmp1", [("172.31.32.21", "02:00:ac:1f:20:15"), ("172.31.33.22", "02:00:ac:1f:21:16")], ()),
    ("block1", "block", "blk1", [("172.31.32.31", "02:00:ac:1f:20:1f")], (40,)),
    ("object1", "object", "obj1", [("172.31.32.41", "02:00:ac:1f:20:29")], (20, 20)),
    ("object2", "object", "obj2", [("172.31.32.42", "02:00:ac:1f:20:2a")], (20, 20)),
]  # fmt: skip


def _summary(topology: tuple[config.NodeSpec, ...]) -> list[tuple[object, ...]]:
    return [(n.name, n.role, n.short, [(e.ip, e.mac) for e in n.enis], n.disks_gib) for n in topology]


@pytest.fixture
def two_computes(monkeypatch: pytest.MonkeyPatch) -> tuple[config.NodeSpec, ...]:
    topology = config.topology(2)
    monkeypatch.setattr(config, "NODES", topology)
    monkeypatch.setattr(config, "COMPUTE_COUNT", 2)
    return topology


@pytest.fixture
def rig_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A rig build folder of its own: state.json and node folders never those of a rig running on this machine."""
    monkeypatch.setattr(config, "BUILD", tmp_path)
    monkeypatch.setattr(config, "STATE", tmp_path / "state.json")
    monkeypatch.setattr(config, "NODES_DIR", tmp_path / "nodes")
    monkeypatch.setattr(config, "ENI_TABLE", tmp_path / "eni.json")
    return tmp_path


def test_one_compute_node_is_the_rig_it_always_was() -> None:
    one = config.topology(1)
    assert _summary(one) == BEFORE
    assert [e.configured for e in one[1].enis] == [True, False]
    assert one[0].enis[1].secondary == config.FLOATING and one[0].enis[2].elastic_ip == config.ELASTIC_IP


def test_compute2_takes_the_next_management_and_provider_addresses() -> None:
    two = config.topology(2)
    assert [n.name for n in two] == ["controller", "compute1", "compute2", "block1", "object1", "object2"]
    compute2 = two[2]
    assert (compute2.role, compute2.short) == ("compute", "cmp2")
    assert [(e.index, e.subnet, e.ip, e.mac, e.configured) for e in compute2.enis] == [
        (0, "A", "172.31.32.22", "02:00:ac:1f:20:16", True),
        (1, "B", "172.31.33.23", "02:00:ac:1f:21:17", False),
    ]
    assert _summary(two[:2]) == BEFORE[:2] and _summary(two[3:]) == BEFORE[2:]


@pytest.mark.parametrize("count", [2, 10])
def test_every_count_agrees_with_the_cdk_app_and_fits_the_rig(count: int) -> None:
    topology = config.topology(count)
    cdk = load_config({"subnet_a_cidr": config.SUBNET_A, "subnet_b_cidr": config.SUBNET_B, "compute_count": count})
    assert [n.name for n in topology] == cdk.all_nodes
    for spec in topology:
        assert cdk.management_ip(spec.name) == spec.mgmt_ip
        if spec.role == "compute":
            assert cdk.provider_eni_ip(spec.name) == spec.enis[1].ip
    ports = [name for n in topology for e in n.enis for name in (n.host_if(e.index), n.cont_if(e.index))]
    assert len(set(ports)) == len(ports) and max(map(len, ports)) <= 15, "Linux interface names: 15 characters"
    addresses = [a for n in topology for e in n.enis for a in e.addresses]
    reserved = {config.GW_A, config.GW_B, config.CACHE_IP, config.NAT_GW_IP}
    assert len(set(addresses)) == len(addresses) and not reserved & set(addresses)
    for spec in topology:
        for eni in spec.enis:
            assert ipaddress.ip_address(eni.ip) in ipaddress.ip_network(eni.cidr)


def test_compute_count_comes_from_the_environment_and_the_cdk_apps_limits() -> None:
    assert config.compute_count_from("") == 1
    assert config.compute_count_from(" 3 ") == 3
    for bad in ("0", "11", "two"):
        with pytest.raises(SystemExit, match=rf"COMPUTE_COUNT='{bad}': .*from 1 to 10"):
            config.compute_count_from(bad)


def test_every_node_list_follows_the_topology(two_computes: tuple[config.NodeSpec, ...], rig_dir: Path) -> None:
    compute2 = config.node("compute2")
    # the stacks Config the userdata is rendered for, and the userdata itself: every node knows both computes
    cfg = instances.stack_config()
    assert cfg.compute_count == 2 and cfg.all_nodes == [n.name for n in two_computes]
    trees = instances.imds_trees()
    for eni in compute2.enis:
        assert "NODE_NAME=compute2" in trees[eni.ip]["user-data"]
    assert "COMPUTE_IPS='172.31.32.21 172.31.32.22'" in trees[config.node("controller").mgmt_ip]["user-data"]
    # DHCP leases, the ENI table and its filters
    args = vpc_services.dnsmasq_args()
    assert "--dhcp-host=02:00:ac:1f:20:16,172.31.32.22" in args
    assert "--dhcp-host=02:00:ac:1f:21:17,set:secondary,172.31.33.23" in args
    table = vpc.load_eni_table()
    assert [(e["node"], e["host_port"], e["private_ip"]) for e in table if e["node"] == "compute2"] == [
        ("compute2", "rv-cmp2-0", "172.31.32.22"), ("compute2", "rv-cmp2-1", "172.31.33.23")]
    ruleset = vpc.filter_ruleset(table)
    assert '"rv-cmp2-1" : jump leave_rv_cmp2_1' in ruleset and "chain deliver_rv_cmp2_0 {" in ruleset
    # the runner's waves: a compute step runs on every compute node
    steps = {s.name: s for s in step_catalog.load_steps(step_catalog.STEPS_DIR)}
    assert [n.name for n in runner._targets(steps["nova-compute"])] == ["compute1", "compute2"]
    assert [n.name for n in runner._targets(steps["base"])] == [n.name for n in two_computes]


@pytest.fixture
def local_cli(monkeypatch: pytest.MonkeyPatch) -> Any:
    """tests.local.cli, imported with the Powertools switches it sets for make local held by monkeypatch: at import
    it would disable the Lambdas' metrics for every later test in this process."""
    monkeypatch.setenv("POWERTOOLS_LOG_LEVEL", os.environ.get("POWERTOOLS_LOG_LEVEL", "WARNING"))
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", os.environ.get("POWERTOOLS_METRICS_DISABLED", "true"))
    return importlib.import_module("tests.local.cli")


def test_the_local_synth_expects_every_compute_node_of_the_rig(
    two_computes: tuple[config.NodeSpec, ...], monkeypatch: pytest.MonkeyPatch, local_cli: Any
) -> None:
    seen: dict[str, object] = {}

    class Synthesized(Exception):
        pass

    def app(*, context: dict[str, object], outdir: str) -> None:
        seen.update(context)
        raise Synthesized

    monkeypatch.setattr(local_cli.cdk, "App", app)
    with pytest.raises(Synthesized):
        local_cli.synthesize()
    assert seen["compute_count"] == 2
    assert load_config(seen).node_names("compute") == ["compute1", "compute2"]


def test_the_local_aws_side_has_every_node_the_synthesized_machine_expects(
    two_computes: tuple[config.NodeSpec, ...], rig_dir: Path, local_cli: Any
) -> None:
    cdk = load_config(local_cli.synth_context())
    expected = {role: cdk.node_names(role) for role in cdk.roles}
    region = boto3.Session().region_name  # the Lambda's, as in make local
    with mock_aws():
        created = aws_side.create_nodes(region)
        result, failed = invoke("discover_nodes.handler.handler", {"project": aws_side.PROJECT, "expected": expected})
    assert not failed, result
    assert sorted(created) == sorted(n.name for n in two_computes)
    enis = result["nodes"]["compute2"]["enis"]
    assert {k: (v["ip"], v["mac"]) for k, v in enis.items()} == {
        "eth0": ("172.31.32.22", "02:00:ac:1f:20:16"), "eth1": ("172.31.33.23", "02:00:ac:1f:21:17")}


def _record_running(names: list[str]) -> None:
    """What `up` leaves in state.json and build/rig/nodes (the launchers' pids are whatever was recorded)."""
    state.set_value("nodes", names)
    for i, name in enumerate(names):
        state.set_item("pids", f"node:{name}", 4_000_000 + i)
        (config.NODES_DIR / name / "upper").mkdir(parents=True)


def test_down_stops_the_compute_nodes_of_an_earlier_larger_count(rig_dir: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    _record_running([n.name for n in config.topology(3)])
    monkeypatch.setattr(config, "NODES", config.topology(1))
    stopped: list[str] = []
    monkeypatch.setattr(nodes, "stop", lambda spec: stopped.append(spec.name))
    teardown.stop_nodes()
    assert sorted(stopped) == sorted(n.name for n in config.topology(3))


def test_down_finds_extra_nodes_also_without_the_recorded_topology(rig_dir: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """A rig made before state.json named its topology, or whose record was lost: launchers and root file systems."""
    monkeypatch.setattr(config, "NODES", config.topology(1))
    state.set_item("pids", "node:compute2", 4_000_001)
    (config.NODES_DIR / "compute3" / "upper").mkdir(parents=True)
    (config.NODES_DIR / "not-a-node").mkdir()
    assert [s.name for s in nodes.known_specs()][-2:] == ["compute2", "compute3"]
    assert config.node("compute1") in nodes.known_specs()


def test_a_running_rig_refuses_another_compute_count_and_keeps_its_nodes(rig_dir: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    _record_running([n.name for n in config.topology(1)])
    monkeypatch.setattr(config, "NODES", config.topology(2))
    monkeypatch.setattr(config, "COMPUTE_COUNT", 2)
    with pytest.raises(RigError, match=r"up with .*compute1.*COMPUTE_COUNT=2 means .*compute2.*make rig-down"):
        nodes.claim_topology()
    assert state.load()["nodes"] == [n.name for n in config.topology(1)], "the record is the running rig's"
    monkeypatch.setattr(config, "NODES", config.topology(1))
    nodes.claim_topology()  # the same count again: reused as before


def test_a_new_rig_records_its_topology(rig_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(config, "NODES", config.topology(2))
    nodes.claim_topology()
    assert state.load()["nodes"] == [n.name for n in config.topology(2)]
