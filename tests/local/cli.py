"""`make local` / `make local-down`: the whole product offline.

run: synthesize the app; boot the rig's nodes (reused when running); create the nodes' AWS side in moto; execute
the synthesized install state machine in moto's engine with the real Lambdas in-process, SSM played by the rig;
follow it live (the operator CLI's `watch`); print the local cloud's endpoints.
"""

from __future__ import annotations

import os

# Before the Lambdas' Powertools objects exist: their JSON logs and EMF metrics would drown the progress lines
# (on AWS they go to CloudWatch; here the step output and the progress are what the operator reads).
os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import boto3
from moto import mock_aws

from openstack_aws_cli import commands
from openstack_aws_cli.resources import Resources
from stacks.app_builder import build_app
from tests.conftest import ROOT, cdk_json_context
from tests.local.aws_side import PROJECT, create_nodes, route_eni_changes_to_the_rig
from tests.local.ssm_standin import RigSsm, documents_from_templates
from tests.moto_engine import (
    MOTO_CONFIG,
    create_functions,
    create_state_machine,
    create_topics,
    patch_engine,
    render_definition,
    template_refs,
)
from tests.rig import cli as rig_cli
from tests.rig import config as rig_config
from tests.rig import nodes as rig_nodes
from tests.rig import proofs
from tests.rig.runner import kill_running_steps
from tests.rig.sh import RigError

BUILD = ROOT / "build" / "local"
REGION = "eu-west-1"
#: A Wait state of the machine lasts at most this long here: enough to poll a real command, no more.
LOCAL_POLL_SECONDS = 3.0
MAX_BACKOFF_SECONDS = 5.0


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


def synthesize() -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The orchestration template and the documents templates, synthesized as `make synth` does (cdk-nag too)."""
    app = cdk.App(context=cdk_json_context(), outdir=str(BUILD / "cdk.out"))
    stacks = build_app(app)
    assembly = app.synth()
    orchestration = assembly.get_stack_by_name(stacks.orchestration.stack_name).template
    documents = [assembly.get_stack_by_name(s.stack_name).template for s in stacks.documents]
    return orchestration, documents


def write_openrc() -> Path:
    secrets = rig_nodes.rig_secrets()
    controller = rig_config.node("controller").mgmt_ip
    path = BUILD / "admin-openrc"
    path.write_text(
        f"export OS_USERNAME=admin OS_PASSWORD={secrets['ADMIN_PASS']} OS_PROJECT_NAME=admin\n"
        "export OS_USER_DOMAIN_NAME=Default OS_PROJECT_DOMAIN_NAME=Default OS_IDENTITY_API_VERSION=3\n"
        f"export OS_AUTH_URL=http://{controller}:5000/v3\n"
    )
    path.chmod(0o600)
    return path


def print_endpoints() -> None:
    controller = rig_config.node("controller").mgmt_ip
    openrc = write_openrc()
    print(
        "\nThe local cloud (reachable from this machine):\n"
        f"  Horizon:  http://{controller}/   (domain Default, user admin, password in {openrc})\n"
        f"  Keystone: http://{controller}:5000/v3\n"
        f"  openrc:   {openrc}   (source it where python3-openstackclient is installed)\n"
        "  CLI on the controller: python3 -m tests.rig.cli exec controller -- "
        "bash -lc '. /root/admin-openrc && openstack server list'\n"
        "  re-run:   make local   |   resume: make local FROM_STEP=<step>   |   remove: make local-down\n"
    )


def execute(run_input: dict[str, Any]) -> int:
    timings: dict[str, float] = {}
    checks: list[dict[str, Any]] = []
    t0 = time.monotonic()
    orchestration, documents = synthesize()
    timings["synth"] = time.monotonic() - t0
    os.environ.setdefault("AWS_DEFAULT_REGION", REGION)
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        os.environ.setdefault(key, "local")  # moto: no real credentials, never a real endpoint
    patcher = Patcher()
    with mock_aws(config=MOTO_CONFIG):
        try:
            t = time.monotonic()
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
            arn = create_state_machine(f"{PROJECT}-install", render_definition(orchestration, refs))
            timings["aws_side"] = time.monotonic() - t
            sfn = boto3.client("stepfunctions")
            name = f"local-{time.strftime('%Y%m%d-%H%M%S')}"
            sfn.start_execution(stateMachineArn=arn, name=name, input=json.dumps(run_input))
            print(f"[local] execution {name} of {PROJECT}-install started with input {json.dumps(run_input)}",
                  flush=True)  # fmt: skip
            t = time.monotonic()
            clients = commands.Clients(sfn, boto3.client("logs"), boto3.client("ssm"), None)
            resources = Resources(PROJECT, {"InstallStateMachineArn": arn, "CommandLogGroup": log_group})
            code = commands.watch(clients, resources, sys.stdout, interval=10)
            timings["state_machine"] = time.monotonic() - t
            out = sys.stdout
            out.write("\n")
            commands.status(clients, resources, out)
            checks = standin.checks()
            if code == 0:  # the probe side of the floating IP: no node can stand outside the VPC (tests/rig/proofs.py)
                checks.append(proofs.floating_ip_from_outside("floating-ip-from-outside", "verify"))
            for check in checks:
                verdict = {True: "ok", False: "FAIL", None: "skip"}[check["ok"]]
                out.write(f"check {verdict:<4} {check['name']:<26} {check['detail']}\n")
        finally:
            patcher.undo()
    timings["total"] = time.monotonic() - t0
    print("[local] " + ", ".join(f"{k} {v:.0f} s" for k, v in timings.items()), flush=True)
    BUILD.mkdir(parents=True, exist_ok=True)
    report = {"succeeded": code == 0, "seconds": timings, "checks": checks}
    (BUILD / "report.json").write_text(json.dumps(report, indent=1) + "\n")
    if code == 0:
        print_endpoints()
    return code


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m tests.local.cli", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="boot or reuse the nodes and run the install state machine on them")
    run.add_argument("--from-step", default=os.environ.get("FROM_STEP", ""), help="resume at this step")
    run.add_argument("--only", default=os.environ.get("ONLY", ""), help="comma-separated steps to run")
    sub.add_parser("down", help="remove the nodes and everything the rig made")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("make local needs root (systemd-nspawn, bridges, nft): run it as root", file=sys.stderr)
        return 2
    try:
        if args.command == "down":
            return rig_cli.main(["down"])
        lock = rig_cli._lock("local")  # noqa: F841  (held until exit: no rig command may run beside us)
        rig_cli.up()
        run_input: dict[str, Any] = {}
        if args.from_step:
            run_input["from_step"] = args.from_step
        if args.only:
            run_input["only"] = [s.strip() for s in args.only.split(",") if s.strip()]
        return execute(run_input)
    except RigError as error:
        print(f"make local: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        kill_running_steps()
        print("\nmake local: interrupted; the nodes are still up: `make local-down` removes everything", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
