"""Draws docs/architecture.png (graphviz): VPC, subnets, ENIs, nodes, and the orchestration. `make diagram`."""

from __future__ import annotations

from pathlib import Path

import graphviz

OUT = Path(__file__).resolve().parent / "architecture"


def node_cluster(vpc: graphviz.Digraph, name: str, label: str, enis: list[tuple[str, str]]) -> None:
    with vpc.subgraph(name=f"cluster_{name}") as box:
        box.attr(label=label, style="rounded,filled", fillcolor="#fff8e7", color="#c58b00")
        for eni, text in enis:
            box.node(f"{name}_{eni}", text, shape="box", style="filled", fillcolor="white")


def draw() -> Path:
    graph = graphviz.Digraph("openstack_on_aws", format="png")
    graph.attr(rankdir="LR", fontname="Helvetica", fontsize="11", compound="true", nodesep="0.25")
    graph.attr("node", fontname="Helvetica", fontsize="10")
    graph.attr("edge", fontname="Helvetica", fontsize="9")
    graph.node("internet", "Internet", shape="ellipse")
    graph.node("operator", "Operator\n(browser, CLI)", shape="ellipse")
    with graph.subgraph(name="cluster_aws") as aws:
        aws.attr(label="AWS account / region", style="dashed")
        with aws.subgraph(name="cluster_orch") as orch:
            orch.attr(label="Orchestration", style="rounded,filled", fillcolor="#eef3ff")
            orch.node("sfn", "Step Functions\ninstall state machine", shape="component")
            orch.node("lambdas", "Lambdas (Powertools)\ndiscover · wait online · run step\nstatus · EC2 fix · notify")
            orch.node("ssm", "SSM Run Command\none document per steps/NN-name.sh", shape="component")
            orch.node("secret", "Secrets Manager\nOpenStack passwords", shape="cylinder")
            orch.node("bucket", "S3 artifacts\n(Swift rings)", shape="cylinder")
            orch.node("sns", "SNS + alarm", shape="box")
            orch.edges([("sfn", "lambdas"), ("lambdas", "ssm"), ("lambdas", "sns")])
        with aws.subgraph(name="cluster_vpc") as vpc:
            vpc.attr(label="VPC 172.31.0.0/16 (one AZ)", style="rounded", color="#2b6cb0")
            vpc.node("igw", "Internet gateway\nEIP 1:1 → eth2", shape="box")
            vpc.node("nat", "NAT gateway", shape="box")
            with vpc.subgraph(name="cluster_a") as subnet_a:
                subnet_a.attr(label="Subnet A 172.31.32.0/24: management + VXLAN overlay", style="rounded,filled",
                              fillcolor="#eaf7ea")
                node_cluster(subnet_a, "controller", "controller (t3.xlarge)",
                             [("eth0", "eth0 .32.11"), ("eth1", "eth1 provider, no IP\n(MAC → router port)"),
                              ("eth2", "eth2 .33.11 public\nsrc/dst check off, MASQUERADE")])
                node_cluster(subnet_a, "compute", "compute1 (t3.xlarge, QEMU)",
                             [("eth0", "eth0 .32.21"), ("eth1", "eth1 provider, no IP")])
                node_cluster(subnet_a, "block", "block1 (t3.medium)\nCinder LVM disk", [("eth0", "eth0 .32.31")])
                node_cluster(subnet_a, "object", "object1, object2 (t3.medium)\n2 Swift XFS disks each",
                             [("eth0", "eth0 .32.41/.42")])
            vpc.node("subnet_b", "Subnet B 172.31.33.0/24\nprovider + public", shape="box", style="filled",
                     fillcolor="#fdecec")
    graph.edge("operator", "igw", label="Horizon / APIs\n(allowed_cidr)")
    graph.edge("igw", "internet", dir="both")
    graph.edge("controller_eth2", "subnet_b")
    graph.edge("controller_eth1", "subnet_b", style="dashed", label="router gateway port")
    graph.edge("compute_eth1", "subnet_b", style="dashed")
    graph.edge("subnet_b", "igw")
    graph.edge("controller_eth0", "nat", style="dotted", label="apt, SSM")
    graph.edge("nat", "igw", style="dotted")
    graph.edge("ssm", "controller_eth0", lhead="cluster_a", label="Run Command")
    graph.edge("controller_eth0", "secret", style="dotted", label="passwords")
    graph.edge("controller_eth0", "bucket", style="dotted", label="rings")
    return Path(graph.render(str(OUT), cleanup=True))


if __name__ == "__main__":
    print(draw())
