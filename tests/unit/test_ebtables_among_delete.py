"""The ebtables wrapper the neutron steps install (steps/lib/optional/ebtables.sh), run for real in a network
namespace against ebtables-nft, the way Neutron's linuxbridge agent calls it when it sets a port up again: it
lists the nat table (`-L`) and deletes the port's `--among-src` rule by the listed text. ebtables-nft 1.8.9
refuses that delete; through the wrapper the rule goes, any other rule stays, and a rule that is not there still
fails as ebtables fails."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.step_text import written_file

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root: a network namespace and nf_tables"),
    pytest.mark.skipif(not shutil.which("ebtables-nft"), reason="ebtables-nft missing: make setup installs it"),
]

LIB = ROOT / "steps" / "lib" / "optional" / "ebtables.sh"
CHAIN = "neutronMAC-taposa"


def _run(wrapper: Path, real_delete: bool) -> subprocess.CompletedProcess[str]:
    delete = "/usr/sbin/ebtables-nft" if real_delete else str(wrapper)
    script = f"""
set -u
ns=osa-ebt-$$
trap 'ip netns del $ns' EXIT
ip netns add $ns
e() {{ ip netns exec $ns {wrapper} -t nat --concurrent "$@"; }}
e -N {CHAIN} -P DROP && e -A {CHAIN} -j DROP
e -I {CHAIN} -i taposa --among-src fa:16:3e:00:0a:01 -j RETURN
e -I {CHAIN} -i tapother --among-src fa:16:3e:00:00:02,fa:16:3e:00:00:03 -j RETURN
# The agent's own delete: the listed rule's words after `-D CHAIN`.
rule=$(e -L | grep -- '-i taposa --among-src')
ip netns exec $ns {delete} -t nat --concurrent -D {CHAIN} $rule
echo "delete-rc $?"
e -D {CHAIN} -i taposa --among-src fa:16:3e:00:0a:09 -j RETURN 2>/dev/null
echo "absent-rc $?"
e -D {CHAIN} -j DROP
echo "plain-rc $?"
echo "left $(e -L {CHAIN} | grep -c -- '--among-src')"
"""
    return subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=60)


def _results(proc: subprocess.CompletedProcess[str]) -> dict[str, str]:
    return dict(line.split(" ", 1) for line in proc.stdout.splitlines() if " " in line)


@pytest.fixture
def wrapper(tmp_path: Path) -> Path:
    path = tmp_path / "ebtables-osa"
    path.write_text(written_file(LIB, "/usr/local/sbin/ebtables-osa"))
    path.chmod(0o755)
    return path


def test_the_agents_among_delete_succeeds_through_the_wrapper(wrapper: Path) -> None:
    got = _results(_run(wrapper, real_delete=False))
    assert got.pop("absent-rc") != "0" and got == {"delete-rc": "0", "plain-rc": "0", "left": "1"}, got


def test_ebtables_nft_alone_refuses_it_which_is_why_the_wrapper_exists(wrapper: Path) -> None:
    got = _results(_run(wrapper, real_delete=True))
    if got["delete-rc"] == "0":
        pytest.skip("ebtables-nft deletes among rules itself on this machine: the wrapper's fallback is not needed")
    assert got["left"] == "2", got
