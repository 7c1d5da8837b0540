"""The nodes stack: ENIs per instance in device-index order, EIP on eth2, IMDSv2, encryption, IAM scope, tags."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from aws_cdk.assertions import Match, Template

from tests.conftest import SynthesizedApp, synthesize


def _by_logical_id_prefix(template: Template, kind: str) -> dict[str, dict[str, Any]]:
    return template.find_resources(kind)


def _primary_ip(eni: dict[str, Any]) -> str:
    props = eni["Properties"]
    listed = [a["PrivateIpAddress"] for a in props.get("PrivateIpAddresses", []) if a["Primary"]]
    return props.get("PrivateIpAddress") or listed[0]


def _secondary_ips(eni: dict[str, Any]) -> list[str]:
    return [a["PrivateIpAddress"] for a in eni["Properties"].get("PrivateIpAddresses", []) if not a["Primary"]]


def _tags(resource: dict[str, Any]) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in resource["Properties"].get("Tags", [])}


@pytest.fixture(scope="module")
def nodes(synth_app: SynthesizedApp) -> Template:
    return synth_app.template(synth_app.stacks.nodes)


def test_every_node_of_the_design_exists_with_its_role_tags(nodes: Template) -> None:
    instances = nodes.find_resources("AWS::EC2::Instance")
    tagged = {_tags(r)["openstack-aws:node"]: _tags(r) for r in instances.values()}
    assert sorted(tagged) == ["block1", "compute1", "controller", "object1", "object2"]
    assert {n: t["openstack-aws:role"] for n, t in tagged.items()} == {
        "controller": "controller",
        "compute1": "compute",
        "block1": "block",
        "object1": "object",
        "object2": "object",
    }
    assert all(t["openstack-aws:project"] == "openstack-aws" for t in tagged.values())
    types = {_tags(r)["openstack-aws:node"]: r["Properties"]["InstanceType"] for r in instances.values()}
    assert types == {
        "controller": "t3.xlarge",
        "compute1": "t3.xlarge",
        "block1": "t3.medium",
        "object1": "t3.medium",
        "object2": "t3.medium",
    }


def test_enis_are_attached_in_device_index_order_with_their_fixed_addresses(nodes: Template) -> None:
    enis = nodes.find_resources("AWS::EC2::NetworkInterface")
    eni_by_id = {logical: r for logical, r in enis.items()}
    expected = {
        "controller": [("eth0", "172.31.32.11"), ("eth1", "172.31.33.12"), ("eth2", "172.31.33.11")],
        "compute1": [("eth0", "172.31.32.21"), ("eth1", "172.31.33.22")],
        "block1": [("eth0", "172.31.32.31")],
        "object1": [("eth0", "172.31.32.41")],
        "object2": [("eth0", "172.31.32.42")],
    }
    for instance in nodes.find_resources("AWS::EC2::Instance").values():
        node = _tags(instance)["openstack-aws:node"]
        attached = instance["Properties"]["NetworkInterfaces"]
        assert [a["DeviceIndex"] for a in attached] == [str(i) for i in range(len(expected[node]))]
        seen = []
        for attachment in attached:
            eni = eni_by_id[attachment["NetworkInterfaceId"]["Ref"]]
            tags = _tags(eni)
            assert tags["openstack-aws:node"] == node and tags["openstack-aws:project"] == "openstack-aws"
            seen.append((tags["openstack-aws:eni"], _primary_ip(eni)))
        assert seen == expected[node]


def test_elastic_ip_is_associated_with_the_controllers_eth2(nodes: Template) -> None:
    primary = [
        a for a in nodes.find_resources("AWS::EC2::EIPAssociation").values() if "PrivateIpAddress" not in a["Properties"]
    ]
    assert len(primary) == 1
    eni = nodes.find_resources("AWS::EC2::NetworkInterface")[primary[0]["Properties"]["NetworkInterfaceId"]["Ref"]]
    assert _tags(eni)["openstack-aws:eni"] == "eth2" and _tags(eni)["openstack-aws:node"] == "controller"


def _floating_layout(template: Template) -> dict[str, str]:
    """Secondary address of an ENI (node:ethN) -> the EIP logical id associated with it."""
    enis = template.find_resources("AWS::EC2::NetworkInterface")
    layout = {}
    for association in template.find_resources("AWS::EC2::EIPAssociation").values():
        props = association["Properties"]
        if "PrivateIpAddress" not in props:
            continue
        eni = enis[props["NetworkInterfaceId"]["Ref"]]
        assert props["PrivateIpAddress"] in _secondary_ips(eni)
        where = f"{_tags(eni)['openstack-aws:node']}:{_tags(eni)['openstack-aws:eni']}"
        layout[props["PrivateIpAddress"]] = f"{where} {props['AllocationId']['Fn::ImportValue'].split('FnGetAtt')[1]}"
    return layout


def test_default_floating_ip_pool_is_three_secondary_addresses_of_controller_eth1_each_with_its_own_eip(
    nodes: Template,
) -> None:
    # Three: verify's instance holds one, and a user still has one for a router of their own and one floating IP.
    pool = ["172.31.33.50", "172.31.33.51", "172.31.33.52"]
    layout = _floating_layout(nodes)
    assert sorted(layout) == pool
    for n, ip in enumerate(pool, start=1):
        assert layout[ip].startswith(f"controller:eth1 FloatingEip{n}"), layout
    secondaries = {
        f"{_tags(e)['openstack-aws:node']}:{_tags(e)['openstack-aws:eni']}": _secondary_ips(e)
        for e in nodes.find_resources("AWS::EC2::NetworkInterface").values()
    }
    assert {k: sorted(v) for k, v in secondaries.items() if v} == {"controller:eth1": pool}
    output = json.dumps(nodes.find_outputs("FloatingIps")["FloatingIps"]["Value"])
    assert all(f'"{ip}"' in output for ip in pool), output


def test_floating_ips_count_sets_pool_eips_and_a_security_group_only_on_the_provider_eni() -> None:
    app = synthesize({"floating_ips": 3, "allowed_cidr": "0.0.0.0/0", "allow_world": True})
    nodes, network = app.template(app.stacks.nodes), app.template(app.stacks.network)
    assert sorted(_floating_layout(nodes)) == ["172.31.33.50", "172.31.33.51", "172.31.33.52"]
    assert len(network.find_resources("AWS::EC2::EIP")) == 1 + 1 + 3  # NAT gateway, controller, floating
    groups = {
        f"{_tags(e)['openstack-aws:node']}:{_tags(e)['openstack-aws:eni']}": len(e["Properties"]["GroupSet"])
        for e in nodes.find_resources("AWS::EC2::NetworkInterface").values()
    }
    assert {k: n for k, n in groups.items() if n > 1} == {"controller:eth1": 2}
    floating_sg = [
        g for k, g in network.find_resources("AWS::EC2::SecurityGroup").items() if k.startswith("FloatingIpSecurityGroup")
    ]
    assert [r["CidrIp"] for r in floating_sg[0]["Properties"]["SecurityGroupIngress"]] == ["0.0.0.0/0"]


def _group_name(imported: dict[str, str]) -> str:
    """The construct name (NodeSecurityGroup...) of a security group the network stack exports."""
    match = re.search(r"FnGetAtt([A-Za-z]+SecurityGroup)", imported["Fn::ImportValue"])
    assert match, imported
    return match.group(1)


def _groups_by_eni(template: Template) -> dict[str, list[str]]:
    return {
        f"{_tags(e)['openstack-aws:node']}:{_tags(e)['openstack-aws:eni']}": [
            _group_name(g) for g in e["Properties"]["GroupSet"]
        ]
        for e in template.find_resources("AWS::EC2::NetworkInterface").values()
    }


def test_only_management_enis_are_in_the_node_group_whose_members_every_node_trusts(nodes: Template) -> None:
    """The router's gateway and the floating IPs are eth1's addresses: in the node group, every node would take
    tenants' traffic from them. eth2 (the public ENI, which the controller forwards that traffic through) is not a
    member either."""
    groups = _groups_by_eni(nodes)
    assert {k: v for k, v in groups.items() if "NodeSecurityGroup" in v} == {
        k: ["NodeSecurityGroup"] for k in groups if k.endswith(":eth0")
    }
    assert groups["controller:eth1"] == ["ProviderSecurityGroup"]  # no allowed_cidr: no floating IP group
    assert groups["compute1:eth1"] == ["ProviderSecurityGroup"]
    assert groups["controller:eth2"] == ["PublicSecurityGroup"]


def test_no_floating_ips_means_no_secondary_addresses_and_no_floating_eips() -> None:
    app = synthesize({"floating_ips": 0})
    nodes = app.template(app.stacks.nodes)
    assert _floating_layout(nodes) == {}
    assert nodes.find_outputs("FloatingIps")["FloatingIps"]["Value"] == "none (floating_ips=0)"
    assert len(app.template(app.stacks.network).find_resources("AWS::EC2::EIP")) == 2


def test_imdsv2_is_required_and_every_volume_is_encrypted(nodes: Template) -> None:
    templates = nodes.find_resources("AWS::EC2::LaunchTemplate")
    assert len(templates) == 5
    for template in templates.values():
        assert template["Properties"]["LaunchTemplateData"]["MetadataOptions"]["HttpTokens"] == "required"
    disks = {}
    for instance in nodes.find_resources("AWS::EC2::Instance").values():
        mappings = instance["Properties"]["BlockDeviceMappings"]
        assert all(m["Ebs"]["Encrypted"] is True for m in mappings)
        disks[_tags(instance)["openstack-aws:node"]] = [m["Ebs"]["VolumeSize"] for m in mappings]
    assert disks == {
        "controller": [40],
        "compute1": [40],
        "block1": [8, 40],
        "object1": [8, 20, 20],
        "object2": [8, 20, 20],
    }


def _launch_image(template: Template) -> tuple[str, dict[str, Any]]:
    (logical, resolver), = template.find_resources("Custom::AWS").items()
    return logical, resolver["Properties"]


def _synthesized_launch_image(context: dict[str, Any]) -> tuple[Any, Template, str, dict[str, Any]]:
    """The app synthesized with `context`, its nodes template, the launch image's resolver and what it does at
    creation; it never runs again on an update (no "Update")."""
    app = synthesize(context)
    nodes = app.template(app.stacks.nodes)
    logical, resolver = _launch_image(nodes)
    assert "Update" not in resolver
    return app, nodes, logical, json.loads(resolver["Create"])


def test_the_ami_is_resolved_once_at_creation_not_on_every_update(nodes: Template) -> None:
    """An SSM-typed ImageId parameter is re-resolved on each update: a new Debian AMI would replace every node."""
    parameters = nodes.to_json().get("Parameters", {})
    assert not [p for p in parameters.values() if "AWS::EC2::Image::Id" in p["Type"]]
    logical, resolver = _launch_image(nodes)
    create = json.loads(resolver["Create"])
    assert (create["service"], create["action"]) == ("SSM", "getParameter")
    assert create["parameters"] == {"Name": "/aws/service/debian/release/12/latest/amd64"}
    nodes.has_resource_properties("Custom::AWS", {"Create": Match.serialized_json(Match.object_like(
        {"action": "getParameter", "parameters": {"Name": "/aws/service/debian/release/12/latest/amd64"}}))})  # fmt: skip
    assert create["physicalResourceId"] == {"responsePath": "Parameter.Value"}
    assert "Update" not in resolver  # an update keeps the physical ID: the launch AMI
    images = {json.dumps(i["Properties"]["ImageId"]) for i in nodes.find_resources("AWS::EC2::Instance").values()}
    assert images == {json.dumps({"Ref": logical})}


@pytest.mark.synth
def test_a_new_ami_id_keeps_the_launch_ami_and_reaches_the_nodes_by_root_volume_replacement() -> None:
    app, nodes, logical, create = _synthesized_launch_image({"ami_id": "ami-0123456789abcdef0"})
    assert (create["action"], create["parameters"]) == ("describeImages", {"ImageIds": ["ami-0123456789abcdef0"]})
    assert all(i["Properties"]["ImageId"] == {"Ref": logical} for i in nodes.find_resources("AWS::EC2::Instance").values())
    orchestration = json.dumps(app.template(app.stacks.orchestration).to_json())
    assert '\\"image_id\\":\\"ami-0123456789abcdef0\\"' in orchestration.replace(" ", "")


@pytest.mark.synth
def test_os_release_trixie_launches_from_debian_13s_parameter_and_tells_every_node() -> None:
    _, nodes, logical, create = _synthesized_launch_image({"os_release": "trixie"})  # pinned, as for bookworm
    assert (create["service"], create["action"]) == ("SSM", "getParameter")
    assert create["parameters"] == {"Name": "/aws/service/debian/release/13/latest/amd64"}
    nodes.has_resource_properties("Custom::AWS", {"Create": Match.serialized_json(Match.object_like(
        {"action": "getParameter", "parameters": {"Name": "/aws/service/debian/release/13/latest/amd64"}}))})  # fmt: skip
    # the resolver may read that parameter only
    policies = json.dumps(nodes.find_resources("AWS::IAM::Policy"))
    assert "parameter/aws/service/debian/release/13/latest/amd64" in policies
    assert "release/12" not in json.dumps(nodes.to_json())
    for instance in nodes.find_resources("AWS::EC2::Instance").values():
        assert instance["Properties"]["ImageId"] == {"Ref": logical}
        userdata = json.dumps(instance["Properties"]["UserData"])
        assert "\\nOS_RELEASE=trixie\\n" in userdata and "OS_RELEASE=$OS_RELEASE" in userdata


def test_the_default_release_is_bookworm_in_every_nodes_userdata(nodes: Template) -> None:
    for instance in nodes.find_resources("AWS::EC2::Instance").values():
        assert "\\nOS_RELEASE=bookworm\\n" in json.dumps(instance["Properties"]["UserData"])


def test_node_role_has_only_ssm_core_secret_read_and_artifact_prefix(nodes: Template) -> None:
    roles = nodes.find_resources(
        "AWS::IAM::Role",
        {"Properties": {"AssumeRolePolicyDocument": {"Statement": [{"Principal": {"Service": "ec2.amazonaws.com"}}]}}},
    )
    assert len(roles) == 1
    logical, role = next(iter(roles.items()))
    managed = json.dumps(role["Properties"]["ManagedPolicyArns"])
    assert "AmazonSSMManagedInstanceCore" in managed and managed.count("iam::aws:policy") == 1
    policies = [
        p for p in nodes.find_resources("AWS::IAM::Policy").values() if {"Ref": logical} in p["Properties"]["Roles"]
    ]
    actions = sorted(
        {
            a
            for p in policies
            for s in p["Properties"]["PolicyDocument"]["Statement"]
            for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
        }
    )
    assert [a for a in actions if not a.startswith("logs:")] == [
        "s3:GetObject",
        "s3:PutObject",
        "secretsmanager:DescribeSecret",
        "secretsmanager:GetSecretValue",
    ]
    resources = json.dumps([s["Resource"] for p in policies for s in p["Properties"]["PolicyDocument"]["Statement"]])
    assert "/artifacts/*" in resources and '"*"' not in resources


def test_artifact_bucket_is_encrypted_tls_only_and_private(nodes: Template) -> None:
    bucket = next(iter(nodes.find_resources("AWS::S3::Bucket").values()))["Properties"]
    assert (
        bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"][
            "SSEAlgorithm"
        ]
        == "AES256"
    )
    assert all(
        bucket["PublicAccessBlockConfiguration"][k]
        for k in ("BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets")
    )
    policy = json.dumps(next(iter(nodes.find_resources("AWS::S3::BucketPolicy").values())))
    assert '"aws:SecureTransport": "false"' in policy


def test_no_secret_value_is_in_the_template(synth_app: SynthesizedApp) -> None:
    nodes = synth_app.template(synth_app.stacks.nodes).to_json()
    secret = next(
        iter(synth_app.template(synth_app.stacks.nodes).find_resources("AWS::SecretsManager::Secret").values())
    )
    assert "SecretString" not in secret["Properties"]
    assert secret["Properties"]["GenerateSecretString"]["SecretStringTemplate"] == "{}"
    seed = next(
        iter(synth_app.template(synth_app.stacks.nodes).find_resources("AWS::CloudFormation::CustomResource").values())
    )
    assert "ADMIN_PASS" in seed["Properties"]["Keys"] and "RABBIT_PASS" in seed["Properties"]["Keys"]
    text = json.dumps(nodes).lower()
    assert "password=" not in text and "pass=" not in text


def test_outputs_tell_the_operator_where_everything_is(synth_app: SynthesizedApp) -> None:
    outputs = synth_app.template(synth_app.stacks.nodes).to_json()["Outputs"]
    for key in (
        "HorizonUrl",
        "KeystonePublicUrl",
        "ElasticIp",
        "SecretArn",
        "AdminPasswordCommand",
        "PublicAccess",
        "InstanceIdController",
        "InstanceIdCompute1",
        "InstanceIdBlock1",
        "InstanceIdObject1",
        "InstanceIdObject2",
    ):
        assert key in outputs, key
    assert "AWS-StartPortForwardingSession" in json.dumps(outputs["PublicAccess"])
    assert "get-secret-value" in json.dumps(outputs["AdminPasswordCommand"])
    # The public side is https, and the operator can fetch the CA the public-tls step keeps in the bucket.
    assert "https://" in json.dumps(outputs["HorizonUrl"]) and "https://" in json.dumps(outputs["KeystonePublicUrl"])
    assert "/artifacts/public-tls-ca.crt" in json.dumps(outputs["PublicCaCommand"])


@pytest.mark.synth
def test_smaller_deployments_and_options_change_the_nodes() -> None:
    app = synthesize(
        {
            "object_count": 0,
            "block_storage": False,
            "management_egress": "none",
            "key_pair": "ops",
            "allowed_cidr": "203.0.113.7/32",
            "compute_instance_type": "m8i.xlarge",
            "compute_nested_virtualization": True,
            "compute_count": 2,
        }
    )
    nodes = app.template(app.stacks.nodes)
    instances = nodes.find_resources("AWS::EC2::Instance")
    assert sorted(_tags(r)["openstack-aws:node"] for r in instances.values()) == ["compute1", "compute2", "controller"]
    compute2 = sorted(_primary_ip(e) for e in nodes.find_resources("AWS::EC2::NetworkInterface").values()
                      if _tags(e)["openstack-aws:node"] == "compute2")  # fmt: skip
    assert compute2 == ["172.31.32.22", "172.31.33.23"]
    assert "InstanceIdCompute2" in nodes.to_json()["Outputs"]
    assert all(r["Properties"]["KeyName"] == "ops" for r in instances.values())
    nested = [
        t
        for t in nodes.find_resources("AWS::EC2::LaunchTemplate").values()
        if t["Properties"]["LaunchTemplateData"].get("CpuOptions", {}).get("NestedVirtualization") == "enabled"
    ]
    assert len(nested) == 2  # one per compute node
    # management_egress=none: no NAT gateway; subnet A routes through the controller's eth0, whose check is off.
    app.template(app.stacks.network).resource_count_is("AWS::EC2::NatGateway", 0)
    route = next(iter(nodes.find_resources("AWS::EC2::Route").values()))
    eni = nodes.find_resources("AWS::EC2::NetworkInterface")[route["Properties"]["NetworkInterfaceId"]["Ref"]]
    assert _tags(eni)["openstack-aws:eni"] == "eth0" and eni["Properties"]["SourceDestCheck"] is False
