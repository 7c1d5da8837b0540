"""Renders `userdata/node.sh` for one node: the node's variables first, then the shared script.

Values that are deploy-time tokens (Elastic IP, secret ARN, bucket) stay tokens; CloudFormation joins them in.
"""

from __future__ import annotations

import shlex
from pathlib import Path

from stacks.config import DEFAULT_OS_RELEASE, OS_RELEASES, Config

USERDATA_DIR = Path(__file__).resolve().parent.parent / "userdata"


def _quote(value: str) -> str:
    # Tokens must stay intact for CloudFormation to substitute them, so they are double-quoted, not shlex-quoted.
    return f'"{value}"' if "${Token[" in value else shlex.quote(value)


def _package_list(path: Path) -> list[str]:
    lines = path.read_text().splitlines() if path.exists() else []
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def role_packages(role: str, release: str = DEFAULT_OS_RELEASE) -> list[str]:
    """What userdata prefetches for a role on a Debian release: the role's list (`packages/<role>.txt`, the same on
    every release) plus the release's additions (`packages/<release>/<role>.txt`, if any)."""
    if release not in OS_RELEASES:
        raise ValueError(f"unknown Debian release {release!r}: one of {', '.join(OS_RELEASES)}")
    packages = USERDATA_DIR / "packages"
    common = _package_list(packages / f"{role}.txt")
    return common + [p for p in _package_list(packages / release / f"{role}.txt") if p not in common]


def hosts_block(config: Config) -> str:
    """The /etc/hosts lines every node gets, as one string with literal \\n separators (printf %b expands them)."""
    return "".join(f"{config.management_ip(node)} {node}\\n" for node in config.all_nodes)


def render(
    config: Config, node: str, role: str, *, region: str, elastic_ip: str, secret_arn: str, bucket: str,
    ssm_agent_url: str | None = None,
) -> str:
    """The complete userdata script of one node.

    `ssm_agent_url`: where the SSM agent .deb comes from; None (EC2) is the region's official bucket, which the
    script derives from REGION. The QEMU boot proof passes its stand-in's URL on the test network.
    """

    def ips(role_name: str) -> str:
        return " ".join(config.management_ip(n) for n in config.node_names(role_name))

    variables = {
        "NODE_NAME": node,
        "ROLE": role,
        "PREFIX": config.prefix,
        "REGION": region,
        "CONTROLLER_IP": config.management_ip("controller"),
        "ELASTIC_IP": elastic_ip,
        "HOSTS_BLOCK": hosts_block(config),
        "COMPUTE_IPS": ips("compute"),
        "BLOCK_IPS": ips("block"),
        "OBJECT_IPS": ips("object"),
        "PROVIDER_CIDR": str(config.subnet_b_cidr),
        "PROVIDER_GW": config.gateway(config.subnet_b_cidr),
        "SECRET_ARN": secret_arn,
        "ARTIFACT_BUCKET": bucket,
        "PACKAGES": " ".join(role_packages(role, config.os_release)),
        "PROBE_IP": config.probe_address,
        # the VPC's resolver (Route 53 Resolver): base of the VPC range + 2, reachable from every subnet
        "VPC_DNS": str(config.vpc_cidr.network_address + 2),
        "PROBE_NAME": config.probe_name or "",
        "NAT_FOR_SUBNET_A": "true" if config.management_egress == "none" else "false",
        # The Debian release (config os_release): the script checks the AMI's, and cluster.env tells the steps.
        "OS_RELEASE": config.os_release,
    }
    if ssm_agent_url:
        variables["SSM_AGENT_URL"] = ssm_agent_url
    script = (USERDATA_DIR / "node.sh").read_text()
    shebang, _, body = script.partition("\n")
    header = "\n".join(f"{key}={_quote(value)}" for key, value in variables.items())
    return f"{shebang}\n{header}\n{body}"
