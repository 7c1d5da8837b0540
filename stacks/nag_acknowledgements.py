"""cdk-nag AwsSolutions findings we accept, each with the reason, on the construct it concerns.

Anything not acknowledged here fails synth. Acknowledgements are made per construct and per finding (with the
exact resource or action where cdk-nag names one), never stack-wide.
"""

from __future__ import annotations

import aws_cdk as cdk
from constructs import IConstruct

from stacks.config import Config
from stacks.network_stack import NetworkStack
from stacks.nodes_stack import NodesStack

LAMBDA_BASIC = "Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"


def ack(scope: IConstruct, reasons: dict[str, str]) -> None:
    cdk.Validations.of(scope).acknowledge(
        *(
            cdk.Acknowledgment(id=f"AwsSolutions::AwsSolutions-{rule}", reason=reason)
            for rule, reason in reasons.items()
        )
    )


def ack_python_function(function_scope: IConstruct) -> None:
    """The findings every PythonFunction (stacks/constructs/python_function.py) carries by design."""
    ack(
        function_scope,
        {
            f"IAM4[{LAMBDA_BASIC}]": "Lambda's basic execution policy only allows writing its own logs",
            "IAM5[Resource::*]": "X-Ray PutTraceSegments/PutTelemetryRecords accept no resource narrower than *",
            "L1": "Python 3.12 is pinned on purpose: Powertools' layer and the tests use 3.12",
        },
    )


def acknowledge_all(config: Config, network: NetworkStack, nodes: NodesStack) -> None:
    if config.allowed_cidr is not None and config.allowed_cidr.prefixlen == 0:
        ack(network.node_sg, {"EC23": "allow_world=true was set explicitly for a public POC"})
    ack_python_function(nodes.node.find_child("SecretSeeder"))
    ack(
        nodes.node.find_child("SecretSeedProvider"),
        {
            f"IAM4[{LAMBDA_BASIC}]": "CDK's custom resource framework function only writes its own logs",
            "IAM5[Resource::<SecretSeederFunctionD1F14F8D.Arn>:*]": "the framework invokes any version of the seeder",
            "L1": "the runtime of CDK's provider framework function is chosen by aws-cdk-lib",
        },
    )
    ack(
        nodes.secret,
        {"SMG4": "rotation would break the running cloud: each password also lives in a service's config file"},
    )
    ack(nodes.bucket, {"S1": "holds only Swift ring files exchanged between nodes; access is by the node role"})
    ack(
        nodes.role,
        {
            "IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/AmazonSSMManagedInstanceCore]": (
                "AWS's minimal policy for an SSM managed instance, which is how the install runs on the nodes"
            ),
            "IAM5[Resource::<Artifacts82DD59A1.Arn>/artifacts/*]": "get/put limited to the artifacts/ prefix",
        },
    )
    for instance in nodes.nodes.values():
        ack(
            instance.instance,
            {"EC29": "POC nodes are rebuilt nightly in place and removed by `make destroy`; protection would block it"},
        )
