"""The packages userdata prefetches (userdata/packages/<role>.txt) are exactly what the steps install on that role
(issue 13, item 9): a name the steps do not install downloads for nothing, one they install that is not listed
is downloaded during the install on EC2.

The steps are parsed, not run: every unconditional `apt_install` (a line of the step's top level, with its
continuation lines) of every step whose roles include the role. An indented call is conditional (verify's
qemu-utils, only for a raw test image) and may be left out of the lists."""

from __future__ import annotations

import re
import shlex

import pytest

from stacks.config import ROLES
from stacks.step_catalog import Step, load_steps
from stacks.userdata import role_packages


def installs(step: Step) -> set[str]:
    """The packages of the step's top-level apt_install calls."""
    text = re.sub(r"\\\n\s*", " ", step.path.read_text())
    packages: set[str] = set()
    for line in text.splitlines():
        if line.startswith("apt_install "):
            words = shlex.split(line, comments=True)[1:]
            assert all(re.fullmatch(r"[a-z0-9][a-z0-9.+-]+", w) for w in words), f"{step.path.name}: {line}"
            packages.update(words)
    return packages


def installed_on(role: str) -> set[str]:
    return set().union(*(installs(s) for s in load_steps() if role in s.roles))


@pytest.mark.parametrize("role", ROLES)
def test_the_prefetch_list_is_what_the_steps_install(role: str) -> None:
    listed, wanted = set(role_packages(role)), installed_on(role)
    assert not wanted - listed, f"{role}: the steps install these, userdata does not prefetch them"
    assert not listed - wanted, f"{role}: userdata prefetches these, no step installs them"


def test_the_parse_sees_the_steps_packages() -> None:
    """The comparison above is only as good as the parse: it finds the packages of known steps."""
    assert {"mariadb-server", "keystone", "nova-api", "neutron-api"} <= installed_on("controller")
    assert {"nova-compute", "neutron-linuxbridge-agent", "chrony"} <= installed_on("compute")
    assert "qemu-utils" not in installed_on("controller"), "verify's conditional install is not a prefetch"
