"""Builds every stack of the app on a given cdk.App: shared by app.py and the tests."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks

from stacks.checkov_skips import skip_all
from stacks.config import DEPLOYED_IDENTITY_KEY, Config, load_config
from stacks.deployed_identity import check_unchanged
from stacks.documents_stack import DocumentsStack, documents_stacks
from stacks.nag_acknowledgements import acknowledge_all, acknowledge_orchestration, acknowledge_rebuild
from stacks.network_stack import NetworkStack
from stacks.nodes_stack import NodesStack
from stacks.orchestration_stack import OrchestrationStack
from stacks.step_catalog import STEPS_DIR, load_steps


@dataclass
class AppStacks:
    config: Config
    network: NetworkStack
    nodes: NodesStack
    orchestration: OrchestrationStack
    documents: list[DocumentsStack]


def build_app(app: cdk.App, *, nag: bool = True, steps_dir: Path = STEPS_DIR) -> AppStacks:
    context = app.node.get_all_context()
    config = load_config(context)
    check_unchanged(context.get(DEPLOYED_IDENTITY_KEY), config)
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
    steps = load_steps(steps_dir)
    documents = documents_stacks(app, config, steps, env=env)
    orchestration = OrchestrationStack(
        app,
        f"{config.prefix}-orchestration",
        config=config,
        nodes=nodes,
        steps=steps,
        documents=documents,
        rebuild_steps=load_steps(steps_dir / "rebuild") if (steps_dir / "rebuild").is_dir() else [],
        env=env,
        description="openstack-on-aws: the install state machine, its Lambdas, notifications and alarm",
    )
    for stack in (network, nodes, *documents, orchestration):
        cdk.Tags.of(stack).add("openstack-aws:project", config.prefix)
    skip_all(network, nodes, orchestration, *documents)
    if nag:
        acknowledge_all(config, network, nodes)
        acknowledge_orchestration(orchestration)
        acknowledge_rebuild(orchestration)
        cdk.Validations.of(app).add_plugins(AwsSolutionsChecks())
    return AppStacks(config, network, nodes, orchestration, documents)
