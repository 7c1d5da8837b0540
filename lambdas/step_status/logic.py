"""Poll one SendCommand: aggregate its per-instance invocations; a failure raises `StepFailed` with the output tail.

InProgress while any instance is pending or running, Success when all succeeded. A failed, cancelled, undelivered
or timed-out invocation (or a command still running past its deadline) fails the step, naming the node.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError
from common import clock
from common.errors import StepFailed
from common.models import CommandRef

FAILED = frozenset({"Failed", "Cancelled", "TimedOut", "Cancelling"})
TAIL_LINES = 25
TAIL_CHARS = 1500
#: GetCommandInvocation returns only the first this many characters of each; the agent's CloudWatch Logs streams
#: (`<command-id>/<instance-id>/<plugin>/stdout|stderr`) hold all of it, so the tail comes from there.
SSM_OUTPUT_LIMITS = {"stdout": 24_000, "stderr": 8_000}
TAIL_EVENTS = 100


@dataclass(frozen=True)
class StepStatus:
    status: str  # InProgress | Success
    counts: dict[str, int]
    duration_seconds: float

    def as_dict(self) -> dict[str, Any]:
        return {"status": self.status, "counts": self.counts, "duration_seconds": round(self.duration_seconds)}


def invocations(ssm: Any, command_id: str) -> dict[str, dict[str, Any]]:
    pages = ssm.get_paginator("list_command_invocations").paginate(CommandId=command_id)
    return {i["InstanceId"]: i for page in pages for i in page["CommandInvocations"]}


def tail(text: str, lines: int = TAIL_LINES, chars: int = TAIL_CHARS) -> str:
    kept = "\n".join(text.rstrip().splitlines()[-lines:])
    return kept[-chars:]


def logged_output(logs: Any, log_group: str, command_id: str, instance_id: str) -> dict[str, str]:
    """The last events of the invocation's stdout and stderr streams ({} when there are none or they cannot be
    read: the SSM copy is the fallback, and a failure message must never be lost to a Logs error)."""
    if logs is None or not log_group:
        return {}
    found: dict[str, str] = {}
    try:
        # The plugin part of the name is the document's step name: found by prefix, not guessed.
        pages = logs.get_paginator("describe_log_streams").paginate(
            logGroupName=log_group, logStreamNamePrefix=f"{command_id}/{instance_id}/"
        )
        for stream in (s for page in pages for s in page["logStreams"]):
            kind = stream["logStreamName"].rsplit("/", 1)[-1]
            if kind in SSM_OUTPUT_LIMITS:
                events = logs.get_log_events(
                    logGroupName=log_group, logStreamName=stream["logStreamName"], startFromHead=False,
                    limit=TAIL_EVENTS,
                )["events"]  # fmt: skip
                found[kind] = "\n".join(e["message"].rstrip("\n") for e in events)
    except ClientError:
        return {}
    return found


def output_tail(
    ssm: Any, command_id: str, instance_id: str, logs: Any = None, log_group: str = ""
) -> tuple[str, int | None]:
    """The last lines of stderr and stdout of one invocation, and its exit code."""
    try:
        result = ssm.get_command_invocation(CommandId=command_id, InstanceId=instance_id)
    except ssm.exceptions.InvocationDoesNotExist:
        return "(no output: the command never reached this instance)", None
    logged = logged_output(logs, log_group, command_id, instance_id)
    parts = []
    for label, key in (("stderr", "StandardErrorContent"), ("stdout", "StandardOutputContent")):
        text = logged.get(label) or result.get(key, "")
        if text.strip():
            limit = SSM_OUTPUT_LIMITS[label]
            cut = label not in logged and len(text) >= limit
            what = f"last lines of the first {limit:,} characters, all SSM keeps" if cut else "last lines"
            parts.append(f"--- {label} ({what}) ---\n{tail(text)}")
    code = result.get("ResponseCode")
    return "\n".join(parts) or "(no output)", code if isinstance(code, int) and code >= 0 else None


def failure_message(ref: CommandRef, instance_id: str, reason: str, output: str) -> str:
    node = ref.instances.get(instance_id, instance_id)
    where = (
        f"full output: CloudWatch Logs group {ref.log_group}, streams {ref.command_id}/{instance_id}/"
        "aws-runShellScript/stdout and .../stderr"
        if ref.log_group
        else f"full output: Systems Manager > Run Command > {ref.command_id}"
    )
    return (
        f"step '{ref.step}' failed on node {node} ({instance_id}, role {ref.role}): {reason}\n{where}\n"
        f"fix the cause, then start the state machine with {{\"from_step\": \"{ref.resume_from or ref.step}\"}} "
        f"(a failure stops its whole wave), or run the document {ref.document} on {instance_id} alone\n{output}"
    )


def poll(ssm: Any, ref: CommandRef, logs: Any = None) -> StepStatus:
    found = invocations(ssm, ref.command_id)
    duration = clock.now() - ref.sent_at
    for instance_id in sorted(found):
        invocation = found[instance_id]
        if invocation["Status"] in FAILED:
            output, code = output_tail(ssm, ref.command_id, instance_id, logs, ref.log_group)
            reason = invocation.get("StatusDetails") or invocation["Status"]
            reason += f" (exit code {code})" if code is not None else ""
            raise StepFailed(failure_message(ref, instance_id, reason, output))
    counts = Counter(found[i]["Status"] if i in found else "Pending" for i in ref.instances)
    if counts.get("Success", 0) == len(ref.instances):
        return StepStatus("Success", dict(counts), duration)
    if clock.now() > ref.deadline:
        late = sorted(i for i in ref.instances if found.get(i, {}).get("Status") != "Success")
        output, _ = output_tail(ssm, ref.command_id, late[0], logs, ref.log_group)
        limit = round(ref.deadline - ref.sent_at)
        raise StepFailed(failure_message(ref, late[0], f"still not finished {limit} s after it was sent", output))
    return StepStatus("InProgress", dict(counts), duration)
