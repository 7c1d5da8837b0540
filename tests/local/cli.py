"""`make local` / `make local-rebuild` / `make local-down`: the whole product offline.

run: synthesize the app; boot the rig's nodes (reused when running); create the nodes' AWS side in moto; execute
the synthesized install state machine in moto's engine with the real Lambdas in-process, SSM played by the rig;
follow it live (the operator CLI's `watch`); print the local cloud's endpoints.
rebuild: the same, with the nightly rebuild machine (tests/local/rebuild.py): every node back to its launch
state, data disks wiped, then the install.
"""

from __future__ import annotations

import os

# Before the Lambdas' Powertools objects exist: their JSON logs and EMF metrics would drown the progress lines
# (on AWS they go to CloudWatch; here the step output and the progress are what the operator reads).
os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import aws_cdk as cdk

from stacks.app_builder import build_app
from tests.conftest import ROOT, cdk_json_context
from tests.local.aws_side import PROJECT
from tests.local.rebuild import execute_rebuild
from tests.local.session import local_aws, write_report
from tests.rig import cli as rig_cli
from tests.rig import config as rig_config
from tests.rig import nodes as rig_nodes
from tests.rig.runner import kill_running_steps
from tests.rig.sh import RigError

BUILD = rig_config.per_release(ROOT / "build" / "local")  # build/local-trixie for OS_RELEASE=trixie, as the rig


def synth_context() -> dict[str, Any]:
    """cdk.json's context with the rig's compute nodes (`-c compute_count=N`: the machine must expect each of them
    for discovery, the agents' wait and the compute steps' targets) and its release (userdata checks it)."""
    return {**cdk_json_context(), "compute_count": len(rig_config.nodes_for_role("compute")),
            "os_release": rig_config.OS_RELEASE}


def synthesize() -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The orchestration template and the documents templates, synthesized as `make synth` does (cdk-nag too)."""
    app = cdk.App(context=synth_context(), outdir=str(BUILD / "cdk.out"))
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
        "# this machine is inside the emulated VPC: internal endpoints (the public ones name the Elastic IP, which\n"
        "# exists only in the rig's namespaces and must never be routed from here)\n"
        "export OS_INTERFACE=internal OS_REGION_NAME=RegionOne\n"
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
        f"  openrc:   {openrc}   (internal endpoints; source it where python3-openstackclient is installed)\n"
        "  CLI on the controller: python3 -m tests.rig.cli exec controller -- "
        "bash -lc '. /root/admin-openrc && openstack server list'\n"
        "  re-run:   make local   |   resume: make local FROM_STEP=<step>   |   remove: make local-down\n"
    )


def execute(run_input: dict[str, Any]) -> int:
    t0 = time.monotonic()
    orchestration, documents = synthesize()
    timings = {"synth": time.monotonic() - t0}
    t = time.monotonic()
    with local_aws(orchestration, documents) as aws:
        timings["aws_side"] = time.monotonic() - t
        aws.start(aws.install_arn, f"{PROJECT}-install", run_input)
        t = time.monotonic()
        code = aws.follow({"InstallStateMachineArn": aws.install_arn})
        timings["state_machine"] = time.monotonic() - t
        checks = aws.checks(code)
    timings["total"] = time.monotonic() - t0
    # The outside checks (floating IPs, public APIs, Horizon in a browser) judge the run as much as the machine.
    failed = [c["name"] for c in checks if c["ok"] is False]
    if code == 0 and failed:
        print(f"make local: the install machine succeeded but check(s) failed: {', '.join(failed)}", file=sys.stderr)
        code = 1
    write_report(BUILD / "report.json", code, timings, checks)
    if code == 0:
        print_endpoints()
    return code


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m tests.local.cli", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="boot or reuse the nodes and run the install state machine on them")
    run.add_argument("--from-step", default=os.environ.get("FROM_STEP", ""), help="resume at this step")
    run.add_argument("--only", default=os.environ.get("ONLY", ""), help="comma-separated steps to run")
    sub.add_parser("rebuild", help="boot or reuse the nodes and run the nightly rebuild machine on them")
    sub.add_parser("down", help="remove the nodes and everything the rig made")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("make local needs root (systemd-nspawn, bridges, nft): run it as root", file=sys.stderr)
        return 2
    try:
        if args.command == "down":
            return rig_cli.main(["down"])
        lock = rig_cli._lock(f"local {args.command}")  # noqa: F841  (held until exit: no rig command beside us)
        rig_cli.up()
        if args.command == "rebuild":
            t0 = time.monotonic()
            orchestration, documents = synthesize()
            print(f"[local-rebuild] synthesized in {time.monotonic() - t0:.0f} s", flush=True)
            return execute_rebuild(orchestration, documents, BUILD / "rebuild-report.json")
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
