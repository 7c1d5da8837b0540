"""The SNS summary of a run: what ran and how long it took, or which step failed where, with its output tail."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from common import clock
from common.console import execution_url

SUBJECT_LIMIT = 100  # SNS


@dataclass(frozen=True)
class NotifyEvent:
    outcome: str  # SUCCEEDED | FAILED
    project: str
    execution_arn: str
    started: str
    steps: list[str] = field(default_factory=list)
    error: dict[str, Any] = field(default_factory=dict)  # the Catch's {"Error", "Cause"}
    run: str = "install"  # which machine: install | rebuild


def error_text(error: dict[str, Any]) -> tuple[str, str]:
    """(error name, operator message) from a Catch result; a Lambda's Cause is JSON with errorMessage."""
    name, cause = str(error.get("Error", "Error")), str(error.get("Cause", ""))
    try:
        parsed = json.loads(cause)
    except ValueError:
        parsed = None
    if isinstance(parsed, dict) and "errorMessage" in parsed:
        return str(parsed.get("errorType") or name), str(parsed["errorMessage"])
    return name, cause or "(no cause given)"


def compose(event: NotifyEvent) -> tuple[str, str]:
    minutes = max(0, round((clock.now() - clock.parse_timestamp(event.started)) / 60))
    link = f"Execution: {execution_url(event.execution_arn)}"
    if event.outcome == "SUCCEEDED":
        subject = f"[{event.project}] OpenStack {event.run} succeeded"
        body = f"The {event.run} ran {len(event.steps)} step(s) in {minutes} min: {', '.join(event.steps)}.\n\n{link}\n"
    else:
        name, message = error_text(event.error)
        subject = f"[{event.project}] OpenStack {event.run} FAILED: {name}"
        body = f"The {event.run} failed after {minutes} min.\n\nError: {name}\n{message}\n\n{link}\n"
    return subject[:SUBJECT_LIMIT], body


def notify(sns: Any, topic_arn: str, event: NotifyEvent) -> dict[str, str]:
    subject, body = compose(event)
    message_id = sns.publish(TopicArn=topic_arn, Subject=subject, Message=body)["MessageId"]
    return {"message_id": message_id, "subject": subject}
