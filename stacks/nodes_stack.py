"""The OpenStack nodes: instances with their ENIs and disks, the Elastic IP on the controller's eth2, the instance
role, the project's secret (generated passwords) and the artifact bucket (Swift rings, the public TLS certificate)."""

from __future__ import annotations

from aws_cdk import CfnOutput, CustomResource, Duration, Fn, RemovalPolicy, Stack, Tags
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import custom_resources as cr
from constructs import Construct

from lambdas.common.secret_keys import SECRET_KEYS
from stacks import userdata
from stacks.config import Config
from stacks.constructs.launch_image import LaunchImage
from stacks.constructs.node_instance import EniSpec, NodeInstance
from stacks.constructs.python_function import PythonFunction
from stacks.network_stack import NetworkStack

PROJECT_TAG = "openstack-aws:project"
ROLE_TAG = "openstack-aws:role"
NODE_TAG = "openstack-aws:node"


class NodesStack(Stack):
    def __init__(
        self, scope: Construct, construct_id: str, *, config: Config, network: NetworkStack, **kwargs: object
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.config = config
        self.network = network
        Tags.of(self).add(PROJECT_TAG, config.prefix)

        self.bucket = s3.Bucket(
            self,
            "Artifacts",
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            # A ring overwritten by a faulty run can be taken back; old versions expire after a week.
            versioned=True,
            lifecycle_rules=[s3.LifecycleRule(noncurrent_version_expiration=Duration.days(7))],
            removal_policy=RemovalPolicy.DESTROY,
            auto_delete_objects=True,
        )
        self.secret = self._secret()
        self.role = self._node_role()
        profile = iam.CfnInstanceProfile(self, "NodeInstanceProfile", roles=[self.role.role_name])
        # The release's public AMI parameter (config os_release): read once, at creation; see LaunchImage.
        self.launch_image = LaunchImage(self, "LaunchImage", parameter_name=config.ami_parameter, ami_id=config.ami_id)
        ami = self.launch_image.image_id

        self.nodes: dict[str, NodeInstance] = {}
        for role_name, role in config.roles.items():
            for node in config.node_names(role_name):
                instance = NodeInstance(
                    self,
                    node.capitalize(),
                    node=node,
                    role=role,
                    enis=self._enis(node, role_name),
                    instance_profile_name=profile.ref,
                    image_id=ami,
                    user_data=userdata.render(
                        config,
                        node,
                        role_name,
                        region=self.region,
                        elastic_ip=network.elastic_ip.attr_public_ip,
                        secret_arn=self.secret.secret_arn,
                        bucket=self.bucket.bucket_name,
                    ),
                    prefix=config.prefix,
                    key_pair=config.key_pair,
                    nested_virtualization=role_name == "compute" and config.compute_nested_virtualization,
                )
                for taggable in (instance.instance, *instance.enis.values()):
                    Tags.of(taggable).add(ROLE_TAG, role_name)
                    Tags.of(taggable).add(NODE_TAG, node)
                self.nodes[node] = instance

        controller = self.nodes["controller"]
        ec2.CfnEIPAssociation(
            self,
            "ControllerEipAssociation",
            allocation_id=network.elastic_ip.attr_allocation_id,
            network_interface_id=controller.enis[2].ref,
        )
        for address, eip in zip(config.floating_ip_addresses, network.floating_eips, strict=True):
            ec2.CfnEIPAssociation(
                self,
                f"FloatingEipAssociation{address.replace('.', '-')}",
                allocation_id=eip.attr_allocation_id,
                network_interface_id=controller.enis[1].ref,
                private_ip_address=address,
            )
        if config.management_egress == "none":
            # The controller is subnet A's NAT (through eth2): route to its eth0, whose check is off (see _enis).
            ec2.CfnRoute(
                self,
                "SubnetAViaController",
                route_table_id=network.route_table_a.ref,
                destination_cidr_block="0.0.0.0/0",
                network_interface_id=controller.enis[0].ref,
            )
        self._outputs()

    def _enis(self, node: str, role: str) -> list[EniSpec]:
        """Each kind of ENI in its own security group (stacks/network_stack.py): management (eth0), provider (eth1),
        public (eth2). Only the management ENIs are in the node group, whose members every node trusts."""
        config, net = self.config, self.network
        nat_on_controller = role == "controller" and config.management_egress == "none"
        enis = [
            EniSpec(
                0,
                "management",
                net.subnet_a.ref,
                config.management_ip(node),
                not nat_on_controller,
                security_group_ids=(net.node_sg.security_group_id,),
            )
        ]
        provider_sg = (net.provider_sg.security_group_id,)
        if role == "controller":
            floating_sg = () if net.floating_sg is None else (net.floating_sg.security_group_id,)
            enis.append(
                EniSpec(
                    1,
                    "provider",
                    net.subnet_b.ref,
                    config.provider_eni_ip(node),
                    secondary_ips=tuple(config.floating_ip_addresses),
                    holds_pool=True,
                    security_group_ids=provider_sg + floating_sg,
                )
            )
            public_sg = (net.public_sg.security_group_id,)
            enis.append(EniSpec(2, "public", net.subnet_b.ref, config.public_ip, security_group_ids=public_sg))
        elif role == "compute":
            enis.append(
                EniSpec(1, "provider", net.subnet_b.ref, config.provider_eni_ip(node), security_group_ids=provider_sg)
            )
        return enis

    def _secret(self) -> secretsmanager.Secret:
        secret = secretsmanager.Secret(
            self,
            "Passwords",
            description=f"{self.config.prefix}: OpenStack passwords (admin, services, databases, RabbitMQ)",
            # A placeholder until the seeding resource below fills every key; no value is ever in the template.
            generate_secret_string=secretsmanager.SecretStringGenerator(
                secret_string_template="{}", generate_string_key="_seed", exclude_punctuation=True
            ),
            removal_policy=RemovalPolicy.DESTROY,
        )
        seeder = PythonFunction(
            self,
            "SecretSeeder",
            handler="secret_seed.handler.handler",
            service="secret-seed",
            description="Fills the project's secret with one generated password per key",
            timeout=Duration.seconds(30),
        )
        secret.grant_read(seeder.function)
        secret.grant_write(seeder.function)
        provider = cr.Provider(self, "SecretSeedProvider", on_event_handler=seeder.function)
        CustomResource(
            self,
            "SecretSeed",
            service_token=provider.service_token,
            properties={"SecretId": secret.secret_arn, "Keys": list(SECRET_KEYS)},
        )
        return secret

    def _node_role(self) -> iam.Role:
        role = iam.Role(
            self,
            "NodeRole",
            assumed_by=iam.ServicePrincipal("ec2.amazonaws.com"),
            description="OpenStack nodes: SSM managed instance, read the project's secret, exchange artifacts",
            managed_policies=[iam.ManagedPolicy.from_aws_managed_policy_name("AmazonSSMManagedInstanceCore")],
        )
        self.secret.grant_read(role)
        # Only the artifacts/ prefix, only get and put: the controller publishes rings, object nodes fetch them; the
        # controller keeps the public TLS certificate there, so a rebuilt root volume finds it again.
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["s3:GetObject", "s3:PutObject"], resources=[self.bucket.arn_for_objects("artifacts/*")]
            )
        )
        return role

    def _outputs(self) -> None:
        config, eip = self.config, self.network.elastic_ip.attr_public_ip
        controller_id = self.nodes["controller"].instance.ref
        CfnOutput(self, "HorizonUrl", value=f"https://{eip}/", description="Horizon (Debian serves it at /)")
        CfnOutput(self, "KeystonePublicUrl", value=f"https://{eip}:5000/v3", description="Keystone public endpoint")
        # The public side's CA, which the public-tls step keeps in the bucket (steps/lib/optional/public.sh TLS_CA).
        CfnOutput(
            self,
            "PublicCaCommand",
            description="Saves the CA of the public endpoints' certificate (then OS_CACERT=openstack-aws-ca.pem)",
            value=f"aws s3 cp s3://{self.bucket.bucket_name}/artifacts/public-tls-ca.crt openstack-aws-ca.pem",
        )
        CfnOutput(self, "ElasticIp", value=eip, description="The controller's public address (eth2)")
        floating = self.network.floating_eips
        CfnOutput(
            self,
            "FloatingIps",
            description="Elastic IP=OpenStack floating IP (provider-subnet pool); ping one from allowed_cidr",
            value=Fn.join(
                " ",
                [
                    Fn.join("=", [eip.attr_public_ip, ip])
                    for eip, ip in zip(floating, config.floating_ip_addresses, strict=True)
                ],
            )
            if floating
            else "none (floating_ips=0)",
        )
        CfnOutput(self, "SecretArn", value=self.secret.secret_arn, description="The OpenStack passwords")
        CfnOutput(
            self,
            "AdminPasswordCommand",
            description="Prints the OpenStack admin password",
            value=f"aws secretsmanager get-secret-value --secret-id {self.secret.secret_arn} --query SecretString "
            "--output text | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"ADMIN_PASS\"])'",
        )
        CfnOutput(self, "ArtifactBucket", value=self.bucket.bucket_name)
        for node, instance in self.nodes.items():
            CfnOutput(self, f"InstanceId{node.capitalize()}", value=instance.instance.ref, description=f"{node}")
        if config.allowed_cidr is None:
            CfnOutput(
                self,
                "PublicAccess",
                description="allowed_cidr is unset: no public ingress",
                value=f"No public ingress. Reach Horizon with: aws ssm start-session --target {controller_id} "
                "--document-name AWS-StartPortForwardingSession --parameters portNumber=80,localPortNumber=8080 "
                "then open http://localhost:8080/ ; or deploy with -c allowed_cidr=<your.ip>/32",
            )
