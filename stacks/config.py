"""The user's configuration: CDK context (defaults in cdk.json, `-c key=value` overrides) as one frozen object.

Every bad value fails synth with one `ConfigError` naming the key, the value and the accepted form, so a typo
costs seconds at `cdk synth`, not an hour into a deploy.
"""

from __future__ import annotations

import difflib
import ipaddress
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from stacks.instance_types import eni_limit, ipv4_per_eni, supports_nested_virtualization

ROLES = ("controller", "compute", "block", "object")
#: ENIs each role needs: eth0 management, eth1 provider, eth2 public.
ENIS_NEEDED = {"controller": 3, "compute": 2, "block": 1, "object": 1}
#: Host numbers inside the subnets; fixed so that userdata can write /etc/hosts before anything else runs.
HOST_NUMBER = {"controller": 11, "compute": 21, "block": 31, "object": 41}
PUBLIC_HOST_NUMBER = 11  # controller eth2 in subnet B
PROVIDER_HOST_NUMBER = {"controller": 12, "compute": 22}  # eth1 ENIs' primary addresses in subnet B
MAX_OBJECT_NODES = 8
#: compute1..computeN take management hosts 21.. (block starts at 31) and provider hosts 22.. (below the pool).
MAX_COMPUTE_NODES = HOST_NUMBER["block"] - HOST_NUMBER["compute"]
#: The floating IP pool: secondary addresses of the controller's provider ENI (eth1) from this host number on,
#: each with its own Elastic IP. Fits the smallest subnet B allowed (/26).
FLOATING_HOST_NUMBER = 50
MAX_FLOATING_IPS = 8
#: The NAT gateway's address in subnet B, fixed so that it can never take one of the addresses above first.
NAT_GATEWAY_HOST_NUMBER = 5
#: AWS reserves the first four addresses of every subnet (network, VPC router, DNS, future use) and the last: no ENI
#: ever holds them. The provider network's DHCP port takes subnet B's .3 (the network-fix step computes it from
#: PROVIDER_CIDR): only the backhaul between the nodes carries it, and no address above can ever be it.
AWS_RESERVED_HOST_NUMBERS = (0, 1, 2, 3)
PROVIDER_DHCP_HOST_NUMBER = 3
#: AWS's default quota of Elastic IPs per region (Service Quotas: EC2 "EC2-VPC Elastic IPs", code L-0263D0A3).
DEFAULT_EIP_QUOTA = 5


@dataclass(frozen=True)
class OsRelease:
    """A Debian release the nodes can run (config `os_release`) and the OpenStack release it ships."""

    debian: int
    openstack: str
    #: The public SSM parameter naming the release's current official AMI; the launch AMI is read from it once,
    #: when the nodes are created (stacks/constructs/launch_image.py).
    ami_parameter: str


#: bookworm is what the steps install today; trixie is experimental while the steps learn it (issue 14,
#: docs/epoxy-trixie-plan.md).
OS_RELEASES: dict[str, OsRelease] = {
    "bookworm": OsRelease(12, "Zed", "/aws/service/debian/release/12/latest/amd64"),
    # The path is by analogy with 12's; it was not checked against AWS from here (docs/epoxy-trixie-plan.md, U9).
    "trixie": OsRelease(13, "2025.1 Epoxy, experimental", "/aws/service/debian/release/13/latest/amd64"),
}
DEFAULT_OS_RELEASE = "bookworm"

