"""What a deployed cloud cannot change without losing nodes, recorded at deploy and guarded on every synth.

CloudFormation replaces an instance when its subnet, address, key pair, disks or launch template change, and deletes
it when the node leaves the config. A replaced or deleted node is a lost node here: the cloud lives on its disks,
and a replacement cannot even attach the ENIs its predecessor holds. So `make deploy` records these values in
cdk.context.json (key `deployed_identity`, which the CDK CLI passes back as context on every run), and the app
refuses a config that differs, saying what to do instead.

Usage: python -m stacks.deployed_identity forget   (after `make destroy`: the next deploy starts afresh)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from stacks.config import DEPLOYED_IDENTITY_KEY, Config, ConfigError

CONTEXT_FILE = Path(__file__).resolve().parent.parent / "cdk.context.json"
_RESET = (
    "to change it, deploy a second cloud with another 'prefix', or `make destroy` first (which forgets the record); "
    f"if nothing is deployed, `cdk context --reset {DEPLOYED_IDENTITY_KEY}`"
)


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
        if key != "nodes" and key in current and current[key] != deployed:
            raise ConfigError(
                key, current[key], f"{deployed!r} as deployed: a change would replace nodes (and lose them); {_RESET}"
            )


def record(config: Config, path: Path = CONTEXT_FILE) -> None:
    """Write the identity into cdk.context.json, keeping every other key (CDK's own lookups live there too)."""
    context = json.loads(path.read_text()) if path.exists() else {}
    context[DEPLOYED_IDENTITY_KEY] = identity(config)
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
