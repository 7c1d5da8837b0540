"""`openstack-aws` entry point: argument parsing and AWS clients (standard profile/region settings)."""

from __future__ import annotations

import argparse
import sys

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from openstack_aws_cli import commands
from openstack_aws_cli.resources import CliError, load_resources


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="openstack-aws", description="Operate an openstack-on-aws deployment.")
    root.add_argument("--prefix", default="openstack-aws", help="the deployment's prefix (config key 'prefix')")
    root.add_argument("--profile", help="AWS profile (default: the standard AWS settings)")
    root.add_argument("--region", help="AWS region (default: the standard AWS settings)")
    sub = root.add_subparsers(dest="command", required=True)
    sub.add_parser("status", help="the current or last install and rebuild, step by step")
    run = sub.add_parser("run", help="start an install run")
    run.add_argument("--from-step", help="resume at this step")
    run.add_argument("--only", help="comma-separated steps to run")
    sub.add_parser("rebuild", help="start a rebuild: root volumes to launch state, data disks wiped, install")
    logs = sub.add_parser("logs", help="a step's output: the failed invocation, else the last one")
    logs.add_argument("step")
    sub.add_parser("endpoints", help="Horizon URL and admin credentials")
    watch = sub.add_parser("watch", help="follow the running install or rebuild until it ends")
    watch.add_argument("--interval", type=float, default=10.0, help="seconds between refreshes")
    return root


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    session = boto3.Session(profile_name=args.profile, region_name=args.region)
    clients = commands.Clients(
        sfn=session.client("stepfunctions"),
        logs=session.client("logs"),
        ssm=session.client("ssm"),
        secrets=session.client("secretsmanager"),
    )
    out = sys.stdout
    try:
        resources = load_resources(session.client("cloudformation"), args.prefix)
        if args.command == "status":
            commands.status(clients, resources, out)
        elif args.command == "run":
            only = [s.strip() for s in args.only.split(",") if s.strip()] if args.only else None
            commands.run(clients, resources, out, args.from_step, only)
        elif args.command == "rebuild":
            commands.rebuild(clients, resources, out)
        elif args.command == "logs":
            commands.logs(clients, resources, out, args.step)
        elif args.command == "endpoints":
            commands.endpoints(clients, resources, out)
        elif args.command == "watch":
            return commands.watch(clients, resources, out, interval=args.interval)
    except CliError as error:
        print(f"openstack-aws: {error}", file=sys.stderr)
        return 2
    except (BotoCoreError, ClientError) as error:
        print(f"openstack-aws: AWS call failed: {error} (check AWS_PROFILE, AWS_REGION, credentials)", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
