"""One SSM Command document per install step, generated from `steps/` at synth time.

`steps/NN-name.sh` becomes the document `<prefix>-name` (schemaVersion 2.2, aws:runShellScript) whose script is
`compose_script(step)`: the shared library, then the step. Changing a script changes its document. The documents
take no secret and no parameter but the execution timeout, whose default is the step header's `timeout`.
"""

from __future__ import annotations

import json
from typing import Any

from aws_cdk import Stack
from aws_cdk import aws_ssm as ssm
from constructs import Construct

from stacks.step_catalog import Step, StepCatalogError, compose_script

#: SSM's limit on a document's content.
DOCUMENT_CONTENT_LIMIT = 64 * 1024


def document_name(prefix: str, step: str) -> str:
    return f"{prefix}-{step}"


def document_content(step: Step) -> dict[str, Any]:
    content = {
        "schemaVersion": "2.2",
        "description": f"openstack-aws install step '{step.name}' (steps/{step.path.name} after steps/lib/*.sh); "
        f"runs on: {', '.join(step.roles)}. Idempotent: re-running it on an installed node changes nothing.",
        "parameters": {
            "executionTimeout": {
                "type": "String",
                "default": str(step.timeout),
                "description": "Seconds the script may run (the step header's timeout)",
                "allowedPattern": "^[1-9][0-9]{1,4}$",
            }
        },
        "mainSteps": [
            {
                "action": "aws:runShellScript",
                "name": step.name,
                "inputs": {"runCommand": compose_script(step).splitlines(), "timeoutSeconds": "{{ executionTimeout }}"},
            }
        ],
    }
    size = len(json.dumps(content))
    if size > DOCUMENT_CONTENT_LIMIT:
        raise StepCatalogError(
            f"{step.path.name}: its SSM document would be {size // 1024} KiB with steps/lib; SSM accepts at most "
            f"{DOCUMENT_CONTENT_LIMIT // 1024} KiB: shorten the step or move code out of steps/lib"
        )
    return content


class StepDocuments(Construct):
    """The documents of the given steps; `names[step]` is a step's document name, `arns` all of their ARNs."""

    def __init__(self, scope: Construct, construct_id: str, *, prefix: str, steps: list[Step]) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self.names: dict[str, str] = {}
        self.arns: list[str] = []
        for step in steps:
            name = document_name(prefix, step.name)
            ssm.CfnDocument(
                self, f"Step{step.number:02d}{step.name.title().replace('-', '')}",
                name=name, document_type="Command", document_format="JSON", target_type="/AWS::EC2::Instance",
                content=document_content(step), update_method="NewVersion",
            )  # fmt: skip
            self.names[step.name] = name
            self.arns.append(stack.format_arn(service="ssm", resource="document", resource_name=name))
