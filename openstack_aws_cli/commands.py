"""The CLI's commands, each a function of boto3 clients and an output stream, so tests drive them against moto."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TextIO

from openstack_aws_cli.progress import StepRow, format_table, progress_line, step_rows
from openstack_aws_cli.resources import CliError, Resources

TERMINAL = ("SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED")
#: The last this many events of a step's log stream: the tail, where a failure's cause is.
LOG_TAIL_EVENTS = 5000
#: GetCommandInvocation returns only the head of each output (characters).
SSM_OUTPUT_LIMITS = {"StandardOutputContent": 24_000, "StandardErrorContent": 8_000}


@dataclass
class Clients:
    sfn: Any
    logs: Any
    ssm: Any
    secrets: Any


def _latest_execution(sfn: Any, arn: str) -> dict[str, Any] | None:
    executions = sfn.list_executions(stateMachineArn=arn, maxResults=10)["executions"]
    running = [e for e in executions if e["status"] == "RUNNING"]
    if running:
        return running[0]
    return max(executions, key=lambda e: e["startDate"]) if executions else None


def _name(execution: dict[str, Any]) -> str:
    # The ARN's last field is the execution's name (moto's list_executions leaves "name" unset).
    return str(execution["executionArn"].rsplit(":", 1)[-1])


def _history(sfn: Any, execution_arn: str) -> list[dict[str, Any]]:
    pages = sfn.get_paginator("get_execution_history").paginate(executionArn=execution_arn)
    return [event for page in pages for event in page["events"]]


def execution_rows(sfn: Any, state_machine_arn: str, execution: dict[str, Any]) -> list[StepRow]:
    definition = json.loads(sfn.describe_state_machine(stateMachineArn=state_machine_arn)["definition"])
    return step_rows(definition, _history(sfn, execution["executionArn"]), execution["status"])


def status(clients: Clients, resources: Resources, out: TextIO, now: datetime | None = None) -> None:
    """The current or last execution of each machine, step by step."""
    now = now or datetime.now(UTC)
    for title, key in (("install", "InstallStateMachineArn"), ("rebuild", "RebuildStateMachineArn")):
        if key not in resources.outputs:
            continue
        execution = _latest_execution(clients.sfn, resources.outputs[key])
        if execution is None:
            out.write(f"{title}: no execution yet\n\n")
            continue
        rows = execution_rows(clients.sfn, resources.outputs[key], execution)
        stop = execution.get("stopDate")
        elapsed = ((stop or now) - execution["startDate"]).total_seconds()
        out.write(f"{title}: {_name(execution)} {execution['status']} ({elapsed:.0f} s)\n")
        running = [r.label for r in rows if r.status == "running"]
        if running and execution["status"] == "RUNNING":
            out.write(f"running: {', '.join(running)}\n")
        if rows:
            out.write(format_table(rows, stop or now) + "\n")
        out.write("\n")


def _start(clients: Clients, arn: str, run_input: dict[str, Any], out: TextIO) -> str:
    running = clients.sfn.list_executions(stateMachineArn=arn, statusFilter="RUNNING")["executions"]
    if running:
        raise CliError(f"an execution is already running: {running[0]['executionArn']} (openstack-aws watch)")
    name = f"cli-{datetime.now(UTC):%Y%m%d-%H%M%S}"
    execution_arn = clients.sfn.start_execution(stateMachineArn=arn, name=name, input=json.dumps(run_input))[
        "executionArn"
    ]
    out.write(f"started {execution_arn}\nfollow it with: openstack-aws watch\n")
    return str(execution_arn)


def run(clients: Clients, resources: Resources, out: TextIO, from_step: str | None, only: list[str] | None) -> str:
    run_input: dict[str, Any] = {}
    if from_step:
        run_input["from_step"] = from_step
    if only:
        run_input["only"] = only
    return _start(clients, resources.install_arn, run_input, out)


def rebuild(clients: Clients, resources: Resources, out: TextIO) -> str:
    return _start(clients, resources.rebuild_arn, {}, out)


def logs(clients: Clients, resources: Resources, out: TextIO, step: str) -> None:
    """The output of the step's failed invocation, else its last one, from CloudWatch Logs (SSM as fallback)."""
    execution = _latest_execution(clients.sfn, resources.install_arn)
    rows = execution_rows(clients.sfn, resources.install_arn, execution) if execution else []
    known = sorted({r.step for r in rows})
    matching = [r for r in rows if r.step == step and r.command_id]
    if not matching:
        hint = f"steps of the last run: {', '.join(known)}" if known else "no run yet"
        raise CliError(f"no invocation of step {step!r} in the last install run ({hint})")
    row = next((r for r in matching if r.status == "failed"), matching[-1])
    group = resources.get("CommandLogGroup")
    streams = clients.logs.describe_log_streams(logGroupName=group, logStreamNamePrefix=f"{row.command_id}/")
    names = [s["logStreamName"] for s in streams.get("logStreams", [])]
    if names:
        for name in sorted(names):
            _write_stream_tail(clients.logs, group, name, out)
        return
    # No log stream (output to CloudWatch not set up, or expired): SSM keeps the first 24,000 characters.
    invocations = clients.ssm.list_command_invocations(CommandId=row.command_id)["CommandInvocations"]
    for invocation in invocations:
        detail = clients.ssm.get_command_invocation(CommandId=row.command_id, InstanceId=invocation["InstanceId"])
        out.write(f"== {invocation['InstanceId']} {detail['Status']} (from SSM; CloudWatch had no stream)\n")
        for key, limit in SSM_OUTPUT_LIMITS.items():
            text = detail.get(key, "")
            out.write(text)
            if len(text) >= limit:
                out.write(f"\n(cut: SSM keeps only the first {limit:,} characters; the rest is on the node)\n")


