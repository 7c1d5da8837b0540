"""The rig's nodes as EC2 would launch them: the stacks' Config for the rig's topology, each node's multipart
userdata rendered by stacks/userdata.py exactly as for EC2, the IMDSv2 tree the node is served, and the DHCP
leases the VPC hands out. Only what EC2 gets from elsewhere differs (the SSM agent's URL: a stand-in package on
the rig's fake internet)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any

from stacks import userdata
from stacks.config import Config, load_config
from tests.boot import agent_standin
from tests.imds.metadata import Eni, Instance, document

from . import config
from .config import NodeSpec

REGION = "us-east-1"
PREFIX = "osaws-rig"
SECRET_ARN = f"arn:aws:secretsmanager:{REGION}:123456789012:secret:{PREFIX}-secrets"
BUCKET = f"{PREFIX}-artifacts"
AGENT_DEB = "amazon-ssm-agent.deb"
#: Served by the fake internet's HTTP server: the node reaches it through the NAT gateway, as it reaches S3.
AGENT_URL = f"http://{config.PROBE_IP}/{AGENT_DEB}"
#: Where the stand-in agent records each start (tests/boot/agent_standin.py); the SSM stand-in reads it.
AGENT_LOG = "/var/log/amazon-ssm-agent-standin.log"
#: Nitro names NICs by PCI slot (ens5, ens6, ...) in no promised order: each node gets its ENIs in a rotated
#: order, so only the userdata's pinning by MAC can give the steps the right interface.
FIRST_SLOT = 5


def stack_config() -> Config:
    """The CDK app's Config for the rig's topology (tests/unit/test_rig_instances.py proves they agree)."""
    cfg = load_config({
        "prefix": PREFIX,
        "subnet_a_cidr": config.SUBNET_A,
        "subnet_b_cidr": config.SUBNET_B,
        "compute_count": len(config.nodes_for_role("compute")),
        "object_count": len(config.nodes_for_role("object")),
        "block_storage": bool(config.nodes_for_role("block")),
        "floating_ips": len(config.FLOATING),
        "os_release": config.OS_RELEASE,
    })
    # The rig's probe is on a documentation range, which a user's config rightly refuses; its name is the one the
    # rig's VPC resolver answers.
    return dataclasses.replace(cfg, probe_address=config.PROBE_IP, probe_name=config.PROBE_NAME)


def instance_id(spec: NodeSpec) -> str:
    return "i-" + hashlib.sha256(spec.name.encode()).hexdigest()[:17]


def user_data(spec: NodeSpec, cfg: Config | None = None) -> str:
    """The multipart the EC2 instance would get (reboot cloud-config + the rendered node.sh)."""
    # Imported here: it pulls in the CDK, which `status`/`exec` (plain python3) have no need of.
    from stacks.constructs.node_instance import _multipart

    script = userdata.render(cfg or stack_config(), spec.name, spec.role, region=REGION,
                             elastic_ip=config.ELASTIC_IP, secret_arn=SECRET_ARN, bucket=BUCKET,
                             ssm_agent_url=AGENT_URL)
    return _multipart(script)


def instance(spec: NodeSpec, cfg: Config | None = None) -> Instance:
    enis = tuple(Eni(e.mac, e.index, tuple(e.addresses), e.cidr, interface_id=config.eni_id(spec.name, e.index),
                     subnet_id=f"subnet-rig{e.subnet.lower()}") for e in spec.enis)
    return Instance(instance_id=instance_id(spec), region=REGION, hostname=f"ip-{spec.mgmt_ip.replace('.', '-')}.ec2.internal",
                    enis=enis, instance_type="t3.xlarge" if len(spec.enis) > 1 else "t3.medium",
                    user_data=user_data(spec, cfg))


def imds_trees() -> dict[str, Any]:
    """Client address -> that node's tree: EC2 answers an instance on whichever of its addresses it asks from."""
    cfg = stack_config()
    trees: dict[str, Any] = {}
    for spec in config.NODES:
        tree = document(instance(spec, cfg))
        trees.update({address: tree for eni in spec.enis for address in eni.addresses})
    return trees


def nic_names(spec: NodeSpec) -> dict[int, str]:
    """Device index -> the name the kernel gives that NIC before userdata pins names (rotated by one slot)."""
    count = len(spec.enis)
    return {e.index: f"ens{FIRST_SLOT + (e.index + 1) % count}" for e in spec.enis}


def disk_serial(spec: NodeSpec, index: int) -> str:
    """An EBS-like volume id as NVMe serial (vol + 17 hex digits), stable per node and disk."""
    return "vol" + hashlib.sha256(f"{spec.name}:disk{index}".encode()).hexdigest()[:17]


def write_imds_data(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(imds_trees()))
    return path


def build_agent(www: Path) -> Path:
    return agent_standin.build(www / AGENT_DEB)
