"""checkov findings we accept, each with its reason, in the metadata of the resource it concerns.

checkov (tests/unit/test_checkov.py, every synth of `make test`) reads `Metadata.checkov.skip` on each resource; any
finding not skipped here fails the suite. Like stacks/nag_acknowledgements.py, a skip names one check on one
resource; the per-type skips below hold for every resource of the type because of what all of them are.
"""

from __future__ import annotations

import aws_cdk as cdk
from constructs import IConstruct

from stacks.network_stack import NetworkStack
from stacks.nodes_stack import NodesStack
from stacks.orchestration_stack import OrchestrationStack

#: Every Lambda function of the app: the project's (stacks/constructs/python_function.py) and CDK's own
#: (custom resource providers, bucket auto-delete).
LAMBDA = {
    "CKV_AWS_115": (
        "no reserved concurrency: it is carved out of the account's pool, which must keep 10 unreserved (a new "
        "account's whole limit is 10), so reserving would fail the deploy; a run invokes each only a few times"
    ),
    "CKV_AWS_116": (
        "no dead-letter queue: Step Functions invokes synchronously and retries, and a custom resource's failure "
        "fails its stack operation; a DLQ only catches asynchronous events nobody would replay"
    ),
    "CKV_AWS_117": (
        "outside the VPC: it calls only AWS APIs (EC2, SSM, Step Functions, Secrets Manager, S3, SNS), no VPC "
        "resource; inside it would need the NAT gateway or an endpoint per service for no isolation gained"
    ),
    "CKV_AWS_173": (
        "the environment holds names, ARNs and Powertools settings, never a secret (secrets are read from Secrets "
        "Manager at run time); Lambda encrypts it at rest with its service key"
    ),
}
LOG_GROUP = {
    "CKV_AWS_158": (
        "no customer key: these logs hold step output and Lambda logs, never a secret (steps read secrets from "
        "Secrets Manager and never echo them); CloudWatch Logs encrypts every log group at rest"
    ),
}


def skip(scope: IConstruct, reasons: dict[str, str]) -> None:
    """Add checkov skips to a CfnResource, or to the default child (the CfnResource) of an L2 construct."""
    resource = scope if isinstance(scope, cdk.CfnResource) else scope.node.default_child
    assert isinstance(resource, cdk.CfnResource), f"{scope.node.path} has no CloudFormation resource to annotate"
    existing = (resource.get_metadata("checkov") or {}).get("skip", [])
    added = [{"id": check, "comment": reason} for check, reason in reasons.items()]
    resource.add_metadata("checkov", {"skip": [*existing, *added]})


def _by_type(stack: cdk.Stack, resource_type: str) -> list[cdk.CfnResource]:
    return [
        c for c in stack.node.find_all() if isinstance(c, cdk.CfnResource) and c.cfn_resource_type == resource_type
    ]


def skip_all(
    network: NetworkStack, nodes: NodesStack, orchestration: OrchestrationStack, *others: cdk.Stack
) -> None:
    for stack in (network, nodes, orchestration, *others):
        for function in _by_type(stack, "AWS::Lambda::Function"):
            skip(function, LAMBDA)
        for group in _by_type(stack, "AWS::Logs::LogGroup"):
            skip(group, LOG_GROUP)
    skip(
        nodes.secret,
        {
            "CKV_AWS_149": (
                "the AWS-managed key aws/secretsmanager: readers (node role, seeder) are granted by IAM alone; a "
                "customer key would add a key policy and a grant per reader and protect nothing more in one account"
            )
        },
    )
    skip(
        nodes.bucket,
        {
            "CKV_AWS_18": (
                "no server access logs: the bucket holds only the Swift rings and the public TLS certificate the "
                "nodes exchange by their role; logging it would need a second bucket (cdk-nag S1 is acknowledged "
                "for the same reason)"
            )
        },
    )
    skip(
        orchestration.topic,
        {
            "CKV_AWS_26": (
                "no KMS key: CloudWatch alarms publish to this topic, and the AWS-managed key alias/aws/sns cannot "
                "grant cloudwatch.amazonaws.com, so the alarms would fail silently; it carries run summaries only"
            )
        },
    )
    if orchestration.schedule is not None:
        skip(
            orchestration.schedule.dead_letters,
            {
                "CKV_AWS_27": (
                    "encrypted at rest with SSE-SQS (SqsManagedSseEnabled); this checkov version's check looks "
                    "only for KmsMasterKeyId"
                )
            },
        )
