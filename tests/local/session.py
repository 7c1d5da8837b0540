"""One local run's AWS side, shared by `make local` and `make local-rebuild`: moto with the synthesized machines'
Lambdas in-process, the nodes' instances and ENIs mirroring the rig, SSM played by the rig; then following an
execution, the checks (the steps' CHECK lines and the proofs from outside the nodes) and the report."""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import boto3
from moto import mock_aws
from moto.sns import sns_backends

from openstack_aws_cli import commands
from openstack_aws_cli.resources import Resources
from tests.local.aws_side import PROJECT, create_nodes, route_eni_changes_to_the_rig
from tests.local.ssm_standin import RigSsm, documents_from_templates
from tests.moto_engine import (
    ACCOUNT,
    MOTO_CONFIG,
    create_functions,
    create_state_machine,
    create_topics,
    patch_engine,
    render_definition,
    template_refs,
)
from tests.rig import config as rig_config
from tests.rig import proofs
from tests.rig.config import NodeSpec

REGION = "eu-west-1"
#: A Wait state of the machine lasts at most this long here: enough to poll a real command, no more.
LOCAL_POLL_SECONDS = 3.0
MAX_BACKOFF_SECONDS = 5.0
#: How often the progress is printed while an execution runs.
WATCH_SECONDS = 10.0


class Patcher:
    """monkeypatch.setattr/setenv outside pytest, undone at the end."""

    def __init__(self) -> None:
        self._undo: list[Callable[[], None]] = []

    def setattr(self, target: Any, name: str, value: Any) -> None:
        old = getattr(target, name)
        self._undo.append(lambda: setattr(target, name, old))
        setattr(target, name, value)

    def setenv(self, key: str, value: str) -> None:
        old = os.environ.get(key)
        self._undo.append(lambda: os.environ.__setitem__(key, old) if old is not None else os.environ.pop(key, None))
        os.environ[key] = value

    def undo(self) -> None:
        while self._undo:
            self._undo.pop()()


@dataclass
class LocalAws:
    orchestration: dict[str, Any]
    refs: dict[str, str]
    patcher: Patcher
    instances: dict[str, NodeSpec]  # moto instance ID -> the rig node playing it
    standin: RigSsm
    log_group: str
    install_arn: str
    clients: commands.Clients

    def start(self, arn: str, machine: str, run_input: dict[str, Any]) -> None:
        name = f"local-{time.strftime('%Y%m%d-%H%M%S')}"
        self.clients.sfn.start_execution(stateMachineArn=arn, name=name, input=json.dumps(run_input))
        print(f"[local] execution {name} of {machine} started with input {json.dumps(run_input)}", flush=True)

    def follow(self, arns: dict[str, str], out: TextIO = sys.stdout) -> int:
        """Watch the running execution of `arns` (the CLI's `watch`) to its end, then print the machines' status."""
        resources = Resources(PROJECT, {**arns, "CommandLogGroup": self.log_group})
        code = commands.watch(self.clients, resources, out, interval=WATCH_SECONDS)
        out.write("\n")
        commands.status(self.clients, resources, out)
        return code

    def notifications(self) -> list[str]:
        """The subjects the machines published to their SNS topics (on AWS: the e-mails)."""
        backend = sns_backends[ACCOUNT][REGION]
        return [subject or "" for topic in backend.topics.values() for _, _, subject, _, _ in topic.sent_notifications]

    def checks(self, code: int, out: TextIO = sys.stdout) -> list[dict[str, Any]]:
        """The steps' CHECK lines and, after a successful run, the proofs only the outside can give; printed."""
        checks = self.standin.checks()
        if code == 0:  # the probe side of the floating IP: no node can stand outside the VPC (tests/rig/proofs.py)
            checks += proofs.from_outside()
        for check in checks:
            verdict = {True: "ok", False: "FAIL", None: "skip"}[check["ok"]]
            out.write(f"check {verdict:<4} {check['name']:<26} {check['detail']}\n")
        return checks


@contextlib.contextmanager
def local_aws(orchestration: dict[str, Any], documents: list[dict[str, Any]]) -> Iterator[LocalAws]:
    """moto with the template's topics and Lambdas, the nodes, SSM played by the rig and the install machine."""
    patcher = Patcher()
    # moto: no real credentials, never a real endpoint
    for key, value in (("AWS_DEFAULT_REGION", REGION), ("AWS_ACCESS_KEY_ID", "local"), ("AWS_SECRET_ACCESS_KEY", "local")):
        if key not in os.environ:
            patcher.setenv(key, value)
    with mock_aws(config=MOTO_CONFIG):
        try:
            refs = template_refs(orchestration, REGION)
            create_topics(orchestration, refs)
            create_functions(orchestration, refs, patcher.setenv)
            patch_engine(patcher.setattr, wait=lambda s: time.sleep(min(s, LOCAL_POLL_SECONDS)),
                         backoff=lambda s: time.sleep(min(s, MAX_BACKOFF_SECONDS)))  # fmt: skip
            created = create_nodes(REGION)
            route_eni_changes_to_the_rig(patcher.setattr, created)
            instances = {n["instance_id"]: rig_config.node(name) for name, n in created.items()}
            standin = RigSsm(documents_from_templates([orchestration, *documents]), instances).install(patcher.setattr)
            log_group = refs.get(next(k for k in refs if k.startswith("CommandLogs")), f"/{PROJECT}/run-command")
            boto3.client("logs").create_log_group(logGroupName=log_group)
            install_arn = create_state_machine(f"{PROJECT}-install", render_definition(orchestration, refs))
            clients = commands.Clients(boto3.client("stepfunctions"), boto3.client("logs"), boto3.client("ssm"), None)
            yield LocalAws(orchestration, refs, patcher, instances, standin, log_group, install_arn, clients)
        finally:
            patcher.undo()


def write_report(path: Path, code: int, timings: dict[str, float], checks: list[dict[str, Any]],
                 **extra: Any) -> None:  # fmt: skip
    print("[local] " + ", ".join(f"{k} {v:.0f} s" for k, v in timings.items()), flush=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    report = {"succeeded": code == 0, "seconds": timings, "checks": checks, **extra}
    path.write_text(json.dumps(report, indent=1) + "\n")
