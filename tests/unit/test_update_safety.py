"""Updates are safe: typical config changes, a new step and a Lambda change replace or delete no node resource.

Each case synthesizes the changed app and runs the pinned CDK CLI's `cdk diff --template <baseline>` offline (no
change set, no credentials) against the default configuration's templates, then reads the diff: an instance, ENI,
volume, Elastic IP or secret marked replaced or removed fails the test.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest

import stacks.constructs.python_function as python_function
from stacks.app_builder import build_app
from stacks.config import DEPLOYED_IDENTITY_KEY, ConfigError, load_config
from stacks.deployed_identity import LAUNCH_RELEASE_KEY, check_unchanged, identity, launch_release, record
from stacks.step_catalog import STEPS_DIR
from tests.conftest import ROOT, SynthesizedApp, cdk_json_context

CDK = ROOT / "node_modules" / ".bin" / "cdk"
GUARDED = (
    "AWS::EC2::Instance",
    "AWS::EC2::NetworkInterface",
    "AWS::EC2::Volume",
    "AWS::EC2::EIP",
    "AWS::SecretsManager::Secret",
)
#: `[~] AWS::EC2::Instance Controller/Instance ControllerInstance44BE1037 replace`, `[-] AWS::EC2::EIP ...`
_RESOURCE_LINE = re.compile(r"^\[(?P<op>[-~+])\] (?P<type>AWS::\S+) (?P<path>\S+) (?P<logical>\S+)(?: (?P<note>.+))?$")
_PROPERTY_LINE = re.compile(r"^ [├└]─ \[[-~+]\] (?P<property>\w+) \((?P<why>[^)]*replace[^)]*)\)")

Resource = dict[str, Any]


def _primary_address(eni: Resource) -> str | None:
    props = eni.get("Properties", {})
    listed = [a["PrivateIpAddress"] for a in props.get("PrivateIpAddresses", []) if a.get("Primary")]
    return props.get("PrivateIpAddress") or (listed[0] if listed else None)


#: Properties the CDK's resource model marks "may cause replacement" whose condition CloudFormation documents:
#: a UserData change on an EBS-backed instance is a stop and start (EC2 User Guide, "View and update the instance
#: user data"); PrivateIpAddresses replaces the ENI only when the primary address changes.
_SAFE_WHEN = {
    "UserData": lambda old, new: True,
    "PrivateIpAddresses": lambda old, new: _primary_address(old) == _primary_address(new) is not None,
}

TYPICAL_CHANGES: dict[str, Any] = {
    "notification_email": "ops@example.com",
    "rebuild_schedule": "cron(30 4 ? * MON-FRI *)",
    "allowed_cidr": "203.0.113.7/32",
    "floating_ips": 4,  # one more than the default (the quota raised with it)
    "eip_quota": 6,
    "ami_id": "ami-0123456789abcdef0",
    # A release switch: allowed with ami_id (the new release's AMI, by root volume replacement); see below.
    "os_release": "trixie",
    "compute_count": 3,
}


def guarded_changes(diff: str, old: dict[str, Resource], new: dict[str, Resource]) -> dict[str, str]:
    """logical ID -> why, for every guarded resource the diff removes or (may) replace (old/new: the Resources)."""
    found: dict[str, str] = {}
    current: re.Match[str] | None = None
    for line in diff.splitlines():
        if match := _RESOURCE_LINE.match(line):
            current = match if match["type"] in GUARDED else None
            if current and current["op"] == "-":
                found[current["logical"]] = "removed"
        elif current and (prop := _PROPERTY_LINE.match(line)):
            logical, name, why = current["logical"], prop["property"], prop["why"]
            safe = _SAFE_WHEN.get(name) if why.startswith("may") else None
            if not (safe and safe(old[logical], new[logical])):
                found[logical] = ", ".join(filter(None, (found.get(logical), f"{name} ({why})")))
    return found


def cdk_diff(baseline: Path, changed: Path, stack: str) -> str:
    env = {**os.environ, "CDK_DISABLE_VERSION_CHECK": "1", "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20"}
    env["AWS_EC2_METADATA_DISABLED"] = "true"
    # The diff must be offline: as root, in a network namespace of its own (no route anywhere), to prove it.
    isolate = ["unshare", "--net"] if os.geteuid() == 0 and shutil.which("unshare") else []
    result = subprocess.run(
        [*isolate, str(CDK), "diff", "--app", str(changed), "--template", str(baseline), "--no-change-set", "--exclusively",
         "--no-color", stack],
        capture_output=True, text=True, timeout=120, env=env, cwd=changed,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout + result.stderr


def synthesize_changed(outdir: Path, overrides: dict[str, Any], steps_dir: Path = STEPS_DIR) -> Path:
    app = cdk.App(context={**cdk_json_context(), **overrides}, outdir=str(outdir))
    build_app(app, steps_dir=steps_dir)
    app.synth()
    return outdir


def replaced_or_removed(
    baseline: SynthesizedApp, changed: Path, only: tuple[str, ...] = ()
) -> dict[str, dict[str, str]]:
    """stack -> guarded resources the change would replace or remove (stacks only in the baseline count too)."""
    found: dict[str, dict[str, str]] = {}
    for stack in baseline.assembly.stacks:
        if only and stack.stack_name not in only:
            continue
        template = Path(baseline.assembly.directory) / stack.template_file
        if (changed / stack.template_file).exists():
            new = json.loads((changed / stack.template_file).read_text()).get("Resources", {})
            old = stack.template.get("Resources", {})
            changes = guarded_changes(cdk_diff(template, changed, stack.stack_name), old, new)
            if changes:
                found[stack.stack_name] = changes
        elif any(r["Type"] in GUARDED for r in stack.template.get("Resources", {}).values()):
            found[stack.stack_name] = {"*": "stack removed"}
    return found


@pytest.fixture(scope="module")
def changed_code(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A copy of steps/ with one more step, and of lambdas/ with a changed module."""
    root = tmp_path_factory.mktemp("changed-code")
    steps = root / "steps"
    shutil.copytree(STEPS_DIR, steps)
    (steps / "97-extra.sh").write_text(
        "#!/usr/bin/env bash\n# step: extra\n# roles: controller\n# after: network-fix\n# timeout: 600\n"
        "# inputs: node facts\n# guarantees: nothing but its own run\nset -euo pipefail\necho extra\n"
    )
    lambdas = root / "lambdas"
    shutil.copytree(python_function.LAMBDAS_DIR, lambdas, ignore=shutil.ignore_patterns("__pycache__"))
    with (lambdas / "common" / "errors.py").open("a") as module:
        module.write("\n# a code change\n")
    return steps, lambdas


