"""What a deployed cloud cannot change without losing nodes, recorded at deploy and guarded on every synth.

CloudFormation replaces an instance when its subnet, address, key pair, disks or launch template change, and deletes
it when the node leaves the config. A replaced or deleted node is a lost node here: the cloud lives on its disks,
and a replacement cannot even attach the ENIs its predecessor holds. So `make deploy` records these values in
cdk.context.json (key `deployed_identity`, which the CDK CLI passes back as context on every run), and the app
refuses a config that differs, saying what to do instead.

The Debian release (config `os_release`) is recorded too, with the release the nodes launched from: the launch AMI
is pinned at creation (stacks/constructs/launch_image.py), so a release switch reaches the nodes only as an AMI
upgrade does, by root volume replacement from `ami_id` (the rebuild). A release other than the launch release is
therefore refused unless `ami_id` is set; otherwise the nodes would keep the old release while their userdata
names the new one, and every node would stop at its next first boot (userdata/node.sh checks /etc/os-release).

Usage: python -m stacks.deployed_identity forget   (after `make destroy`: the next deploy starts afresh)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from stacks.config import DEFAULT_OS_RELEASE, DEPLOYED_IDENTITY_KEY, OS_RELEASES, Config, ConfigError

CONTEXT_FILE = Path(__file__).resolve().parent.parent / "cdk.context.json"
_RESET = (
    "to change it, deploy a second cloud with another 'prefix', or `make destroy` first (which forgets the record); "
    f"if nothing is deployed, `cdk context --reset {DEPLOYED_IDENTITY_KEY}`"
)
#: The release the nodes launched from: kept from the first record on (a record older than the key: bookworm).
LAUNCH_RELEASE_KEY = "launch_os_release"
#: Checked by the release rule below, not by plain equality.
_RELEASE_KEYS = ("os_release", LAUNCH_RELEASE_KEY)


def identity(config: Config) -> dict[str, Any]:
    """The values whose change would replace or delete a node, as plain JSON."""
    values: dict[str, Any] = {
        "prefix": config.prefix,
        "availability_zone": config.availability_zone,
        "vpc_cidr": str(config.vpc_cidr),
        "subnet_a_cidr": str(config.subnet_a_cidr),
        "subnet_b_cidr": str(config.subnet_b_cidr),
        "key_pair": config.key_pair or "",
        "compute_nested_virtualization": config.compute_nested_virtualization,
        "nodes": config.all_nodes,
        "os_release": config.os_release,
    }
    for name, role in config.roles.items():
        values[f"{name}_root_gib"] = role.root_gib
        if role.data_disks:
            values[f"{name}_data_gib"] = role.data_gib
    return values


def check_unchanged(recorded: object, config: Config) -> None:
    """Raise ConfigError for the first value that differs from the deployed one (nodes may only be added)."""
    if not isinstance(recorded, dict):
        return
    current = identity(config)
    gone = [node for node in recorded.get("nodes", []) if node not in current["nodes"]]
    if gone:
        raise ConfigError(
            "compute_count/object_count/block_storage",
            f"without {', '.join(gone)}",
            f"a config that keeps every deployed node ({', '.join(recorded['nodes'])}): removing one deletes its "
            f"instance and disks; {_RESET}",
        )
    for key, deployed in recorded.items():
        if key not in ("nodes", *_RELEASE_KEYS) and key in current and current[key] != deployed:
            raise ConfigError(
                key, current[key], f"{deployed!r} as deployed: a change would replace nodes (and lose them); {_RESET}"
            )
    _check_release(recorded, config)


def launch_release(recorded: dict[str, Any]) -> str:
    """The release of the AMI the deployed nodes launched from."""
    return str(recorded.get(LAUNCH_RELEASE_KEY) or recorded.get("os_release") or DEFAULT_OS_RELEASE)


def _check_release(recorded: dict[str, Any], config: Config) -> None:
    """A release other than the launch AMI's needs the new release's AMI: the nodes get it by root volume
    replacement, as an AMI upgrade (they are never replaced)."""
    launched = launch_release(recorded)
    if config.os_release == launched or config.ami_id:
        return
    wanted = OS_RELEASES[config.os_release]
    raise ConfigError(
        "os_release", config.os_release,
        f"{launched!r}, the release the deployed nodes launched from (their AMI is pinned at the first deploy), "
        f"unless ami_id names a Debian {wanted.debian} ({config.os_release}) AMI: a release switch reaches the "
        f"nodes only as an AMI upgrade does. Set -c ami_id=<the AMI that `aws ssm get-parameter --name "
        f"{wanted.ami_parameter}` names> with -c os_release={config.os_release}, deploy, then `openstack-aws "
        f"rebuild` replaces every root volume from it and installs again (data disks are wiped). Or deploy a second "
        f"cloud with another 'prefix'",
    )  # fmt: skip


def record(config: Config, path: Path = CONTEXT_FILE) -> None:
    """Write the identity into cdk.context.json, keeping every other key (CDK's own lookups live there too)."""
    context = json.loads(path.read_text()) if path.exists() else {}
    recorded = context.get(DEPLOYED_IDENTITY_KEY)
    values = identity(config)
    # The launch release never changes once recorded: a later release comes by root volume replacement only.
    values[LAUNCH_RELEASE_KEY] = launch_release(recorded) if isinstance(recorded, dict) else config.os_release
    context[DEPLOYED_IDENTITY_KEY] = values
    path.write_text(json.dumps(context, indent=2, sort_keys=True) + "\n")


def forget(path: Path = CONTEXT_FILE) -> None:
    if path.exists():
        context = json.loads(path.read_text())
        if context.pop(DEPLOYED_IDENTITY_KEY, None) is not None:
            path.write_text(json.dumps(context, indent=2, sort_keys=True) + "\n")


if __name__ == "__main__":
    if sys.argv[1:] != ["forget"]:
        sys.exit(__doc__)
    forget()
