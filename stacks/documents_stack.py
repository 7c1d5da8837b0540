"""The steps' SSM documents, in stacks of their own: each document carries the whole shell library, so together
they outgrow one CloudFormation template (1 MB). Documents are packed in NN order into as many stacks as needed
(`<prefix>-steps-1`, `-2`, ...), each a dependency of the next, so that a document moving to the next stack is
deleted from the first before it is created again.
"""

from __future__ import annotations

import json

import aws_cdk as cdk
from constructs import Construct

from stacks.config import Config
from stacks.constructs.ssm_documents import StepDocuments, document_content
from stacks.step_catalog import Step

#: Document content per stack; the rest of the 1 MB template limit is room for CloudFormation's own JSON.
CONTENT_BUDGET = 800_000


def pack(steps: list[Step], budget: int = CONTENT_BUDGET) -> list[list[Step]]:
    """Consecutive groups of steps whose documents fit the budget together."""
    groups: list[list[Step]] = [[]]
    used = 0
    for step in steps:
        size = len(json.dumps(document_content(step), separators=(",", ":")))
        if groups[-1] and used + size > budget:
            groups.append([])
            used = 0
        groups[-1].append(step)
        used += size
    return groups


class DocumentsStack(cdk.Stack):
    def __init__(
        self, scope: Construct, construct_id: str, *, config: Config, steps: list[Step], **kwargs: object
    ) -> None:
        super().__init__(scope, construct_id, suppress_template_indentation=True, **kwargs)
        self.documents = StepDocuments(self, "StepDocuments", prefix=config.prefix, steps=steps)


def documents_stacks(scope: Construct, config: Config, steps: list[Step], **kwargs: object) -> list[DocumentsStack]:
    stacks: list[DocumentsStack] = []
    for number, group in enumerate(pack(steps), start=1):
        stack = DocumentsStack(
            scope, f"{config.prefix}-steps-{number}", config=config, steps=group,
            description=f"openstack-on-aws: SSM documents of the install steps {group[0].name} to {group[-1].name}",
            **kwargs,
        )  # fmt: skip
        if stacks:
            stack.add_stack_dependency(stacks[-1])
        stacks.append(stack)
    return stacks
