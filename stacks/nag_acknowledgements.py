"""cdk-nag AwsSolutions findings we accept, each with the reason, on the construct it concerns.

Anything not acknowledged here fails synth. Acknowledgements are made per construct and per finding (with the
exact resource or action where cdk-nag names one), never stack-wide.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import custom_resources as cr
from constructs import IConstruct

from stacks.config import Config
from stacks.network_stack import NetworkStack
from stacks.nodes_stack import NodesStack
from stacks.orchestration_stack import OrchestrationStack

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
        for group in (network.public_sg, network.floating_sg):
            if group is not None:
                ack(group, {"EC23": "allow_world=true was set explicitly for a public POC"})
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
        nodes.node.find_child("AWS" + cr.AwsCustomResource.PROVIDER_FUNCTION_UUID.replace("-", "")),
        {f"IAM4[{LAMBDA_BASIC}]": "CDK's AwsCustomResource function (resolves the launch AMI) only writes its logs"},
    )
    if config.ami_id:
        ack(nodes.launch_image.resolver, {"IAM5[Resource::*]": "ec2:DescribeImages accepts only Resource *"})
    ack(
        nodes.secret,
        {"SMG4": "rotation would break the running cloud: each password also lives in a service's config file"},
    )
    ack(nodes.bucket, {"S1": "holds only the Swift rings and the public TLS certificate the nodes exchange; access "
                             "is by the node role, which reads the project's secret as well"})
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


def acknowledge_orchestration(orchestration: OrchestrationStack) -> None:
    """Findings of stacks/orchestration_stack.py: each wildcard is one that IAM offers no narrower form of."""
    wildcard = {
        "DiscoverNodes": "X-Ray, and ec2:DescribeInstances/DescribeNetworkInterfaces, accept only Resource *",
        "WaitOnline": "X-Ray, and ssm:DescribeInstanceInformation, accept only Resource *",
        "StepStatus": "X-Ray, and ssm:ListCommandInvocations/GetCommandInvocation, accept only Resource *",
    }
    for construct_id, function in orchestration.functions.items():
        ack_python_function(function)
        if construct_id in wildcard:
            ack(function, {"IAM5[Resource::*]": wildcard[construct_id]})
    account = "arn:<AWS::Partition>:{}:<AWS::Region>:<AWS::AccountId>:{}"
    ack(
        orchestration.functions["SendStep"],
        {
            f"IAM5[Resource::{account.format('ec2', 'instance/*')}]": (
                "SendCommand to instances only when they carry the project tag (ssm:resourceTag condition); "
                "the documents are listed one by one"
            )
        },
    )
    ack(
        orchestration.functions["Ec2Fix"],
        {
            f"IAM5[Resource::{account.format('ec2', 'network-interface/*')}]": (
                "ModifyNetworkInterfaceAttribute only on ENIs carrying the project tag (aws:ResourceTag condition)"
            )
        },
    )
    machine = orchestration.state_machine
    machine_id = orchestration.get_logical_id(machine.node.default_child)
    starter_id = orchestration.get_logical_id(orchestration.functions["StartInstall"].function.node.default_child)
    ack(
        orchestration.functions["StartInstall"],
        {
            f"IAM5[Resource::{account.format('states', f'execution:<{machine_id}.Name>:*')}]": (
                "StopExecution on executions of the install state machine only (stack deletion stops a run)"
            )
        },
    )
    invoked = [f.function for f in orchestration.functions.values()]
    ack(
        machine,
        {
            "IAM5[Resource::*]": "X-Ray and CloudWatch Logs delivery actions of Step Functions accept only Resource *",
            **{
                f"IAM5[Resource::<{orchestration.get_logical_id(f.node.default_child)}.Arn>:*]": (
                    "Step Functions may invoke any version of the orchestration's own Lambdas"
                )
                for f in invoked
            },
        },
    )
    ack(
        orchestration.trigger_provider,
        {
            f"IAM4[{LAMBDA_BASIC}]": "CDK's custom resource framework function only writes its own logs",
            f"IAM5[Resource::<{starter_id}.Arn>:*]": "the framework invokes any version of its handler",
        },
    )
    ack(
        orchestration.node_output_policy,
        {
            f"IAM5[Resource::{account.format('logs', 'log-group:*')}]": (
                "the SSM agent's DescribeLogGroups (checking the output group exists) accepts only log-group:*"
            )
        },
    )


def acknowledge_rebuild(orchestration: OrchestrationStack) -> None:
    """Findings of stacks/constructs/rebuild.py and rebuild_schedule.py."""
    rebuild = orchestration.rebuild
    account = "arn:<AWS::Partition>:{}:<AWS::Region>:<AWS::AccountId>:{}"
    for function in (rebuild.guard, rebuild.replace, rebuild.replace_status):
        ack_python_function(function)
    ack(
        rebuild.replace,
        {
            f"IAM5[Resource::{account.format('ec2', 'instance/*')}]": (
                "CreateReplaceRootVolumeTask only on instances carrying the project tag (aws:ResourceTag condition)"
            ),
            f"IAM5[Resource::{account.format('ec2', 'replace-root-volume-task/*')}]": (
                "the task's ID is made by EC2 at creation, so no narrower resource can be named"
            ),
        },
    )
    ack(rebuild.replace_status, {"IAM5[Resource::*]": "ec2:DescribeReplaceRootVolumeTasks accepts only Resource *"})
    install_id = orchestration.get_logical_id(orchestration.state_machine.node.default_child)
    execution = 'execution:{"Fn::Select":[6,{"Fn::Split":[":",{"Ref":"' + install_id + '"}]}]}*'
    invoked = [rebuild.guard, rebuild.replace, rebuild.replace_status]
    invoked_ids = [orchestration.get_logical_id(f.function.node.default_child) for f in invoked]
    invoked_ids += [
        orchestration.get_logical_id(orchestration.functions[name].function.node.default_child)
        for name in ("DiscoverNodes", "WaitOnline", "SendStep", "StepStatus", "Notify")
    ]
    ack(
        rebuild.state_machine,
        {
            "IAM5[Resource::*]": "X-Ray and CloudWatch Logs delivery actions of Step Functions accept only Resource *",
            f"IAM5[Resource::{account.format('states', execution)}]": (
                "startExecution.sync:2 describes and stops executions of the install machine only"
            ),
            **{
                f"IAM5[Resource::<{logical}.Arn>:*]": "Step Functions may invoke any version of the project's Lambdas"
                for logical in invoked_ids
            },
        },
    )
    if orchestration.schedule is not None:
        ack(
            orchestration.schedule.dead_letters,
            {"SQS3": "this queue is itself the schedule's dead-letter queue; an alarm watches it"},
        )
