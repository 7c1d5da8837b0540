"""Userdata: under EC2's 16 KB, hostnames and /etc/hosts first, no secrets, packages per role, valid bash."""

from __future__ import annotations

import base64
import json
import re
import subprocess

import pytest

from stacks import userdata
from stacks.config import load_config
from tests.conftest import ROOT, SynthesizedApp

EC2_USERDATA_LIMIT = 16 * 1024
# The longest values the deploy-time tokens can take (ARN with suffix, bucket name, IPv4, region).
TOKEN_WORST_CASE = {"Ref": 128, "Fn::GetAtt": 128, "Fn::ImportValue": 128, "Fn::Select": 32}


def _rendered_from_template(instance: dict) -> str:
    """The instance's userdata as CloudFormation will build it, tokens replaced by worst-case-length strings."""
    joined = instance["Properties"]["UserData"]["Fn::Base64"]
    parts = joined["Fn::Join"][1] if isinstance(joined, dict) else [joined]
    return "".join(p if isinstance(p, str) else "x" * TOKEN_WORST_CASE[next(iter(p))] for p in parts)


@pytest.fixture(scope="module")
def rendered(synth_app: SynthesizedApp) -> dict[str, str]:
    instances = synth_app.template(synth_app.stacks.nodes).find_resources("AWS::EC2::Instance")
    return {
        next(t["Value"] for t in r["Properties"]["Tags"] if t["Key"] == "openstack-aws:node"): _rendered_from_template(
            r
        )
        for r in instances.values()
    }


def test_userdata_of_every_node_fits_ec2s_limit(rendered: dict[str, str]) -> None:
    for node, text in rendered.items():
        assert len(text.encode()) < EC2_USERDATA_LIMIT, f"{node}: {len(text.encode())} bytes"


def test_hostname_and_hosts_come_before_any_package(rendered: dict[str, str]) -> None:
    text = rendered["controller"]
    assert text.index("hostnamectl set-hostname") < text.index("apt-get")
    assert text.index("/etc/hosts") < text.index("apt-get")
    hosts = re.search(r"HOSTS_BLOCK=(.*)", text).group(1)
    for line in ("172.31.32.11 controller", "172.31.32.21 compute1", "172.31.32.31 block1", "172.31.32.42 object2"):
        assert line in hosts


def test_reboot_part_and_network_fix_prerequisites(rendered: dict[str, str]) -> None:
    for text in rendered.values():
        assert "power_state:" in text and "mode: reboot" in text
        assert "99-custom-networking.cfg" in text and "network: {config: disabled}" in text
        assert "amazon-ssm-$REGION/latest/debian_amd64/amazon-ssm-agent.deb" in text


def test_each_role_prefetches_its_own_packages(rendered: dict[str, str]) -> None:
    def packages(node: str) -> set[str]:
        return set(re.search(r"PACKAGES='?([^'\n]*)", rendered[node]).group(1).split())

    assert {"keystone", "nova-api", "neutron-api", "mariadb-server"} <= packages("controller")
    assert "nova-compute-kvm" in packages("compute1") and "keystone" not in packages("compute1")
    assert "cinder-volume" in packages("block1")
    assert "swift-object" in packages("object1")
    assert all("--download-only" in t for t in rendered.values())


def test_no_password_reaches_userdata(rendered: dict[str, str]) -> None:
    for text in rendered.values():
        assert not re.search(r"_PASS\s*=", text)
        assert "SECRET_SOURCE=secretsmanager:" in text  # a reference to the secret, never its value
        assert "PROBE_IP=1.1.1.1" in text and "PROBE_IP=$PROBE_IP" in text