DEFAULTS: dict[str, Any] = {
    "prefix": "openstack-aws",
    "availability_zone": "",
    "controller_instance_type": "t3.xlarge",
    "controller_root_gib": 40,
    "compute_instance_type": "t3.xlarge",
    "compute_root_gib": 40,
    "compute_nested_virtualization": False,
    "compute_count": 1,
    "block_storage": True,
    "block_instance_type": "t3.medium",
    "block_root_gib": 8,
    "block_data_gib": 40,
    "object_count": 2,
    "object_instance_type": "t3.medium",
    "object_root_gib": 8,
    "object_data_gib": 20,
    "vpc_cidr": "172.31.0.0/16",
    "subnet_a_cidr": "172.31.32.0/24",
    "subnet_b_cidr": "172.31.33.0/24",
    "allowed_cidr": "",
    "allow_world": False,
    "management_egress": "nat-gateway",
    "rebuild_schedule": "cron(0 3 * * ? *)",
    "notification_email": "",
    "key_pair": "",
    "probe_address": "1.1.1.1",
    "probe_name": "",
    "floating_ips": 3,
    "ami_id": "",
    "eip_quota": DEFAULT_EIP_QUOTA,
    "os_release": DEFAULT_OS_RELEASE,
}
#: Context keys that belong to the CDK itself, not to us.
_FOREIGN_KEY = re.compile(r"^(@|aws:|aws-cdk:|cdk|acknowledged-issue-numbers$)")
#: Written by `make deploy` into cdk.context.json, not by the user (stacks/deployed_identity.py).
DEPLOYED_IDENTITY_KEY = "deployed_identity"


class ConfigError(ValueError):
    """A configuration value that cannot be used; the message says which key, what was given and what works."""

    def __init__(self, key: str, value: object, accepted: str) -> None:
        super().__init__(f"config '{key}' = {value!r} is invalid: expected {accepted}")
        self.key = key


@dataclass(frozen=True)
class RoleConfig:
    role: str
    instance_type: str
    root_gib: int
    data_disks: int
    data_gib: int


@dataclass(frozen=True)
class Config:
    prefix: str
    availability_zone: str
    controller: RoleConfig
    compute: RoleConfig
    block: RoleConfig | None
    object: RoleConfig | None
    object_count: int
    compute_count: int
    compute_nested_virtualization: bool
    vpc_cidr: ipaddress.IPv4Network
    subnet_a_cidr: ipaddress.IPv4Network
    subnet_b_cidr: ipaddress.IPv4Network
    allowed_cidr: ipaddress.IPv4Network | None
    management_egress: str
    rebuild_schedule: str | None
    notification_email: str | None
    key_pair: str | None
    probe_address: str
    floating_ips: int
    #: The AMI a root volume replacement installs; None: the launch AMI (stacks/constructs/launch_image.py).
    ami_id: str | None = None
    eip_quota: int = DEFAULT_EIP_QUOTA
    #: The name verify's instance resolves through the VPC resolver; None: the region's S3 endpoint name.
    probe_name: str | None = None
    #: The Debian release of every node (a key of OS_RELEASES); userdata checks the AMI against it.
    os_release: str = DEFAULT_OS_RELEASE

    def __post_init__(self) -> None:
        # CloudFormation would fail only at the last Elastic IP, mid-deploy; synth can say it up front.
        needed = self.elastic_ips
        if sum(needed.values()) > self.eip_quota:
            count = ", ".join(f"{n} {what}" for what, n in needed.items() if n)
            raise ConfigError(
                "eip_quota", self.eip_quota,
                f"at least the {sum(needed.values())} Elastic IPs this deployment allocates ({count}), and Elastic "
                "IPs the region already holds count too: lower floating_ips (or management_egress=none saves the "
                "NAT gateway's), or request a higher quota (Service Quotas > Amazon EC2 > EC2-VPC Elastic IPs, "
                "code L-0263D0A3) and set eip_quota to it",
            )  # fmt: skip

    @property
    def ami_parameter(self) -> str:
        """The public SSM parameter naming the release's current Debian AMI (read once, at the nodes' creation)."""
        return OS_RELEASES[self.os_release].ami_parameter

    @property
    def elastic_ips(self) -> dict[str, int]:
        """The Elastic IPs the stacks allocate, by what holds them."""
        return {
            "NAT gateway": int(self.management_egress == "nat-gateway"),
            "controller": 1,
            "floating IPs": self.floating_ips,
        }

    @property
    def roles(self) -> dict[str, RoleConfig]:
        """The roles this deployment has, in install order."""
        found = {"controller": self.controller, "compute": self.compute, "block": self.block, "object": self.object}
        return {name: role for name, role in found.items() if role is not None}

    def node_names(self, role: str) -> list[str]:
        if role == "controller":
            return ["controller"]
        if role == "object":
            return [f"object{i}" for i in range(1, self.object_count + 1)]
        if role == "compute":
            return [f"compute{i}" for i in range(1, self.compute_count + 1)]
        return [f"{role}1"] if role in self.roles else []

    def management_ip(self, node: str) -> str:
        role, index = _role_and_index(node)
        return str(self.subnet_a_cidr.network_address + HOST_NUMBER[role] + index)

    def provider_eni_ip(self, node: str) -> str:
        role, index = _role_and_index(node)
        return str(self.subnet_b_cidr.network_address + PROVIDER_HOST_NUMBER[role] + index)

    @property
    def public_ip(self) -> str:
        """The private address of the controller's public ENI (eth2), which the Elastic IP maps to."""
        return str(self.subnet_b_cidr.network_address + PUBLIC_HOST_NUMBER)

    @property
    def floating_ip_addresses(self) -> list[str]:
        """The floating IP pool: private addresses in subnet B, secondary addresses of the controller's eth1."""
        first = self.subnet_b_cidr.network_address + FLOATING_HOST_NUMBER
        return [str(first + i) for i in range(self.floating_ips)]

    @property
    def provider_dhcp_ip(self) -> str:
        """The provider network's DHCP port: an address AWS reserves in subnet B, outside every plan above."""
        return str(self.subnet_b_cidr.network_address + PROVIDER_DHCP_HOST_NUMBER)

    @property
    def nat_gateway_ip(self) -> str:
        return str(self.subnet_b_cidr.network_address + NAT_GATEWAY_HOST_NUMBER)

    def gateway(self, subnet: ipaddress.IPv4Network) -> str:
        return str(subnet.network_address + 1)

    @property
    def all_nodes(self) -> list[str]:
        return [node for role in self.roles for node in self.node_names(role)]


