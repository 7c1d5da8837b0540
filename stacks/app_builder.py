"""Builds every stack of the app on a given cdk.App: shared by app.py and the tests."""

from __future__ import annotations

from dataclasses import dataclass

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks

from stacks.config import Config, load_config
from stacks.nag_acknowledgements import acknowledge_all
from stacks.network_stack import NetworkStack
from stacks.nodes_stack import NodesStack


@dataclass
class AppStacks:
    config: Config
    network: NetworkStack
    nodes: NodesStack


def build_app(app: cdk.App, *, nag: bool = True) -> AppStacks:
    config = load_config(app.node.get_all_context())
    env = cdk.Environment(account=None, region=None)
    network = NetworkStack(
        app,
        f"{config.prefix}-network",
        config=config,
        env=env,
        description="openstack-on-aws: VPC, subnets, Elastic IP, security group",
    )
    nodes = NodesStack(
        app,
        f"{config.prefix}-nodes",
        config=config,
        network=network,
        env=env,
        description="openstack-on-aws: the OpenStack nodes, their secret and artifact bucket",
    )
    for stack in (network, nodes):
        cdk.Tags.of(stack).add("openstack-aws:project", config.prefix)
    if nag:
        acknowledge_all(config, network, nodes)
        cdk.Validations.of(app).add_plugins(AwsSolutionsChecks())
    return AppStacks(config, network, nodes)
