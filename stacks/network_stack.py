"""The VPC of the POC: subnet A (management + overlay), subnet B (provider + public), the Elastic IP, the security
groups (one per kind of ENI: management, provider, public) and flow logs.

L1 subnets, because the design fixes their CIDRs (the L2 Vpc allocates its own) and both must sit in one AZ.
"""

from __future__ import annotations

from aws_cdk import CfnTag, Fn, RemovalPolicy, Stack, Tags
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_logs as logs
from constructs import Construct

from stacks.config import Config

#: Public API and dashboard ports: Horizon (80/443), Keystone, noVNC, Nova, Cinder, Placement, Swift, Glance, Neutron.
PUBLIC_PORTS = (80, 443, 5000, 6080, 8774, 8776, 8778, 8080, 9292, 9696)


class NetworkStack(Stack):
    def __init__(self, scope: Construct, construct_id: str, *, config: Config, **kwargs: object) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.config = config
        self.availability_zone = config.availability_zone or Fn.select(0, Fn.get_azs())

        self.cfn_vpc = ec2.CfnVPC(
            self, "Vpc", cidr_block=str(config.vpc_cidr), enable_dns_hostnames=True, enable_dns_support=True
        )
        Tags.of(self.cfn_vpc).add("Name", f"{config.prefix}-vpc")
        self.subnet_a = self._subnet("SubnetA", str(config.subnet_a_cidr), "management")
        self.subnet_b = self._subnet("SubnetB", str(config.subnet_b_cidr), "provider-public")

        igw = ec2.CfnInternetGateway(self, "InternetGateway")
        attachment = ec2.CfnVPCGatewayAttachment(
            self, "IgwAttachment", vpc_id=self.cfn_vpc.ref, internet_gateway_id=igw.ref
        )
        self.route_table_b = self._route_table("RouteTableB", self.subnet_b)
        ec2.CfnRoute(
            self,
            "SubnetBDefault",
            route_table_id=self.route_table_b.ref,
            destination_cidr_block="0.0.0.0/0",
            gateway_id=igw.ref,
        ).add_dependency(attachment)
        self.route_table_a = self._route_table("RouteTableA", self.subnet_a)
        if config.management_egress == "nat-gateway":
            nat_eip = ec2.CfnEIP(self, "NatEip", domain="vpc")
            nat = ec2.CfnNatGateway(
                self,
                "NatGateway",
                subnet_id=self.subnet_b.ref,
                allocation_id=nat_eip.attr_allocation_id,
                # fixed, so that it cannot take a node's or a floating IP's address before their ENIs exist
                private_ip_address=config.nat_gateway_ip,
            )
            # A public NAT gateway created before the internet gateway is attached fails, and the stack rolls back.
            nat.add_dependency(attachment)
            ec2.CfnRoute(
                self,
                "SubnetADefault",
                route_table_id=self.route_table_a.ref,
                destination_cidr_block="0.0.0.0/0",
                nat_gateway_id=nat.ref,
            )
        # S3 is free through a gateway endpoint: the SSM agent package, the artifact bucket, command output.
        ec2.CfnVPCEndpoint(
            self,
            "S3Endpoint",
            vpc_id=self.cfn_vpc.ref,
            service_name=f"com.amazonaws.{self.region}.s3",
            vpc_endpoint_type="Gateway",
            route_table_ids=[self.route_table_a.ref, self.route_table_b.ref],
        )

        self.vpc = ec2.Vpc.from_vpc_attributes(
            self,
            "VpcRef",
            vpc_id=self.cfn_vpc.ref,
            vpc_cidr_block=str(config.vpc_cidr),
            availability_zones=[self.availability_zone],
        )
        self._flow_logs()
        self.elastic_ip = ec2.CfnEIP(self, "ControllerEip", domain="vpc")
        Tags.of(self.elastic_ip).add("Name", f"{config.prefix}-controller-public")
        self.node_sg = self._node_security_group()
        self.provider_sg = self._provider_security_group()
        self.public_sg = self._public_security_group()
        self.floating_eips = [
            ec2.CfnEIP(
                self, f"FloatingEip{i}", domain="vpc", tags=[CfnTag(key="Name", value=f"{config.prefix}-fip-{ip}")]
            )
            for i, ip in enumerate(config.floating_ip_addresses, start=1)
        ]
        self.floating_sg = self._floating_security_group()

    def _subnet(self, construct_id: str, cidr: str, purpose: str) -> ec2.CfnSubnet:
        subnet = ec2.CfnSubnet(
            self,
            construct_id,
            vpc_id=self.cfn_vpc.ref,
            cidr_block=cidr,
            availability_zone=self.availability_zone,
            map_public_ip_on_launch=False,
        )
        Tags.of(subnet).add("Name", f"{self.config.prefix}-{purpose}")
        return subnet

    def _route_table(self, construct_id: str, subnet: ec2.CfnSubnet) -> ec2.CfnRouteTable:
        table = ec2.CfnRouteTable(self, construct_id, vpc_id=self.cfn_vpc.ref)
        ec2.CfnSubnetRouteTableAssociation(
            self, f"{construct_id}Association", route_table_id=table.ref, subnet_id=subnet.ref
        )
        return table

    def _flow_logs(self) -> None:
        group = logs.LogGroup(
            self, "FlowLogGroup", retention=logs.RetentionDays.TWO_WEEKS, removal_policy=RemovalPolicy.DESTROY
        )
        ec2.FlowLog(
            self,
            "FlowLog",
            resource_type=ec2.FlowLogResourceType.from_vpc(self.vpc),
            destination=ec2.FlowLogDestination.to_cloud_watch_logs(group),
            traffic_type=ec2.FlowLogTrafficType.REJECT,
        )

    def _security_group(self, construct_id: str, description: str) -> ec2.SecurityGroup:
        return ec2.SecurityGroup(self, construct_id, vpc=self.vpc, allow_all_outbound=True, description=description)

    def _floating_security_group(self) -> ec2.SecurityGroup | None:
        """On the controller's provider ENI only, where the host has no address: what it lets in reaches Neutron's
        floating IPs (and through them instances, behind OpenStack's own security groups), nothing on a node."""
        config = self.config
        if config.allowed_cidr is None or not config.floating_ips:
            return None
        group = self._security_group(
            "FloatingIpSecurityGroup", "OpenStack floating IPs (controller eth1): all traffic from allowed_cidr"
        )
        group.add_ingress_rule(
            ec2.Peer.ipv4(str(config.allowed_cidr)),
            ec2.Port.all_traffic(),
            "floating IPs from allowed_cidr (OpenStack security groups filter further)",
        )
        return group

    def _node_security_group(self) -> ec2.SecurityGroup:
        """On every node's management ENI (eth0) only: all traffic between the nodes' management addresses. Nothing
        from subnet B: the router's gateway and the floating IPs are addresses there that carry tenants' traffic,
        and the VPC delivers it to any management address directly. The description predates that (it names
        public ports, which are on the public ENI's group now) and stays: changing it replaces the group."""
        group = self._security_group(
            "NodeSecurityGroup", "OpenStack nodes: all traffic between nodes; public ports only from allowed_cidr"
        )
        group.add_ingress_rule(group, ec2.Port.all_traffic(), "all traffic between the OpenStack nodes")
        return group

    def _provider_security_group(self) -> ec2.SecurityGroup:
        """On the provider ENIs (eth1 of controller and compute): no address of a host is there, only Neutron's
        router, which the floating IP group opens to allowed_cidr; replies to what left through it are tracked.
        Not the node group: a member's addresses (the router's, the floating IPs) would be trusted by every node."""
        return self._security_group(
            "ProviderSecurityGroup", "OpenStack provider ENIs (eth1): no inbound rule; floating IPs have their own"
        )

    def _public_security_group(self) -> ec2.SecurityGroup:
        """On the controller's public ENI (eth2, the Elastic IP): the public ports from allowed_cidr, and everything
        from the router's gateway address and the floating IPs, which the controller forwards to the internet (the
        controller's own firewall keeps that traffic from its services)."""
        config = self.config
        group = self._security_group(
            "PublicSecurityGroup",
            "OpenStack controller eth2: public ports from allowed_cidr; the router and floating IPs to the internet",
        )
        if config.allowed_cidr is not None:
            peer = ec2.Peer.ipv4(str(config.allowed_cidr))
            for port in PUBLIC_PORTS:
                group.add_ingress_rule(peer, ec2.Port.tcp(port), f"OpenStack public port {port} from allowed_cidr")
            if config.key_pair:
                group.add_ingress_rule(peer, ec2.Port.tcp(22), "SSH from allowed_cidr (a key pair is configured)")
        group.add_ingress_rule(
            ec2.Peer.ipv4(f"{config.provider_eni_ip('controller')}/32"),
            ec2.Port.all_traffic(),
            "Neutron router gateway (SNAT) to the internet through the controller",
        )
        for address in config.floating_ip_addresses:
            group.add_ingress_rule(
                ec2.Peer.ipv4(f"{address}/32"), ec2.Port.all_traffic(), f"floating IP {address} to the internet"
            )
        return group
