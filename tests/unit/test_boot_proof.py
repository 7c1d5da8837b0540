"""The pure parts of the QEMU boot proof (tests/boot): what the guest is launched with, and the verdicts."""

from __future__ import annotations

import copy
import subprocess

import pytest

from stacks import userdata
from stacks.config import load_config
from tests.boot import checks, seed
from tests.conftest import ROOT
from tests.imds.metadata import document


@pytest.fixture(scope="module")
def instance():
    return seed.controller_instance(load_config({}))


def test_guest_gets_the_stacks_multipart_with_the_stand_in_agent(instance) -> None:
    data = instance.user_data
    assert data.startswith("Content-Type: multipart/mixed")
    assert "text/cloud-config" in data and "power_state:\n  mode: reboot" in data
    assert f"SSM_AGENT_URL={seed.AGENT_URL}" in data
    assert "NODE_NAME=controller" in data and "set -euo pipefail" in data


def test_imds_tree_maps_each_mac_to_its_device_index(instance) -> None:
    macs = document(instance)["meta-data"]["network"]["interfaces"]["macs"]
    assert {tree["device-number"]: tree["local-ipv4s"][0] for tree in macs.values()} == {
        "0": "172.31.32.11", "1": "172.31.33.12", "2": "172.31.33.11"}
    assert macs[instance.enis[1].mac]["local-ipv4s"][1:] == ["172.31.33.50", "172.31.33.51", "172.31.33.52"]
    for mac in macs:
        first = int(mac.split(":")[0], 16)
        assert first & 2 and not first & 1, f"{mac} is not a locally administered unicast MAC (as EC2's)"
    assert len(set(macs)) == 3


def test_dhcp_smbios_and_nic_order(instance) -> None:
    assert [(lease.mac, lease.address) for lease in seed.dhcp_leases(instance)] == [
        (e.mac, e.local_ipv4s[0]) for e in instance.enis]
    fields = dict(kv.split("=", 1) for kv in seed.smbios_system(instance).split(","))
    assert fields["uuid"].startswith("ec2") and fields["uuid"] == fields["serial"]
    assert fields["manufacturer"] == "Amazon EC2"
    straight, rotated = seed.nic_order(instance, False), seed.nic_order(instance, True)
    assert [e.device_number for e in straight] == [0, 1, 2]
    assert all(a != b for a, b in zip(straight, rotated, strict=True))


def _agent_url(script: str) -> str:
    line = next(x for x in script.splitlines() if x.startswith("agent_url="))
    header = "\n".join(x for x in script.splitlines() if x.startswith(("REGION=", "SSM_AGENT_URL=")))
    done = subprocess.run(["bash", "-c", f'set -u\n{header}\n{line}\necho "$agent_url"'], capture_output=True,
                          text=True, check=True)
    return done.stdout.strip()


def test_agent_url_is_the_official_bucket_unless_the_proof_overrides_it() -> None:
    config = load_config({})
    args = {"region": "eu-west-1", "elastic_ip": "e", "secret_arn": "a", "bucket": "b"}
    ec2 = userdata.render(config, "controller", "controller", **args)
    assert "SSM_AGENT_URL=" not in ec2
    assert _agent_url(ec2) == "https://s3.eu-west-1.amazonaws.com/amazon-ssm-eu-west-1/latest/debian_amd64/" \
                              "amazon-ssm-agent.deb"
    proof = userdata.render(config, "controller", "controller", ssm_agent_url="http://10.0.0.2/a.deb", **args)
    assert _agent_url(proof) == "http://10.0.0.2/a.deb"


# ---- the verdicts, on a report set shaped as the guest probe writes it


def _link(name: str, mac: str) -> dict:
    return {"ifname": name, "address": mac, "link_type": "ether"}


def _up(instance, slots: list[str]) -> dict:
    enis = sorted(instance.enis, key=lambda e: e.device_number)
    return {
        "mode": "up", "hostname": "controller", "etc_hosts": "# openstack-aws begin\n172.31.32.11 controller\n",
        "links": [_link(checks.PINNED[e.device_number], e.mac) for e in enis],
        "pci_slot": {checks.PINNED[e.device_number]: slot for e, slot in zip(enis, slots, strict=True)},
        "mtime_ns": {"/etc/hostname": 100, "/etc/hosts": 101},
        "dpkg_list_mtime_ns": {"base-files": 10, "amazon-ssm-agent": 200},
        "node_env": "ROLE=controller\nNODE_NAME=controller\nMGMT_IF=mgmt0\nMGMT_MAC={}\nMGMT_IP=172.31.32.11\n"
                    "PROVIDER_IF=prov0\nPROVIDER_MAC={}\nPROVIDER_ENI_IP=172.31.33.12\nFLOATING_IPS=\"172.31.33.50 172.31.33.51 172.31.33.52\"\n"
                    "PUBLIC_IF=pub0\nPUBLIC_MAC={}\nPUBLIC_IP=172.31.33.11\nDATA_DISKS=\"\"\n".format(
                        *(e.mac for e in enis)),
        "cluster_env": "CONTROLLER_IP=172.31.32.11\nSECRET_SOURCE=secretsmanager:x\n",
        "rules": [{"priority": 0, "src": "all", "table": "local"}, {"priority": 1, "src": "172.31.33.11",
                                                                      "table": "200"}],
        "table_200": [{"dst": "default", "gateway": "172.31.33.1", "dev": "pub0"}],
        "cloud_init_network_cfg": "network: {config: disabled}\n", "netplan_files": [], "run_networkd_files": [],
        "networkctl": "1 lo loopback carrier unmanaged\n2 mgmt0 ether routable configured\n"
                      "3 prov0 ether carrier configured\n4 pub0 ether routable configured\n",
        "agent_enabled": "enabled", "agent_active": "active", "agent_starts": ["start boot=b2 uptime=9"],
        "userdata_runs": 1,
    }


