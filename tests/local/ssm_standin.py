"""SSM Run Command, played by the rig: SendCommand runs the document's script in each target node's container.

The operations the Lambdas call answer from real runs: statuses (InProgress, Success, Failed, TimedOut), exit
codes and output. The script is the document's own `runCommand` text from the synthesized template, so what runs
here is byte for byte what SSM would run on EC2.
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import botocore.client

from tests.moto_engine import SetAttr
from tests.rig import nodes
from tests.rig.config import NodeSpec
from tests.rig.runner import run_script_on

#: SSM keeps at most this much of an invocation's output (the rest is in CloudWatch Logs on AWS).
OUTPUT_LIMIT = 24_000


@dataclass(frozen=True)
class Document:
    name: str
    script: str
    timeout: int


def documents_from_templates(templates: list[dict[str, Any]]) -> dict[str, Document]:
    """Every AWS::SSM::Document of the synthesized templates: its name, script and default executionTimeout."""
    found: dict[str, Document] = {}
    for template in templates:
        for resource in template.get("Resources", {}).values():
            if resource["Type"] != "AWS::SSM::Document":
                continue
            props = resource["Properties"]
            content = props["Content"]
            (step,) = content["mainSteps"]
            timeout = int(content["parameters"]["executionTimeout"]["default"])
            found[props["Name"]] = Document(props["Name"], "\n".join(step["inputs"]["runCommand"]) + "\n", timeout)
    return found


@dataclass
class Invocation:
    instance_id: str
    spec: NodeSpec
    status: str = "InProgress"
    response_code: int = -1
    output: str = ""
    started: datetime = field(default_factory=lambda: datetime.now(UTC))
    checks: list[dict[str, Any]] = field(default_factory=list)  # the step's CHECK lines, parsed by the rig


@dataclass
class RigSsm:
    documents: dict[str, Document]
    instances: dict[str, NodeSpec]  # moto instance ID -> the rig node playing it
    commands: dict[str, dict[str, Invocation]] = field(default_factory=dict)
    threads: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def install(self, setattr: SetAttr) -> RigSsm:
        original = botocore.client.BaseClient._make_api_call
        standin = self

        def make_api_call(client: Any, operation: str, params: dict[str, Any]) -> Any:
            if client.meta.service_model.service_name == "ssm" and hasattr(standin, operation):
                return getattr(standin, operation)(params)
            return original(client, operation, params)

        setattr(botocore.client.BaseClient, "_make_api_call", make_api_call)
        return self

    # --- the operations (boto3 response shapes) ---------------------------------------------------------------

    def SendCommand(self, params: dict[str, Any]) -> dict[str, Any]:
        document = self.documents.get(params["DocumentName"])
        if document is None:
            raise ValueError(f"no SSM document {params['DocumentName']!r} in the synthesized templates")
        timeout = int(params.get("Parameters", {}).get("executionTimeout", [document.timeout])[0])
        command_id = str(uuid.uuid4())
        invocations = {i: Invocation(i, self.instances[i]) for i in params["InstanceIds"]}
        with self._lock:
            self.commands[command_id] = invocations
        for invocation in invocations.values():
            thread = threading.Thread(
                target=self._run,
                args=(invocation, document, timeout),
                daemon=True,
                name=f"{document.name}@{invocation.spec.name}",
            )
            thread.start()
            self.threads.append(thread)
        return {"Command": {"CommandId": command_id, "DocumentName": document.name, "InstanceIds": params["InstanceIds"],
                            "Status": "Pending"}}  # fmt: skip

    def _run(self, invocation: Invocation, document: Document, timeout: int) -> None:
        stem = f"local-{document.name}"
        result = run_script_on(invocation.spec, document.name, document.script, timeout, stem)
        output = "\n".join(result.tail)
        with self._lock:
            invocation.output = output[-OUTPUT_LIMIT:]
            invocation.response_code = result.rc if result.rc is not None else -1
            invocation.checks = result.checks
            invocation.status = "Success" if result.ok else ("Failed" if result.rc not in (None, -9) else "TimedOut")

    def checks(self) -> list[dict[str, Any]]:
        """Every CHECK line of every invocation, in the order the commands were sent."""
        with self._lock:
            return [c for command in self.commands.values() for i in command.values() for c in i.checks]

    def ListCommandInvocations(self, params: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            invocations = list(self.commands.get(params["CommandId"], {}).values())
            return {"CommandInvocations": [
                {"CommandId": params["CommandId"], "InstanceId": i.instance_id, "Status": i.status,
                 "StatusDetails": i.status, "RequestedDateTime": i.started}
                for i in invocations
            ]}  # fmt: skip

    def GetCommandInvocation(self, params: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            invocation = self.commands[params["CommandId"]][params["InstanceId"]]
            return {
                "CommandId": params["CommandId"], "InstanceId": invocation.instance_id, "Status": invocation.status,
                "ResponseCode": invocation.response_code, "StandardOutputContent": invocation.output,
                "StandardErrorContent": "",
            }  # fmt: skip

    def DescribeInstanceInformation(self, params: dict[str, Any]) -> dict[str, Any]:
        wanted = next(
            (f["Values"] for f in params.get("Filters", []) if f["Key"] == "InstanceIds"), list(self.instances)
        )
        pings = {i: last_ping(self.instances[i]) for i in wanted if i in self.instances}
        return {"InstanceInformationList": [{"InstanceId": i, "PingStatus": "Online", "LastPingDateTime": ping}
                                            for i, ping in pings.items() if ping is not None]}  # fmt: skip


#: A running agent reports to SSM periodically (5 min assumed: its health report), so LastPingDateTime is the
#: latest report, not "now".
PING_INTERVAL_SECONDS = 300


def last_ping(spec: NodeSpec) -> datetime | None:
    """The latest ping of the node's agent (the stand-in package its userdata installed): its start in the current
    boot, then every PING_INTERVAL_SECONDS. None while it is not running (not installed yet, stopped, the node down
    or between boots), so a node that a root volume restore sends back through userdata is Online again only once
    its new agent runs; one that came back before the last node's restore finished waits for its next ping."""
    first = nodes.agent_ping(spec)
    if first is None:
        return None
    return datetime.fromtimestamp(first + (time.time() - first) // PING_INTERVAL_SECONDS * PING_INTERVAL_SECONDS, UTC)
