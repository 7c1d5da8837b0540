"""The rendered userdata run for real (tests/userdata_sandbox.py): what a first boot does, in which order, with
no egress, with apt's locks held, and with the SSM agent's package starting the agent as the official one does."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from stacks import userdata
from stacks.config import load_config
from tests.userdata_sandbox import COMPUTE_ENIS, CONTROLLER_ENIS, FirstBoot, run_first_boot

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root: mount namespaces and network namespaces")
AGENT_INSTALL = "apt-get -o DPkg::Lock::Timeout=600 install -y /tmp/amazon-ssm-agent.deb"


def first_boot(
    tmp_path: Path, node: str, *, egress: str = "nat-gateway", release: str = "bookworm", ami_release: str = "",
    succeeds: bool = True, **env: str,
) -> FirstBoot:
    """The node's first boot with config os_release=`release` on an AMI of `ami_release` (default: the same)."""
    role = node.rstrip("0123456789")
    script = userdata.render(
        load_config({"management_egress": egress, "os_release": release}), node, role, region="eu-west-1",
        elastic_ip="203.0.113.10", secret_arn="arn:aws:secretsmanager:eu-west-1:123456789012:secret:x", bucket="b",
    )  # fmt: skip
    enis = CONTROLLER_ENIS if role == "controller" else COMPUTE_ENIS
    boot = run_first_boot(script, enis, tmp_path, ami_release=ami_release or release, **env)
    assert (boot.returncode == 0) == succeeds, boot.output
    return boot


def test_with_management_egress_none_nothing_before_the_agent_needs_a_package(tmp_path: Path) -> None:
    boot = first_boot(tmp_path, "controller", egress="none")
    agent = boot.index(AGENT_INSTALL)
    assert [c for c in boot.calls[:agent] if c.startswith(("apt-get", "dpkg", "iptables"))] == []
    assert not [c for c in boot.calls if c.startswith(("iptables", "dpkg"))]
    assert "oifname \"pub0\" ip saddr 172.31.32.0/24 masquerade" in boot.written("/etc/openstack-aws/subnet-a-nat.nft")
    assert "ExecStart=/usr/sbin/nft -f /etc/openstack-aws/subnet-a-nat.nft" in boot.written(
        "/etc/systemd/system/openstack-aws-subnet-a-nat.service")
    assert "systemctl enable openstack-aws-subnet-a-nat.service" in boot.calls
    assert boot.written("/etc/sysctl.d/60-osa-nat.conf") == "net.ipv4.ip_forward = 1\n"


def test_with_management_egress_none_other_nodes_wait_for_the_controllers_nat(tmp_path: Path) -> None:
    boot = first_boot(tmp_path, "compute1", egress="none", APT_UPDATE_FAILS="12")
    updates = [c for c in boot.calls if " update " in f"{c} "]
    assert len(updates) == 13 and boot.index(AGENT_INSTALL) < boot.index(updates[0])
    assert "apt waits up to 20 min for egress through the controller's NAT" in boot.output
    assert "apt-get update (egress): attempt 12 of 40 failed" in boot.output
    assert any("--download-only" in c for c in boot.calls)  # the prefetch then runs


def test_the_subnet_a_nat_ruleset_masquerades_subnet_a_through_pub0_only(tmp_path: Path) -> None:
    """The rendered ruleset in a real kernel: a subnet A node reaches a host that has no route back to subnet A
    only through the masquerade; a subnet B source (a floating IP) is left to the network fix."""
    ruleset = first_boot(tmp_path, "controller", egress="none").written("/etc/openstack-aws/subnet-a-nat.nft")
    (tmp_path / "nat.nft").write_text(ruleset)
    script = f"""set -e
ip link add mgmt0 type veth peer name node
ip link add pub0 type veth peer name gw
ip netns add osa-node-$$; ip netns add osa-gw-$$
trap 'ip netns del osa-node-$$; ip netns del osa-gw-$$' EXIT
ip link set node netns osa-node-$$; ip link set gw netns osa-gw-$$
ip addr add 172.31.32.11/24 dev mgmt0; ip addr add 172.31.33.11/24 dev pub0
ip link set mgmt0 up; ip link set pub0 up; sysctl -qw net.ipv4.ip_forward=1
ip netns exec osa-node-$$ sh -c 'ip addr add 172.31.32.21/24 dev node; ip link set node up; ip link set lo up
  ip route add default via 172.31.32.11'
ip netns exec osa-gw-$$ sh -c 'ip addr add 172.31.33.1/24 dev gw; ip link set gw up; ip link set lo up'
nft -f {tmp_path}/nat.nft; nft -f {tmp_path}/nat.nft  # twice: a restart replaces the table
ip netns exec osa-node-$$ ping -c1 -W2 172.31.33.1 >/dev/null && echo reached || echo unreached
nft delete table ip osa_subnet_a_nat
ip netns exec osa-node-$$ ping -c1 -W2 172.31.33.1 >/dev/null && echo reached || echo unreached
"""
    proc = subprocess.run(["unshare", "--net", "bash", "-c", script], capture_output=True, text=True, timeout=60)
    assert proc.stdout.split() == ["reached", "unreached"], proc.stderr


