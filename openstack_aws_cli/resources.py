"""Finds the deployment's resources from its CloudFormation outputs (the CLI keeps no state of its own)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


class CliError(RuntimeError):
    """Something the operator must fix; printed as one line, exit code 2."""


@dataclass(frozen=True)
class Resources:
    prefix: str
    outputs: dict[str, str]

    def get(self, key: str) -> str:
        if key not in self.outputs:
            raise CliError(
                f"stack output {key!r} not found in the {self.prefix}-* stacks: deploy them first (make deploy), "
                "or pass --prefix if you deployed with another prefix"
            )
        return self.outputs[key]

    @property
    def install_arn(self) -> str:
        return self.get("InstallStateMachineArn")

    @property
    def rebuild_arn(self) -> str:
        return self.get("RebuildStateMachineArn")


def load_resources(cloudformation: Any, prefix: str) -> Resources:
    outputs: dict[str, str] = {}
    found = False
    for suffix in ("network", "nodes", "orchestration"):
        try:
            stacks = cloudformation.describe_stacks(StackName=f"{prefix}-{suffix}")["Stacks"]
        except cloudformation.exceptions.ClientError:
            continue
        found = True
        for output in stacks[0].get("Outputs", []):
            outputs[output["OutputKey"]] = output["OutputValue"]
    if not found:
        raise CliError(
            f"no stack named {prefix}-network/-nodes/-orchestration in this account and region: check AWS_PROFILE "
            "and AWS_REGION, or pass --prefix"
        )
    return Resources(prefix, outputs)