@pytest.fixture
def ups(instance) -> dict:
    return {"boot2": _up(instance, ["0000:00:10.0", "0000:00:11.0", "0000:00:12.0"]),
            "boot3": _up(instance, ["0000:00:12.0", "0000:00:10.0", "0000:00:11.0"])}


def _all(instance, ups: dict, downs: dict | None = None, ended: dict | None = None) -> dict[str, checks.Check]:
    downs = downs or {b: {"boot_id": b, "hashes": {"/etc/hosts": "h"}, "userdata_runs": 1, "agent_starts": []}
                      for b in ("boot1", "boot2", "boot3")}
    ended = ended or {"boot1": "reboot", "boot2": "poweroff", "boot3": "poweroff"}
    reports = [*ups.values(), *downs.values()]
    found = [
        checks.check_hostname_first(ups["boot2"], 50),
        checks.check_names(instance, ups),
        checks.check_facts(instance, ups["boot2"], {"MGMT_IF", "CONTROLLER_IP", "SECRET_SOURCE"}),
        checks.check_policy_routing(instance, ups["boot2"], True, ""),
        checks.check_cloud_init_network(ups),
        checks.check_one_reboot(ended, reports),
        checks.check_unchanged(downs),
        checks.check_agent(ups),
        checks.check_agent_not_before_reboot(reports, "boot1"),
    ]
    return {c.name: c for c in found}


def test_a_good_boot_passes_every_check(instance, ups) -> None:
    failed = [c for c in _all(instance, ups).values() if not c.ok]
    assert failed == []


BREAKS = {
    "hostname and /etc/hosts before any package": lambda u: u["boot2"]["mtime_ns"].update({"/etc/hosts": 300}),
    "names pinned by MAC whatever the PCI order": lambda u: u["boot3"]["links"].reverse() or [
        link.update(ifname=n) for link, n in zip(u["boot3"]["links"], ["mgmt0", "prov0", "pub0"], strict=True)],
    # the same order twice proves nothing about the order
    "names pinned by MAC whatever the PCI order ": lambda u: u["boot3"].update(pci_slot=u["boot2"]["pci_slot"]),
    "node.env/cluster.env hold what the steps need": lambda u: u["boot2"].update(
        cluster_env="SECRET_SOURCE=secretsmanager:x\n"),
    "replies from pub0's address leave by pub0": lambda u: u["boot2"]["rules"].pop(),
    "cloud-init networking off, networkd owns the links": lambda u: u["boot3"].update(
        netplan_files=["50-cloud-init.yaml"]),
    "SSM agent (stand-in) enabled and running after the reboot": lambda u: u["boot3"].update(agent_active="failed"),
    "SSM agent never ran before the reboot": lambda u: u["boot2"]["agent_starts"].append("start boot=boot1 uptime=80"),
}


@pytest.mark.parametrize("name", sorted(BREAKS))
def test_each_check_fails_on_the_defect_it_guards(instance, ups, name) -> None:
    broken = copy.deepcopy(ups)
    BREAKS[name](broken)
    results = _all(instance, broken)
    assert not results[name.strip()].ok, results[name.strip()].detail
    assert [n for n, c in results.items() if not c.ok] == [name.strip()]


def test_a_second_reboot_or_rewritten_file_fails(instance, ups) -> None:
    assert not _all(instance, ups, ended={"boot1": "reboot", "boot2": "reboot", "boot3": "poweroff"})[
        "exactly one reboot; userdata ran once"].ok
    downs = {b: {"boot_id": b, "hashes": {"/etc/hosts": b}, "userdata_runs": 1} for b in ("boot1", "boot2", "boot3")}
    assert not _all(instance, ups, downs=downs)["later boots change nothing"].ok


def test_required_facts_come_from_the_controllers_steps() -> None:
    from tests.boot.proof import required_facts

    names = required_facts()
    assert {"MGMT_IF", "PUBLIC_IF", "PROVIDER_IF", "ELASTIC_IP", "SECRET_SOURCE"} <= names
    assert (ROOT / "steps" / "lib" / "common.sh").exists()


def test_reports_skip_the_line_the_guest_is_still_writing(instance, tmp_path) -> None:
    from tests.boot.qemu import PROBE_PREFIX, Boot

    boot = Boot("boot2", instance, False, tmp_path, tmp_path / "disk.img", tmp_path)
    boot.probe_log.write_text(f'noise\r\n{PROBE_PREFIX}{{"mode": "down", "n": 1}}\r\n{PROBE_PREFIX}{{"mode": "up", "hos')
    assert boot.reports() == [{"mode": "down", "n": 1}]
    assert boot.report("up") is None
