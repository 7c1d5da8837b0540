"""What the boot proof's guest is launched with, from the CDK app's config: the controller's ENIs (EC2-like MACs,
the stack's addresses), its multipart userdata exactly as the nodes stack builds it, the DHCP leases the VPC
would hand out, and SMBIOS fields that make cloud-init identify EC2."""

from __future__ import annotations

import hashlib
import ipaddress
from dataclasses import dataclass

from stacks import userdata
from stacks.config import Config
from stacks.constructs.node_instance import _multipart
from tests.imds.metadata import Eni, Instance

NODE = "controller"
REGION = "eu-west-1"
INSTANCE_ID = "i-0b00750f00c0a1e01"
ELASTIC_IP = "203.0.113.10"
SECRET_ARN = f"arn:aws:secretsmanager:{REGION}:123456789012:secret:openstack-aws-boot-proof"
BUCKET = "openstack-aws-boot-proof"
#: The test network's service address (as the rig's host on subnet A): apt relay and the SSM agent stand-in.
SERVICE_IP = "172.31.32.2"
AGENT_PORT = 8080
AGENT_URL = f"http://{SERVICE_IP}:{AGENT_PORT}/amazon-ssm-agent.deb"
APT_PROXY = f"http://{SERVICE_IP}:3142"


def ec2_mac(address: str) -> str:
    """A stable MAC shaped like EC2's (locally administered unicast, 0a:...), derived from the ENI's address."""
    tail = hashlib.sha256(address.encode()).digest()[:5]
    return "0a:" + ":".join(f"{b:02x}" for b in tail)


def controller_enis(config: Config) -> tuple[Eni, ...]:
    """The controller's three ENIs, device index = role (0 management, 1 provider + floating pool, 2 public)."""
    a, b, vpc = str(config.subnet_a_cidr), str(config.subnet_b_cidr), str(config.vpc_cidr)
    provider = (config.provider_eni_ip(NODE), *config.floating_ip_addresses)
    return (
        Eni(ec2_mac(config.management_ip(NODE)), 0, (config.management_ip(NODE),), a, vpc, subnet_id="subnet-a"),
        Eni(ec2_mac(provider[0]), 1, provider, b, vpc, subnet_id="subnet-b"),
        Eni(ec2_mac(config.public_ip), 2, (config.public_ip,), b, vpc, subnet_id="subnet-b"),
    )


def controller_instance(config: Config) -> Instance:
    script = userdata.render(config, NODE, "controller", region=REGION, elastic_ip=ELASTIC_IP,
                             secret_arn=SECRET_ARN, bucket=BUCKET, ssm_agent_url=AGENT_URL)
    enis = controller_enis(config)
    hostname = f"ip-{enis[0].local_ipv4s[0].replace('.', '-')}.{REGION}.compute.internal"
    return Instance(instance_id=INSTANCE_ID, region=REGION, hostname=hostname, enis=enis,
                    instance_type=config.controller.instance_type, user_data=_multipart(script))


@dataclass(frozen=True)
class Lease:
    mac: str
    address: str
    subnet: str


def dhcp_leases(instance: Instance) -> list[Lease]:
    """The VPC's DHCP answers every ENI's MAC with its primary private address."""
    return [Lease(e.mac, e.local_ipv4s[0], e.subnet_cidr) for e in instance.enis]


def smbios_system(instance: Instance) -> str:
    """QEMU `-smbios type=1,...`: cloud-init's ds-identify and Ec2 datasource take a system UUID starting with
    "ec2" that equals the serial, or the vendor "Amazon EC2", as EC2 (Nitro reports both)."""
    uuid = "ec2" + hashlib.sha256(instance.instance_id.encode()).hexdigest()[:29]
    uuid = f"{uuid[:8]}-{uuid[8:12]}-{uuid[12:16]}-{uuid[16:20]}-{uuid[20:32]}"
    return f"type=1,manufacturer=Amazon EC2,product={instance.instance_type},uuid={uuid},serial={uuid}"


def nic_order(instance: Instance, permuted: bool) -> list[Eni]:
    """The ENIs in the guest's PCI slot order: as attached, or rotated so no ENI keeps its slot."""
    enis = sorted(instance.enis, key=lambda e: e.device_number)
    return enis[1:] + enis[:1] if permuted else enis


def gateway(cidr: str) -> str:
    """The VPC router's address in a subnet (its first host)."""
    return str(ipaddress.ip_network(cidr)[1])
