"""Userdata writes every fact that steps/README.md promises, and every fact the steps require."""

from __future__ import annotations

import re

from stacks import userdata
from stacks.config import load_config
from tests.conftest import ROOT


def _promised(section_start: str) -> set[str]:
    readme = (ROOT / "steps" / "README.md").read_text()
    section = readme[readme.index(section_start) :].split("\n- ", 1)[0]
    return set(re.findall(r"`([A-Z][A-Z0-9_]+)`", section))


def _written_by_userdata(role: str) -> set[str]:
    node = {"controller": "controller", "compute": "compute1", "block": "block1", "object": "object1"}[role]
    script = userdata.render(load_config({}), node, role, region="r", elastic_ip="e", secret_arn="a", bucket="b")
    facts = set(re.findall(r'^"?(?:facts=")?([A-Z][A-Z0-9_]+)=', script.split("FACTS=/etc/openstack-aws", 1)[1], re.M))
    facts |= set(re.findall(r"\n([A-Z][A-Z0-9_]+)=\$", script))
    return facts | {"DATA_DISKS"}


def test_userdata_writes_every_promised_node_fact() -> None:
    promised = _promised("`/etc/openstack-aws/node.env`")
    written = set().union(*(_written_by_userdata(role) for role in ("controller", "compute", "block", "object")))
    assert promised - written == set()


def test_userdata_writes_every_promised_cluster_fact() -> None:
    promised = _promised("`/etc/openstack-aws/cluster.env`")
    assert promised - _written_by_userdata("compute") == set()


def test_every_fact_a_step_requires_is_promised() -> None:
    promised = _promised("`/etc/openstack-aws/node.env`") | _promised("`/etc/openstack-aws/cluster.env`")
    sources = [p.read_text() for p in (ROOT / "steps").rglob("*.sh")]
    calls = [m for text in sources for m in re.findall(r"^[^#\n]*\brequire_vars ([A-Z0-9_ ]+)", text, re.M)]
    required = {name for call in calls for name in call.split()}
    assert required, "no step calls require_vars"
    assert required - promised == set()