def _role_and_index(node: str) -> tuple[str, int]:
    """'compute2' -> ('compute', 1); 'controller' -> ('controller', 0)."""
    role = node.rstrip("0123456789")
    return role, int(node[len(role) :] or 1) - 1


# --- parsing helpers: each returns the typed value or raises ConfigError naming the key -----------------------


def _bool(key: str, value: object) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "yes", "1", "on"):
        return True
    if text in ("false", "no", "0", "off", ""):
        return False
    raise ConfigError(key, value, "true or false")


def _int(key: str, value: object, low: int, high: int) -> int:
    try:
        number = int(str(value).strip())
    except ValueError:
        number = None
    if number is None or isinstance(value, bool) or not low <= number <= high:
        raise ConfigError(key, value, f"a whole number from {low} to {high}")
    return number


def _network(key: str, value: object, min_prefix: int = 0, max_prefix: int = 32) -> ipaddress.IPv4Network:
    accepted = f"an IPv4 CIDR like 172.31.32.0/24 with a prefix from /{min_prefix} to /{max_prefix}"
    try:
        network = ipaddress.IPv4Network(str(value).strip(), strict=True)
    except ValueError:
        raise ConfigError(key, value, accepted) from None
    if not min_prefix <= network.prefixlen <= max_prefix:
        raise ConfigError(key, value, accepted)
    return network


def _choice(key: str, value: object, choices: tuple[str, ...]) -> str:
    text = str(value).strip()
    if text not in choices:
        raise ConfigError(key, value, "one of " + ", ".join(choices))
    return text


def _instance_type(key: str, value: object, role: str) -> str:
    text = str(value).strip()
    limit = eni_limit(text)
    if limit is None:
        raise ConfigError(key, value, "an x86_64 EC2 instance type of a known family (e.g. t3.xlarge, m5.xlarge)")
    if limit < ENIS_NEEDED[role]:
        raise ConfigError(
            key, value, f"a type that takes at least {ENIS_NEEDED[role]} ENIs for the {role} ({text} takes {limit})"
        )
    return text