def test_prov0_stays_in_neutrons_bridge_and_networkd_keeps_the_fixs_routes(tmp_path: Path) -> None:
    boot = first_boot(tmp_path, "controller")
    prov0 = boot.written("/etc/systemd/network/05-osa-prov0.network")
    assert "[Network]" in prov0 and "KeepMaster=yes" in prov0.split("[Network]")[1]
    networkd = boot.written("/etc/systemd/networkd.conf.d/10-osa.conf")
    assert "ManageForeignRoutes=no" in networkd and "ManageForeignRoutingPolicyRules=no" in networkd


def test_the_agent_starts_only_once_userdata_has_finished(tmp_path: Path) -> None:
    boot = first_boot(tmp_path, "compute1")
    install = boot.calls[boot.index(AGENT_INSTALL)]
    assert "ConditionPathExists=/etc/openstack-aws/userdata.done" in install  # the drop-in is there first
    assert boot.calls[boot.index(AGENT_INSTALL) + 1] == "systemctl start amazon-ssm-agent -> skipped"
    assert "systemctl enable amazon-ssm-agent" in boot.calls
    assert not [c for c in boot.calls if c.endswith("-> started")]
    prefetch = boot.index("apt-get -o DPkg::Lock::Timeout=600 install -y --download-only")
    assert prefetch > boot.index(AGENT_INSTALL)
    assert (boot.etc / "openstack-aws" / "userdata.done").exists()  # written last: from the reboot on it starts
    assert boot.output.rstrip().splitlines()[-1].startswith("userdata done for compute1")


def test_every_apt_call_waits_for_the_lock_and_is_retried(tmp_path: Path) -> None:
    boot = first_boot(tmp_path, "compute1", APT_INSTALL_FAILS="1", CURL_FAILS="2")
    apt = [c for c in boot.calls if c.startswith("apt-get")]
    assert apt and all(c.startswith("apt-get -o DPkg::Lock::Timeout=600 ") for c in apt)
    assert len([c for c in apt if c.startswith(AGENT_INSTALL)]) == 2  # the first attempt failed, then again
    assert len([c for c in boot.calls if c.startswith("curl https://s3.eu-west-1.amazonaws.com/")]) == 3
    assert "SSM agent install: attempt 1 of 3 failed" in boot.output
    assert not [c for c in boot.calls if c.startswith("dpkg")]


def test_a_trixie_node_on_a_trixie_ami_writes_its_release_and_prefetches_trixies_packages(tmp_path: Path) -> None:
    boot = first_boot(tmp_path, "controller", release="trixie")
    assert "\nOS_RELEASE=trixie\n" in boot.written("/etc/openstack-aws/cluster.env")
    prefetch = boot.calls[boot.index("apt-get -o DPkg::Lock::Timeout=600 install -y --download-only")].split()
    assert {"openvswitch-switch", "neutron-openvswitch-agent", "python3-pymemcache"} <= set(prefetch)
    assert "neutron-linuxbridge-agent" not in prefetch


def test_an_ami_of_another_release_stops_the_first_boot_before_anything_changes(tmp_path: Path) -> None:
    boot = first_boot(tmp_path, "compute1", release="trixie", ami_release="bookworm", succeeds=False)
    assert boot.returncode == 1 and boot.calls == []  # no hostname, no agent, no apt, no reboot-time config
    assert not (boot.etc / "openstack-aws").exists() and not (boot.etc / "hostname").exists()
    message = " ".join(boot.output.split())
    assert "this AMI is Debian 'bookworm' (VERSION_CODENAME in /etc/os-release), but the stack's os_release is " \
        "'trixie'" in message  # fmt: skip
    assert "os_release=bookworm to match the AMI, or ami_id=<a Debian trixie AMI>" in message
