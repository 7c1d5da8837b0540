"""The packages userdata prefetches are exactly what the steps install on that role (issue 13, item 9): a name the
steps do not install downloads for nothing, one they install that is not listed is downloaded during the install on
EC2. The lists are per Debian release (issue 14): `userdata/packages/<role>.txt` on every release, plus
`userdata/packages/<release>/<role>.txt` (stacks/userdata.role_packages).

The steps are parsed, not run. An unconditional `apt_install` (a line of the step's top level, with its
continuation lines) of every step whose roles include the role counts for every release. An `apt_install` inside
an arm of a `case` on the release, an arm named only by releases (`trixie)`, `bookworm|trixie)`), counts for those
releases; an arm named by Neutron's backend (`linuxbridge)`, `openvswitch)`: neutron_backend in
steps/lib/openstack.sh) counts for the releases that backend is chosen on. Any other indented call is conditional
(verify's qemu-utils, only for a raw test image) and may be left out of the lists.

While the steps had no such arms, trixie's lists were checked against bookworm's with the change
docs/epoxy-trixie-plan.md (section 7) names, written out below (TRIXIE_CHANGES); with arms, against the steps."""

from __future__ import annotations

import re
import shlex
from collections import defaultdict
from pathlib import Path

import pytest

from stacks.config import OS_RELEASES, ROLES
from stacks.step_catalog import load_steps
from stacks.userdata import role_packages

#: role -> (added, dropped) in trixie's list against bookworm's: Neutron's Linux bridge agent is gone in 2025.1, so
#: ML2/OVS (openvswitch-switch and its agent, ethtool and nftables for the userspace datapath; no ebtables).
TRIXIE_CHANGES: dict[str, tuple[set[str], set[str]]] = {
    "controller": (
        {"openvswitch-switch", "neutron-openvswitch-agent", "ethtool"},
        {"neutron-linuxbridge-agent", "ebtables"},
    ),
    "compute": ({"openvswitch-switch", "neutron-openvswitch-agent", "ethtool", "nftables"},
                {"neutron-linuxbridge-agent", "ebtables"}),
}
#: Neutron's backend -> the releases it is chosen on (neutron_backend: linuxbridge on bookworm only).
BACKEND_RELEASES = {"linuxbridge": ("bookworm",), "openvswitch": tuple(r for r in OS_RELEASES if r != "bookworm")}
_RELEASE_NAMES = "|".join([*OS_RELEASES, *BACKEND_RELEASES])
#: `  trixie)`, `bookworm|trixie) apt_install ...`: an arm of a case on the release, and what follows on its line.
_RELEASE_ARM = re.compile(rf"^\s*\(?((?:{_RELEASE_NAMES})(?:\s*\|\s*(?:{_RELEASE_NAMES}))*)\)(.*)$")


def installs(path: Path) -> dict[str | None, set[str]]:
    """The step's apt_install packages: under None the unconditional ones, under a release those of its arms."""
    text = re.sub(r"\\\n\s*", " ", path.read_text())
    packages: dict[str | None, set[str]] = defaultdict(set)
    arm: tuple[str, ...] = ()
    for line in text.splitlines():
        if match := _RELEASE_ARM.match(line):
            names = (r.strip() for r in match[1].split("|"))
            arm, line = tuple(r for n in names for r in BACKEND_RELEASES.get(n, (n,))), match[2]
        command = line.split(";;")[0].strip()
        if command.startswith("apt_install ") and (arm or line.startswith("apt_install ")):
            words = shlex.split(command, comments=True)[1:]
            assert all(re.fullmatch(r"[a-z0-9][a-z0-9.+-]+", w) for w in words), f"{path.name}: {line}"
            for release in arm or (None,):
                packages[release].update(words)
        if ";;" in line or line.strip() == "esac":
            arm = ()
    return packages


def installed_on(role: str, release: str = "bookworm") -> set[str]:
    found = [installs(s.path) for s in load_steps() if role in s.roles]
    return set().union(*(f[None] | f[release] for f in found))


def steps_have_release_arms() -> bool:
    return any(key is not None for s in load_steps() for key in installs(s.path))


@pytest.mark.parametrize("role", ROLES)
def test_bookworms_prefetch_list_is_what_the_steps_install(role: str) -> None:
    listed, wanted = set(role_packages(role, "bookworm")), installed_on(role, "bookworm")
    assert not wanted - listed, f"{role}: the steps install these, userdata does not prefetch them"
    assert not listed - wanted, f"{role}: userdata prefetches these, no step installs them"


@pytest.mark.parametrize("role", ROLES)
def test_trixies_prefetch_list_is_bookworms_with_ml2_ovs(role: str) -> None:
    listed = set(role_packages(role, "trixie"))
    if steps_have_release_arms():
        wanted = installed_on(role, "trixie")
        assert not wanted - listed, f"{role}: the steps install these on trixie, userdata does not prefetch them"
        assert not listed - wanted, f"{role}: userdata prefetches these on trixie, no step installs them"
    else:  # the steps do not know trixie yet: the plan's list
        added, dropped = TRIXIE_CHANGES.get(role, (set(), set()))
        assert listed == (set(role_packages(role, "bookworm")) - dropped) | added


def test_every_role_and_release_has_a_list_without_duplicates() -> None:
    for release in OS_RELEASES:
        for role in ROLES:
            packages = role_packages(role, release)
            assert packages and len(packages) == len(set(packages)), (role, release)
    with pytest.raises(ValueError, match="unknown Debian release 'sid'"):
        role_packages("controller", "sid")


def test_the_parse_sees_the_steps_packages() -> None:
    """The comparison above is only as good as the parse: it finds the packages of known steps."""
    assert {"mariadb-server", "keystone", "nova-api", "neutron-api"} <= installed_on("controller", "bookworm")
    assert {"nova-compute", "neutron-linuxbridge-agent", "chrony"} <= installed_on("compute", "bookworm")
    assert "qemu-utils" not in installed_on("controller", "bookworm"), "verify's conditional install is not a prefetch"


def test_the_parse_reads_release_arms(tmp_path: Path) -> None:
    step = tmp_path / "61-neutron-compute.sh"
    step.write_text(
        "apt_install ipset\n"
        'case "$OS_RELEASE" in\n'
        "  bookworm) apt_install neutron-linuxbridge-agent ebtables ;;\n"
        "  trixie)\n"
        "    apt_install neutron-openvswitch-agent \\\n      openvswitch-switch\n"
        "    ;;\n"
        "esac\n"
        'if [[ -n "${RAW:-}" ]]; then\n  apt_install qemu-utils\nfi\n'
    )
    assert installs(step) == {
        None: {"ipset"},
        "bookworm": {"neutron-linuxbridge-agent", "ebtables"},
        "trixie": {"neutron-openvswitch-agent", "openvswitch-switch"},
    }