_CRON_FIELD = re.compile(r"^[0-9A-Za-z*?/,#L W-]+$")


def _schedule(key: str, value: object) -> str | None:
    text = str(value).strip()
    if text.lower() in ("off", "", "none"):
        return None
    accepted = (
        "an EventBridge cron expression like cron(0 3 * * ? *) (6 fields, '?' in day-of-month or day-of-week), or off"
    )
    match = re.fullmatch(r"cron\((.*)\)", text)
    fields = match.group(1).split() if match else []
    if len(fields) != 6 or not all(_CRON_FIELD.match(f) for f in fields) or "?" not in (fields[2], fields[4]):
        raise ConfigError(key, value, accepted)
    minute, hour = fields[0], fields[1]
    for field, high in ((minute, 59), (hour, 23)):
        numbers = [int(n) for n in re.findall(r"\d+", field)]
        if any(n > high for n in numbers):
            raise ConfigError(key, value, accepted)
    return text


def _optional_text(key: str, value: object, pattern: str, accepted: str) -> str | None:
    text = str(value or "").strip()
    if not text:
        return None
    if not re.fullmatch(pattern, text):
        raise ConfigError(key, value, accepted)
    return text


# --- the whole configuration ----------------------------------------------------------------------------------


def _check_unknown(context: Mapping[str, Any]) -> None:
    for key in context:
        if key in DEFAULTS or key == DEPLOYED_IDENTITY_KEY or _FOREIGN_KEY.match(key):
            continue
        nearest = difflib.get_close_matches(key, DEFAULTS, n=1, cutoff=0.6)
        hint = f"did you mean '{nearest[0]}'?" if nearest else "see the README's configuration table"
        raise ConfigError(key, context[key], f"a known key ({hint})")


def _role(values: Callable[[str], Any], role: str, data_disks: int) -> RoleConfig:
    data_gib = _int(f"{role}_data_gib", values(f"{role}_data_gib"), 1, 16384) if data_disks else 0
    return RoleConfig(
        role=role,
        instance_type=_instance_type(f"{role}_instance_type", values(f"{role}_instance_type"), role),
        root_gib=_int(f"{role}_root_gib", values(f"{role}_root_gib"), 8, 16384),
        data_disks=data_disks,
        data_gib=data_gib,
    )