def _write_stream_tail(logs: Any, group: str, name: str, out: TextIO) -> None:
    """The stream's last events; a line up front says when earlier ones were left out."""
    page = logs.get_log_events(logGroupName=group, logStreamName=name, startFromHead=False, limit=LOG_TAIL_EVENTS)
    out.write(f"== {name}\n")
    if page["events"]:
        earlier = logs.get_log_events(
            logGroupName=group, logStreamName=name, startFromHead=False, limit=1, nextToken=page["nextBackwardToken"]
        )["events"]
        if earlier:
            out.write(f"(only the last {len(page['events'])} events; all of them: aws logs get-log-events "
                      f"--log-group-name {group} --log-stream-name {name} --start-from-head)\n")  # fmt: skip
    for event in page["events"]:
        out.write(event["message"].rstrip("\n") + "\n")


def endpoints(clients: Clients, resources: Resources, out: TextIO) -> None:
    secret = json.loads(clients.secrets.get_secret_value(SecretId=resources.get("SecretArn"))["SecretString"])
    out.write(
        f"Horizon:   {resources.get('HorizonUrl')}\n"
        f"Keystone:  {resources.get('KeystonePublicUrl')}\n"
        f"domain:    Default\nuser:      admin\npassword:  {secret['ADMIN_PASS']}\n"
    )
    if "PublicCaCommand" in resources.outputs:
        out.write(f"CA:        {resources.outputs['PublicCaCommand']}\n")
    if "PublicAccess" in resources.outputs:
        out.write(f"access:    {resources.outputs['PublicAccess']}\n")
    floating = resources.outputs.get("FloatingIps", "")
    for pair in [] if floating.startswith("none") else floating.split():
        public, _, private = pair.partition("=")
        out.write(f"floating:  {public} (OpenStack floating IP {private}; verify puts the first on verify-instance)\n")


def watch(
    clients: Clients,
    resources: Resources,
    out: TextIO,
    *,
    interval: float = 10.0,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> int:
    """Follows the running (or last) install or rebuild until it ends; 0 if it succeeded, 1 otherwise."""
    candidates = [k for k in ("InstallStateMachineArn", "RebuildStateMachineArn") if k in resources.outputs]
    executions = [(k, e) for k in candidates if (e := _latest_execution(clients.sfn, resources.outputs[k]))]
    if not executions:
        raise CliError("no execution to watch: start one with `openstack-aws run`")
    key, execution = next(((k, e) for k, e in executions if e["status"] == "RUNNING"), executions[0])
    arn = resources.outputs[key]
    reported: set[str] = set()
    while True:
        execution = clients.sfn.describe_execution(executionArn=execution["executionArn"])
        rows = execution_rows(clients.sfn, arn, execution)
        now = clock()
        for row in rows:
            if row.status in ("ok", "failed") and row.label not in reported:
                reported.add(row.label)
                out.write(f"{row.status:>6}  {row.label} ({row.seconds(now) or 0:.0f} s)\n")
        if execution["status"] in TERMINAL:
            out.write(f"{_name(execution)}: {execution['status']}\n")
            if execution["status"] != "SUCCEEDED":
                out.write(f"cause: {execution.get('cause') or execution.get('error') or 'see openstack-aws status'}\n")
            return 0 if execution["status"] == "SUCCEEDED" else 1
        out.write(progress_line(rows, execution["startDate"], now) + "\n")
        out.flush()
        sleep(interval)
