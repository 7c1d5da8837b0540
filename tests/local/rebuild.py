"""`make local-rebuild`: the synthesized nightly rebuild machine, with the real Lambdas, on the rig's nodes.

Its CreateReplaceRootVolumeTask resets each node's container to the base image and boots it again
(tests/local/root_volumes.py), its SSM wait needs each agent's first ping after that restart, the real wipe document
blanks the data disks, and the install machine it starts (startExecution.sync:2) installs and verifies everything.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import boto3

from tests.local.aws_side import PROJECT
from tests.local.rebuild_phases import phase_seconds
from tests.local.root_volumes import RigRootVolumes
from tests.local.session import local_aws, write_report
from tests.moto_engine import REBUILD, create_state_machine, render_definition, state_machine_logical_id


def _history(arn: str) -> list[dict[str, Any]]:
    sfn = boto3.client("stepfunctions")
    (execution,) = sfn.list_executions(stateMachineArn=arn)["executions"]
    pages = sfn.get_paginator("get_execution_history").paginate(executionArn=execution["executionArn"])
    return [event for page in pages for event in page["events"]]


def execute_rebuild(orchestration: dict[str, Any], documents: list[dict[str, Any]], report: Path) -> int:
    """Run the rebuild machine to its end; print and write its figures (per phase, per node's restore)."""
    with local_aws(orchestration, documents) as aws:
        root_volumes = RigRootVolumes(aws.instances).install(aws.patcher.setattr)
        refs = {**aws.refs, state_machine_logical_id(orchestration): aws.install_arn}
        arn = create_state_machine(f"{PROJECT}-rebuild", render_definition(orchestration, refs, REBUILD))
        t0 = time.monotonic()
        aws.start(arn, f"{PROJECT}-rebuild", {})
        code = aws.follow({"RebuildStateMachineArn": arn, "InstallStateMachineArn": aws.install_arn})
        took = time.monotonic() - t0
        checks = aws.checks(code)
        phases = phase_seconds(_history(arn))
        restores = root_volumes.seconds_by_node()
        notified = aws.notifications()
    print("[local-rebuild] restore per node: " + ", ".join(f"{n} {s:.0f} s" for n, s in sorted(restores.items())))
    print("[local-rebuild] notified: " + ("; ".join(notified) or "nothing"), flush=True)
    write_report(report, code, {**phases, "watched": round(took, 1)}, checks, restore_seconds_by_node=restores,
                 notified=notified)  # fmt: skip
    return code