def load_config(context: Mapping[str, Any]) -> Config:
    """Build the Config from CDK context (every key optional; unknown keys are errors)."""
    _check_unknown(context)

    def values(key: str) -> Any:
        return context.get(key, DEFAULTS[key])

    prefix = str(values("prefix")).strip()
    if not re.fullmatch(r"[a-z][a-z0-9-]{1,30}[a-z0-9]", prefix):
        raise ConfigError("prefix", prefix, "3-32 lower-case letters, digits and '-', starting with a letter")
    zone = _optional_text(
        "availability_zone",
        values("availability_zone"),
        r"[a-z]{2}(-[a-z]+)+-\d[a-z]",
        "a zone like eu-west-1a, or empty",
    )

    vpc = _network("vpc_cidr", values("vpc_cidr"), 16, 24)
    subnet_a = _network("subnet_a_cidr", values("subnet_a_cidr"), 16, 26)
    subnet_b = _network("subnet_b_cidr", values("subnet_b_cidr"), 16, 26)
    for key, subnet in (("subnet_a_cidr", subnet_a), ("subnet_b_cidr", subnet_b)):
        if not subnet.subnet_of(vpc):
            raise ConfigError(key, str(subnet), f"a subnet inside vpc_cidr {vpc}")
    if subnet_a.overlaps(subnet_b):
        raise ConfigError("subnet_b_cidr", str(subnet_b), f"a subnet that does not overlap subnet_a_cidr {subnet_a}")

    allow_world = _bool("allow_world", values("allow_world"))
    allowed_text = str(values("allowed_cidr") or "").strip()
    allowed = _network("allowed_cidr", allowed_text) if allowed_text else None
    if allowed is not None and allowed.prefixlen == 0 and not allow_world:
        raise ConfigError(
            "allowed_cidr",
            allowed_text,
            "a narrower CIDR (e.g. your.ip/32), or 0.0.0.0/0 together with allow_world=true",
        )

    object_count = _int("object_count", values("object_count"), 0, MAX_OBJECT_NODES)
    block_on = _bool("block_storage", values("block_storage"))
    compute = _role(values, "compute", 0)
    nested = _bool("compute_nested_virtualization", values("compute_nested_virtualization"))
    if nested and not supports_nested_virtualization(compute.instance_type):
        raise ConfigError(
            "compute_nested_virtualization",
            True,
            f"false for {compute.instance_type}: nested virtualization needs a C8i, M8i or R8i compute_instance_type",
        )

    controller = _role(values, "controller", 0)
    return Config(
        prefix=prefix,
        availability_zone=zone or "",
        controller=controller,
        compute=compute,
        block=_role(values, "block", 1) if block_on else None,
        object=_role(values, "object", 2) if object_count else None,
        object_count=object_count,
        compute_count=_int("compute_count", values("compute_count"), 1, MAX_COMPUTE_NODES),
        compute_nested_virtualization=nested,
        vpc_cidr=vpc,
        subnet_a_cidr=subnet_a,
        subnet_b_cidr=subnet_b,
        allowed_cidr=allowed,
        management_egress=_choice("management_egress", values("management_egress"), ("nat-gateway", "none")),
        rebuild_schedule=_schedule("rebuild_schedule", values("rebuild_schedule")),
        notification_email=_optional_text(
            "notification_email",
            values("notification_email"),
            r"[^@\s]+@[^@\s]+\.[^@\s]+",
            "an e-mail address, or empty",
        ),
        key_pair=_optional_text(
            "key_pair", values("key_pair"), r"[\x20-\x7e]{1,255}", "an EC2 key pair name, or empty"
        ),
        probe_address=_probe(values("probe_address")),
        probe_name=_optional_text(
            "probe_name", values("probe_name"), r"(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}",
            "a DNS name the VPC resolver answers, e.g. example.com, or '' (the region's S3 endpoint name)",
        ),
        floating_ips=_floating_ips(values("floating_ips"), controller.instance_type),
        eip_quota=_int("eip_quota", values("eip_quota"), 1, 100_000),
        ami_id=_optional_text(
            "ami_id", values("ami_id"), r"ami-[0-9a-f]{8}([0-9a-f]{9})?", "an AMI ID like ami-0123456789abcdef0, or ''"
        ),
        os_release=_os_release(values("os_release")),
    )


def _os_release(value: object) -> str:
    text = str(value).strip()
    if text not in OS_RELEASES:
        releases = (f"{name} (Debian {r.debian}, OpenStack {r.openstack})" for name, r in OS_RELEASES.items())
        raise ConfigError("os_release", value, "one of " + ", ".join(releases))
    return text


def _floating_ips(value: object, controller_type: str) -> int:
    """Each floating IP is a secondary address of the controller's eth1, which also holds the router's address."""
    count = _int("floating_ips", value, 0, MAX_FLOATING_IPS)
    per_eni = ipv4_per_eni(controller_type) or 2
    if count > per_eni - 1:
        raise ConfigError(
            "floating_ips",
            count,
            f"at most {per_eni - 1} with controller_instance_type {controller_type} (an ENI of it takes {per_eni} "
            "IPv4 addresses, one is the router's), or a larger controller_instance_type",
        )
    return count


def _probe(value: object) -> str:
    """The internet address the network fix and verify ping from the router (it must answer ICMP echo)."""
    try:
        address = ipaddress.IPv4Address(str(value).strip())
    except ValueError:
        address = None
    if address is None or not address.is_global:
        raise ConfigError("probe_address", value, "a public IPv4 address that answers ping, e.g. 1.1.1.1")
    return str(address)
