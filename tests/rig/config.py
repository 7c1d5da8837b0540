"""The rig's topology and paths: one place for every name, address and MAC the rig uses.

Addresses mirror the AWS defaults (DESIGN.md "Nodes and networks"); MACs are derived from the ENI's primary
address so they are stable across runs and readable (02:00:ac:1f:<3rd octet>:<4th octet>). The compute nodes are
COMPUTE_COUNT (environment, 1 when unset or empty) of them, numbered by the CDK app's own rules.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from lambdas.common import secret_keys
from stacks.config import DEFAULT_OS_RELEASE, MAX_COMPUTE_NODES, ConfigError, load_config

REPO = Path(__file__).resolve().parents[2]


def os_release_from(value: str) -> str:
    """OS_RELEASE as the CDK app would take os_release (empty: its default, bookworm)."""
    try:
        return load_config({"os_release": value.strip() or DEFAULT_OS_RELEASE}).os_release
    except ConfigError as error:
        # at import, before any command runs: a plain message, not a traceback
        raise SystemExit(f"OS_RELEASE={value!r}: {error}") from None


#: The nodes' Debian release (the stack's os_release): bookworm (OpenStack Zed) or trixie (2025.1 Epoxy, issue 14).
OS_RELEASE = os_release_from(os.environ.get("OS_RELEASE", ""))


def per_release(path: Path) -> Path:
    """A release other than the default has its own folder beside `path` (`build/rig-trixie`): its own base image,
    nodes, state and reports; only one rig runs at a time."""
    return path if OS_RELEASE == DEFAULT_OS_RELEASE else path.with_name(f"{path.name}-{OS_RELEASE}")


_SHARED = Path(os.environ.get("RIG_BUILD_DIR", REPO / "build" / "rig"))
BUILD = _SHARED if "RIG_BUILD_DIR" in os.environ else per_release(_SHARED)
BASE = BUILD / "base"  # debootstrapped OS_RELEASE, built once
SHOWN_BUILD = BUILD.relative_to(REPO) if BUILD.is_relative_to(REPO) else BUILD  # for messages: build/rig...
BASE_MARKER = BASE / ".rig-base-complete"
NODES_DIR = BUILD / "nodes"  # one root file system per node
DISKS_DIR = BUILD / "disks"  # sparse backing files of the data disks
ARTIFACTS = BUILD / "artifacts"  # ARTIFACT_STORE=dir:..., shared by all nodes
#: The public side's certificate as the public-tls step keeps it in the artifact store (TLS_* in
#: steps/lib/optional/public.sh): the CA the outside proofs trust, the certificate whose key Chromium pins, the key
#: the secret scan looks for.
PUBLIC_TLS_CA = ARTIFACTS / "public-tls-ca.crt"
PUBLIC_TLS_CERT = ARTIFACTS / "public-tls.crt"
PUBLIC_TLS_KEY = ARTIFACTS / "public-tls.key"


def public_tls() -> list[tuple[int, int, str]]:
    """PUBLIC_TLS of steps/lib/optional/public.sh, the public side's one list: (public port, backend port, step)."""
    text = (REPO / "steps" / "lib" / "optional" / "public.sh").read_text()
    match = re.search(r"^PUBLIC_TLS=\((.*?)\)$", text, re.M | re.S)
    if not match:
        raise ValueError("steps/lib/optional/public.sh has no PUBLIC_TLS=(...) list")
    return [(int(a), int(b), step) for a, b, step in re.findall(r'"(\d+) (\d+) ([a-z-]+)"', match.group(1))]
TEST_IMAGE = _SHARED / "test-image.img"  # the guest image, the same whatever the nodes run
STATE = BUILD / "state.json"
ENI_TABLE = BUILD / "eni.json"
SECRETS = BUILD / "secrets.json"
REPORT = BUILD / "report.json"
LOGS = BUILD / "logs"
ACNG_DIR = BUILD / "acng"  # apt-cacher-ng configuration and pid file
CACHE_DIR = Path(os.environ.get("RIG_CACHE_DIR", "/var/cache/apt-cacher-ng"))  # persists across runs and downs