def test_rendered_script_is_valid_bash_with_shellcheck_clean_body(tmp_path) -> None:
    config = load_config({})
    script = userdata.render(
        config,
        "compute1",
        "compute",
        region="eu-west-1",
        elastic_ip="203.0.113.10",
        secret_arn="arn:aws:secretsmanager:eu-west-1:123456789012:secret:x",
        bucket="b",
    )
    path = tmp_path / "compute1.sh"
    path.write_text(script)
    assert subprocess.run(["bash", "-n", str(path)], capture_output=True).returncode == 0
    result = subprocess.run(["shellcheck", "-S", "warning", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout
    assert "ROLE=compute" in script and "NODE_NAME=compute1" in script


def test_multipart_structure_survives_base64(synth_app: SynthesizedApp) -> None:
    instance = next(iter(synth_app.template(synth_app.stacks.nodes).find_resources("AWS::EC2::Instance").values()))
    text = _rendered_from_template(instance)
    assert text.startswith('Content-Type: multipart/mixed; boundary="==OPENSTACK-AWS=="')
    assert text.count("--==OPENSTACK-AWS==") == 3
    base64.b64encode(text.encode())  # what CloudFormation's Fn::Base64 will do
    json.dumps(text)


def test_cluster_facts_name_the_vpc_resolver_and_the_probe_name() -> None:
    """VPC_DNS is the VPC range's base + 2 (AWS's resolver); PROBE_NAME is the configured name or empty (the steps
    then use the region's S3 endpoint name)."""

    def render(**context: object) -> str:
        config = load_config(context)
        return userdata.render(config, "compute1", "compute", region="r", elastic_ip="e", secret_arn="a", bucket="b")

    text = render(vpc_cidr="10.20.0.0/16", subnet_a_cidr="10.20.1.0/24", subnet_b_cidr="10.20.2.0/24")
    assert "VPC_DNS=10.20.0.2\n" in text and "VPC_DNS=$VPC_DNS\n" in text
    assert "PROBE_NAME=''" in text or "PROBE_NAME=\n" in text
    assert "PROBE_NAME=example.org\n" in render(probe_name="example.org")


def test_every_compute_node_is_in_hosts_and_compute_ips() -> None:
    config = load_config({"compute_count": 3})
    script = userdata.render(config, "controller", "controller", region="eu-west-1", elastic_ip="198.51.100.7",
                             secret_arn="arn:secret", bucket="bucket")  # fmt: skip
    assert "COMPUTE_IPS='172.31.32.21 172.31.32.22 172.31.32.23'" in script
    hosts = re.search(r"HOSTS_BLOCK=(.*)", script).group(1)
    assert all(f"172.31.32.2{i} compute{i}" in hosts for i in (1, 2, 3)) and "172.31.32.31 block1" in hosts


def _compute1(**context: object) -> str:
    return userdata.render(load_config(context), "compute1", "compute", region="r", elastic_ip="e", secret_arn="a",
                           bucket="b")  # fmt: skip


def test_the_release_reaches_cluster_env_and_picks_the_prefetch_list() -> None:
    bookworm, trixie = _compute1(), _compute1(os_release="trixie")
    assert "\nOS_RELEASE=bookworm\n" in bookworm and "\nOS_RELEASE=trixie\n" in trixie
    cluster_env = trixie[trixie.index('cat > "$FACTS/cluster.env" <<EOF') :].split("\nEOF\n", 1)[0]
    assert "\nOS_RELEASE=$OS_RELEASE" in cluster_env

    def packages(script: str) -> set[str]:
        return set(re.search(r"PACKAGES='?([^'\n]*)", script).group(1).split())

    assert {"neutron-linuxbridge-agent", "ebtables"} <= packages(bookworm)
    assert not {"openvswitch-switch", "neutron-openvswitch-agent"} & packages(bookworm)
    assert {"openvswitch-switch", "neutron-openvswitch-agent", "nova-compute"} <= packages(trixie)
    assert not {"neutron-linuxbridge-agent", "ebtables"} & packages(trixie)


def _release_check(os_release: str, codename: str | None, tmp_path) -> subprocess.CompletedProcess[str]:
    """userdata/node.sh's release check, run alone with /etc/os-release replaced by a fake naming `codename`
    (None: no such file)."""
    script = (ROOT / "userdata" / "node.sh").read_text()
    block = script[script.index("# Release check:") : script.index("FACTS=/etc/openstack-aws")]
    fake = tmp_path / f"os-release-{len(list(tmp_path.iterdir()))}"  # one per call
    if codename is not None:
        fake.write_text(f'PRETTY_NAME="Debian GNU/Linux"\nNAME="Debian GNU/Linux"\nID=debian\nVERSION_CODENAME={codename}\n')
    block = block.replace(". /etc/os-release", f". {fake}")
    assert str(fake) in block, "the check reads /etc/os-release"
    return subprocess.run(["bash", "-c", f"set -euo pipefail\nOS_RELEASE={os_release}\n{block}echo passed"],
                          capture_output=True, text=True, timeout=30)  # fmt: skip


@pytest.mark.parametrize(("os_release", "codename"), [("bookworm", "bookworm"), ("trixie", "trixie"),
                                                       ("trixie", '"trixie"')])  # fmt: skip
def test_the_release_check_passes_on_the_configured_release(os_release: str, codename: str, tmp_path) -> None:
    proc = _release_check(os_release, codename, tmp_path)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "passed\n", "")


def test_the_release_check_stops_on_another_release_naming_both_and_the_fix(tmp_path) -> None:
    proc = _release_check("trixie", "bookworm", tmp_path)
    assert proc.returncode == 1 and "passed" not in proc.stdout
    message = " ".join(proc.stderr.split())
    assert "this AMI is Debian 'bookworm' (VERSION_CODENAME in /etc/os-release)" in message
    assert "the stack's os_release is 'trixie'" in message and "Stopped before changing this node" in message
    assert "os_release=bookworm to match the AMI, or ami_id=<a Debian trixie AMI>" in message
    missing = _release_check("bookworm", None, tmp_path)
    assert missing.returncode == 1 and "this AMI is Debian 'unknown'" in missing.stderr