@pytest.mark.synth
def test_typical_changes_new_step_and_lambda_change_replace_no_node_resource(
    synth_app: SynthesizedApp, changed_code: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    steps, lambdas = changed_code
    monkeypatch.setattr(python_function, "LAMBDAS_DIR", lambdas)
    changed = synthesize_changed(tmp_path / "out", TYPICAL_CHANGES, steps_dir=steps)
    assert (changed / "openstack-aws-orchestration.template.json").read_text().count("extra") > 0
    assert "Compute3Instance" in (changed / "openstack-aws-nodes.template.json").read_text()
    assert "\\nOS_RELEASE=trixie\\n" in (changed / "openstack-aws-nodes.template.json").read_text()
    assert replaced_or_removed(synth_app, changed) == {}


@pytest.mark.synth
def test_the_guard_sees_a_replacing_change(synth_app: SynthesizedApp, tmp_path: Path) -> None:
    """The diff reading can fail: a new key pair replaces every instance, dropping the pool removes its Elastic IP
    (and, before the pool's ENI kept its address list, replaced that ENI and the controller with it)."""
    changed = synthesize_changed(tmp_path / "out", {"key_pair": "ops", "floating_ips": 0})
    found = replaced_or_removed(synth_app, changed, only=("openstack-aws-nodes", "openstack-aws-network"))
    nodes = found["openstack-aws-nodes"]
    assert len(nodes) == 5 and set(nodes.values()) == {"KeyName (requires replacement)"}, nodes
    assert "removed" in found["openstack-aws-network"].values()


def test_a_node_replacing_change_is_refused_once_deployed() -> None:
    context = cdk_json_context()
    deployed = identity(load_config(context))
    app = cdk.App(context={**context, DEPLOYED_IDENTITY_KEY: deployed, "subnet_a_cidr": "172.31.40.0/24"})
    with pytest.raises(ConfigError, match=r"subnet_a_cidr.*'172.31.32.0/24' as deployed.*another 'prefix'"):
        build_app(app, nag=False)
    app = cdk.App(context={**context, DEPLOYED_IDENTITY_KEY: deployed, "object_count": 1})
    with pytest.raises(ConfigError, match=r"without object2.*deletes its instance and disks"):
        build_app(app, nag=False)


@pytest.mark.synth
def test_a_release_switch_alone_keeps_the_launch_ami(synth_app: SynthesizedApp, tmp_path: Path) -> None:
    """Without a deployed-identity record (a cloud deployed without `make deploy`), a changed os_release changes the
    launch image's Create call only: no node is replaced, and every instance keeps the resolved launch AMI."""
    changed = synthesize_changed(tmp_path / "out", {"os_release": "trixie"})
    assert replaced_or_removed(synth_app, changed, only=("openstack-aws-nodes",)) == {}
    old = synth_app.assembly.get_stack_by_name("openstack-aws-nodes").template["Resources"]
    new = json.loads((changed / "openstack-aws-nodes.template.json").read_text())["Resources"]
    resolvers = [k for k, r in new.items() if r["Type"] == "Custom::AWS"]
    assert len(resolvers) == 1 and resolvers[0] in old and "release/13" in new[resolvers[0]]["Properties"]["Create"]
    for logical, resource in new.items():
        if resource["Type"] == "AWS::EC2::Instance":
            assert resource["Properties"]["ImageId"] == old[logical]["Properties"]["ImageId"] == {"Ref": resolvers[0]}


def test_a_release_switch_is_refused_once_deployed_unless_ami_id_brings_the_new_release() -> None:
    """The launch AMI is pinned: switching os_release alone would leave the nodes on the old release while their
    userdata names the new one. With ami_id the switch is an AMI upgrade (root volume replacement, the rebuild)."""
    context = cdk_json_context()
    deployed = identity(load_config(context))
    app = cdk.App(context={**context, DEPLOYED_IDENTITY_KEY: deployed, "os_release": "trixie"})
    with pytest.raises(ConfigError) as refused:
        build_app(app, nag=False)
    message = str(refused.value)
    assert message.startswith("config 'os_release' = 'trixie' is invalid: expected 'bookworm', the release the "
                              "deployed nodes launched from")  # fmt: skip
    assert "ami_id names a Debian 13 (trixie) AMI" in message
    assert "aws ssm get-parameter --name /aws/service/debian/release/13/latest/amd64" in message
    assert "openstack-aws rebuild" in message and "another 'prefix'" in message
    switched = {**context, DEPLOYED_IDENTITY_KEY: deployed, "os_release": "trixie", "ami_id": "ami-0123456789abcdef0"}
    assert build_app(cdk.App(context=switched), nag=False).config.os_release == "trixie"


def test_the_launch_release_is_kept_across_deploys(tmp_path: Path) -> None:
    """After a switch to trixie by ami_id, the nodes' launch AMI is still bookworm's: dropping ami_id would send the
    rebuild back to bookworm's launch snapshot under a trixie userdata, so it is refused; going back is not."""
    context_file = tmp_path / "cdk.context.json"
    context_file.write_text(json.dumps({"some-lookup": "kept"}))
    record(load_config({}), context_file)
    record(load_config({"os_release": "trixie", "ami_id": "ami-0123456789abcdef0"}), context_file)
    saved = json.loads(context_file.read_text())
    recorded = saved[DEPLOYED_IDENTITY_KEY]
    assert saved["some-lookup"] == "kept"
    assert (recorded["os_release"], recorded[LAUNCH_RELEASE_KEY]) == ("trixie", "bookworm")
    with pytest.raises(ConfigError, match=r"config 'os_release' = 'trixie'.*expected 'bookworm'"):
        check_unchanged(recorded, load_config({"os_release": "trixie"}))
    check_unchanged(recorded, load_config({}))  # back to the launch release: the rebuild restores its snapshot
    # A first deploy on trixie launches trixie; a record from before the key means bookworm.
    trixie_file = tmp_path / "trixie.json"
    record(load_config({"os_release": "trixie"}), trixie_file)
    assert json.loads(trixie_file.read_text())[DEPLOYED_IDENTITY_KEY][LAUNCH_RELEASE_KEY] == "trixie"
    older = {k: v for k, v in identity(load_config({})).items() if k != "os_release"}
    assert launch_release(older) == "bookworm"
    with pytest.raises(ConfigError, match="os_release"):
        check_unchanged(older, load_config({"os_release": "trixie"}))


def test_growing_and_unguarded_changes_pass_the_identity_check() -> None:
    context = cdk_json_context()
    deployed = identity(load_config(context))
    app = cdk.App(context={**context, **TYPICAL_CHANGES, DEPLOYED_IDENTITY_KEY: deployed, "compute_count": 2})
    assert build_app(app, nag=False).config.compute_count == 2


def _before_the_groups_per_eni(network: dict[str, Any], nodes: dict[str, Any], subnet_b: str) -> None:
    """Turn the current default templates back into the release before issue 13's management-plane fix (in place):
    every ENI in the node group (the controller's eth1 also in the floating IP group, if any), which took all of
    subnet B too; no provider or public group."""
    resources = network["Resources"]
    node_group = next(k for k in resources if k.startswith("NodeSecurityGroup") and "from" not in k)
    resources[node_group]["Properties"]["SecurityGroupIngress"] = [
        {"CidrIp": subnet_b, "Description": "provider subnet (router, floating IPs)", "IpProtocol": "-1"}
    ]
    gone = [k for k in resources if k.startswith(("ProviderSecurityGroup", "PublicSecurityGroup"))]
    for key in gone:
        del resources[key]
    network["Outputs"] = {k: v for k, v in network.get("Outputs", {}).items() if not any(g in json.dumps(v) for g in gone)}
    node_export = next(e for e in json.dumps(nodes).split('"') if f"FnGetAtt{node_group}GroupId" in e)
    for eni in (r for r in nodes["Resources"].values() if r["Type"] == "AWS::EC2::NetworkInterface"):
        floating = [g for g in eni["Properties"]["GroupSet"] if "FloatingIpSecurityGroup" in json.dumps(g)]
        eni["Properties"]["GroupSet"] = [{"Fn::ImportValue": node_export}, *floating]


@pytest.mark.synth
def test_the_security_groups_per_eni_update_a_deployed_stack_in_place(synth_app: SynthesizedApp, tmp_path: Path) -> None:
    """A deployment of the release before has every ENI in the node group, which took all of subnet B: the update
    changes rules and the ENIs' group sets in place (CloudFormation: no interruption). No instance, ENI or security
    group is replaced or removed, and the node group keeps its identity (description unchanged)."""
    assembly = Path(synth_app.assembly.directory)
    network = synth_app.assembly.get_stack_by_name(synth_app.stacks.network.stack_name)
    nodes = synth_app.assembly.get_stack_by_name(synth_app.stacks.nodes.stack_name)
    old_network, old_nodes = json.loads(json.dumps(network.template)), json.loads(json.dumps(nodes.template))
    _before_the_groups_per_eni(old_network, old_nodes, str(synth_app.stacks.network.config.subnet_b_cidr))
    for stack, old in ((network, old_network), (nodes, old_nodes)):
        baseline = tmp_path / stack.template_file
        baseline.write_text(json.dumps(old))
        diff = cdk_diff(baseline, assembly, stack.stack_name)
        assert guarded_changes(diff, old["Resources"], stack.template["Resources"]) == {}, diff
        groups = [m for line in diff.splitlines() if (m := _RESOURCE_LINE.match(line))
                  and m["type"] == "AWS::EC2::SecurityGroup" and (m["op"] == "-" or "replace" in (m["note"] or ""))]  # fmt: skip
        assert groups == [], diff
    assert "GroupSet" in diff and "[~] AWS::EC2::NetworkInterface" in diff, "the diff saw the ENIs' new groups"