SUBNET_A = "172.31.32.0/24"
SUBNET_B = "172.31.33.0/24"
GW_A = "172.31.32.1"
GW_B = "172.31.33.1"
CACHE_IP = "172.31.32.2"  # the host, on bridge A: the VPC's ".2" service address
CACHE_PORT = 3142
APT_PROXY = f"http://{CACHE_IP}:{CACHE_PORT}"
BRIDGE_A = "rigbrA"
BRIDGE_B = "rigbrB"
NAT_GW_IP = "172.31.33.5"  # the NAT gateway's private address in subnet B (subnet A egress)
NAT_GW_EIP = "203.0.113.5"
ELASTIC_IP = "203.0.113.10"
#: The floating IP pool: secondary private addresses of the controller's provider ENI, each with its own Elastic IP
#: (as the CDK app assigns them: subnet B host 50 onwards, see stacks/config.py FLOATING_HOST_NUMBER).
FLOATING = tuple((f"172.31.33.{n}", f"203.0.113.{n}") for n in (50, 51, 52))  # floating_ips=3, the default
PROBE_IP = "198.51.100.10"  # the "internet": never a real address
#: The VPC resolver (base of 172.31.0.0/16 + 2, as on AWS), held by the VPC router namespace; it answers only
#: PROBE_NAME (the probe address) and forwards nothing off this machine.
VPC_DNS = "172.31.0.2"
PROBE_NAME = "probe.rig.internal"
INTERNET_CIDR = "198.51.100.0/24"
IGW_INTERNET_IP = "198.51.100.1"
# The emulated VPC's namespaces; the prefix keeps them apart from anything else on the machine.
NS_ROUTER = "rig-vpcrouter"
NS_IGW = "rig-igw"
NS_INTERNET = "rig-internet"
NFT_TABLE = "rigvpc"  # bridge family: the ENI filters
NFT_HOST_TABLE = "righost"  # inet family on the host: nothing from the rig bridges is forwarded off the machine

# The stack's list: the rig's secret has the keys Secrets Manager's has.
SECRET_KEYS = secret_keys.SECRET_KEYS

# Paths inside the nodes (steps/README.md)
NODE_CONF_DIR = "/etc/openstack-aws"
NODE_ARTIFACTS = "/var/lib/openstack-aws/artifacts"
NODE_TLS_KEY = f"{NODE_CONF_DIR}/tls/public-tls.key"  # TLS_DIR/TLS_KEY on the controller
NODE_TEST_IMAGE = "/var/lib/openstack-aws/test-image.img"


def mac_for(ip: str) -> str:
    octets = [int(o) for o in ip.split(".")]
    return "02:00:{:02x}:{:02x}:{:02x}:{:02x}".format(*octets)


def eni_id(node: str, index: int) -> str:
    return "eni-" + hashlib.sha256(f"{node}:{index}".encode()).hexdigest()[:17]


@dataclass(frozen=True)
class EniSpec:
    index: int
    subnet: str  # "A" or "B"
    ip: str  # the ENI's primary private address
    configured: bool = True  # False: the OS does not configure the address (provider ENI)
    elastic_ip: str = ""
    secondary: tuple[tuple[str, str], ...] = ()  # (private address, its Elastic IP): the floating IP pool

    @property
    def addresses(self) -> list[str]:
        return [self.ip, *(private for private, _ in self.secondary)]

    @property
    def elastic_ips(self) -> dict[str, str]:
        """Private address -> Elastic IP, as EC2 reports each address's Association."""
        pairs = {self.ip: self.elastic_ip} if self.elastic_ip else {}
        return pairs | dict(self.secondary)

    @property
    def mac(self) -> str:
        return mac_for(self.ip)

    @property
    def bridge(self) -> str:
        return BRIDGE_A if self.subnet == "A" else BRIDGE_B

    @property
    def gateway(self) -> str:
        return GW_A if self.subnet == "A" else GW_B

    @property
    def cidr(self) -> str:
        return SUBNET_A if self.subnet == "A" else SUBNET_B


