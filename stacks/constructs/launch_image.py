"""The AMI the nodes launch from, resolved once when the stack is created and never again.

An SSM-typed template parameter (MachineImage.from_ssm_parameter) is re-resolved on every update: once Debian
publishes a new AMI, CloudFormation would replace every instance, and the replacement cannot even attach the ENIs
the old one still holds. So the AMI is read by a custom resource that only acts on Create: its physical ID (`Ref`)
is the AMI ID and stays whatever later updates change, and so does every instance's ImageId. A newer AMI reaches the
nodes by root volume replacement (config `ami_id`, stacks/constructs/rebuild.py), never by instance replacement.
The parameter follows config `os_release`; a changed release changes the Create call only, so a deployed cloud
keeps its launch AMI: stacks/deployed_identity.py refuses that switch unless `ami_id` names the new release's AMI.
"""

from __future__ import annotations

from aws_cdk import Stack
from aws_cdk import custom_resources as cr
from constructs import Construct


class LaunchImage(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, parameter_name: str, ami_id: str | None) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        if ami_id:
            # Checks at creation that the AMI exists in this region, and launches from it.
            call = cr.AwsSdkCall(
                service="EC2",
                action="describeImages",
                parameters={"ImageIds": [ami_id]},
                physical_resource_id=cr.PhysicalResourceId.from_response("Images.0.ImageId"),
            )
            resources = ["*"]  # ec2:DescribeImages accepts no narrower resource
        else:
            call = cr.AwsSdkCall(
                service="SSM",
                action="getParameter",
                parameters={"Name": parameter_name},
                physical_resource_id=cr.PhysicalResourceId.from_response("Parameter.Value"),
            )
            # Public parameters belong to no account, hence the empty account field.
            name = parameter_name.lstrip("/")
            resources = [stack.format_arn(service="ssm", account="", resource="parameter", resource_name=name)]
        # Only on_create: an update (a changed ami_id) runs no call and keeps the physical ID, i.e. the launch AMI.
        self.resolver = cr.AwsCustomResource(
            self,
            "Resolve",
            on_create=call,
            policy=cr.AwsCustomResourcePolicy.from_sdk_calls(resources=resources),
            install_latest_aws_sdk=False,
        )
        resource = self.resolver.node.find_child("Resource")
        self.image_id: str = resource.ref  # type: ignore[attr-defined]