@dataclass(frozen=True)
class NodeSpec:
    name: str
    role: str
    short: str  # used in host-side interface names (15 characters at most)
    enis: tuple[EniSpec, ...]
    disks_gib: tuple[int, ...] = field(default_factory=tuple)

    @property
    def mgmt_ip(self) -> str:
        return self.enis[0].ip

    def host_if(self, index: int) -> str:
        return f"rv-{self.short}-{index}"  # host end of the veth, a port of the subnet bridge

    def cont_if(self, index: int) -> str:
        return f"rc-{self.short}-{index}"  # container end until the node renames it eth<index>


CONTROLLER = NodeSpec("controller", "controller", "ctl", (
    EniSpec(0, "A", "172.31.32.11"),
    EniSpec(1, "B", "172.31.33.12", configured=False, secondary=FLOATING),
    EniSpec(2, "B", "172.31.33.11", elastic_ip=ELASTIC_IP),
))
STORAGE: tuple[NodeSpec, ...] = (
    NodeSpec("block1", "block", "blk1", (EniSpec(0, "A", "172.31.32.31"),), (40,)),
    NodeSpec("object1", "object", "obj1", (EniSpec(0, "A", "172.31.32.41"),), (20, 20)),
    NodeSpec("object2", "object", "obj2", (EniSpec(0, "A", "172.31.32.42"),), (20, 20)),
)


def compute_nodes(count: int) -> tuple[NodeSpec, ...]:
    """compute1..computeN at the addresses a deploy with compute_count=N gives them (stacks/config.py numbers them),
    so the rendered userdata, the IMDS trees and the ENI table agree with each other as they do on AWS."""
    cdk = load_config({"subnet_a_cidr": SUBNET_A, "subnet_b_cidr": SUBNET_B, "compute_count": count})
    return tuple(
        NodeSpec(name, "compute", "cmp" + name.removeprefix("compute"), (
            EniSpec(0, "A", cdk.management_ip(name)),
            EniSpec(1, "B", cdk.provider_eni_ip(name), configured=False),
        ))
        for name in cdk.node_names("compute")
    )


def topology(compute_count: int) -> tuple[NodeSpec, ...]:
    """Every node, in the CDK app's order (its Config.all_nodes)."""
    return (CONTROLLER, *compute_nodes(compute_count), *STORAGE)


def compute_count_from(value: str) -> int:
    """COMPUTE_COUNT as the CDK app would take compute_count (empty: 1)."""
    try:
        return load_config({"compute_count": value.strip() or 1}).compute_count
    except ConfigError as error:
        # at import, before any command runs: a plain message, not a traceback
        raise SystemExit(f"COMPUTE_COUNT={value!r}: {error}") from None


COMPUTE_COUNT = compute_count_from(os.environ.get("COMPUTE_COUNT", ""))
NODES: tuple[NodeSpec, ...] = topology(COMPUTE_COUNT)


def node(name: str) -> NodeSpec:
    for spec in NODES:
        if spec.name == name:
            return spec
    raise KeyError(f"unknown node {name!r}; nodes: {', '.join(n.name for n in NODES)}")


def nodes_for_role(role: str) -> list[NodeSpec]:
    return [n for n in NODES if n.role == role]


def any_node(name: str) -> NodeSpec | None:
    """A node of this or any other COMPUTE_COUNT (what an earlier `up` may have left running); None: no rig node."""
    return next((spec for spec in topology(MAX_COMPUTE_NODES) if spec.name == name), None)
