"""The install plan, read from the headers of `steps/NN-name.sh`.

One parser serves the SSM documents (stack), the state machine (order and waves) and the rig, so the three can
never disagree about what a step is, where it runs or what it waits for.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from lambdas.common.run_input import UnknownStepError, select_names

STEPS_DIR = Path(__file__).resolve().parent.parent / "steps"
ROLES = ("controller", "compute", "block", "object")
#: The EC2 fix (source/dest check off on the public ENI) is an API call, not a script; it runs right before this.
EC2_FIX_BEFORE = "network-fix"
_FILE = re.compile(r"^(\d{2})-([a-z0-9][a-z0-9-]*)\.sh$")
_HEADER = re.compile(r"^#\s*(step|roles|after|timeout|uses|inputs|guarantees):\s*(.*?)\s*$")
_REQUIRED = ("step", "roles", "after", "timeout", "inputs", "guarantees")


class StepCatalogError(ValueError):
    """A step file whose name or header breaks the contract in steps/README.md."""


@dataclass(frozen=True)
class Step:
    number: int
    name: str
    roles: tuple[str, ...]
    after: tuple[str, ...]
    timeout: int
    path: Path
    #: optional libraries (steps/lib/optional/NAME.sh) the step needs beside steps/lib/*.sh: an SSM document holds
    #: at most 64 KB, so what only a few steps use is not sent with every step.
    uses: tuple[str, ...] = ()

    @property
    def body(self) -> str:
        return self.path.read_text()


def _parse(path: Path) -> Step:
    match = _FILE.match(path.name)
    if not match:
        raise StepCatalogError(f"{path.name}: step files are named NN-name.sh (two digits, lower-case name)")
    header: dict[str, str] = {}
    for line in path.read_text().splitlines()[1:40]:
        if m := _HEADER.match(line):
            header.setdefault(m.group(1), m.group(2))
    missing = [key for key in _REQUIRED if key not in header]
    if missing:
        raise StepCatalogError(f"{path.name}: header lacks {', '.join(missing)} (see steps/README.md)")
    if header["step"] != match.group(2):
        raise StepCatalogError(f"{path.name}: '# step: {header['step']}' must equal the file name '{match.group(2)}'")
    roles = tuple(r.strip() for r in header["roles"].split(",") if r.strip())
    unknown = [r for r in roles if r not in ROLES]
    if not roles or unknown:
        raise StepCatalogError(f"{path.name}: roles {unknown or '(none)'} not in {', '.join(ROLES)}")
    after = tuple(a.strip() for a in header["after"].split(",") if a.strip() not in ("", "-"))
    if not header["timeout"].isdigit() or not 60 <= int(header["timeout"]) <= 7200:
        raise StepCatalogError(f"{path.name}: timeout '{header['timeout']}' must be seconds from 60 to 7200")
    uses = tuple(u.strip() for u in header.get("uses", "").split(",") if u.strip())
    lib = next((d / "lib" for d in path.parents if (d / "lib").is_dir()), path.parent / "lib")
    missing_libs = [u for u in uses if not (lib / "optional" / f"{u}.sh").is_file()]
    if missing_libs:
        raise StepCatalogError(f"{path.name}: uses {missing_libs}, but {lib}/optional has no such .sh file")
    return Step(int(match.group(1)), match.group(2), roles, after, int(header["timeout"]), path, uses)


def load_steps(steps_dir: Path = STEPS_DIR) -> list[Step]:
    """All steps in NN order, validated: unique names, known dependencies that come earlier."""
    steps = sorted((_parse(p) for p in steps_dir.glob("*.sh")), key=lambda s: (s.number, s.name))
    seen: set[str] = set()
    for step in steps:
        if step.name in seen:
            raise StepCatalogError(f"step name '{step.name}' is used twice")
        later = [a for a in step.after if a not in seen]
        if later:
            raise StepCatalogError(f"{step.path.name}: after {later} must name steps with a lower number")
        seen.add(step.name)
    return steps


def waves(steps: list[Step]) -> list[list[Step]]:
    """Group steps into waves: a step joins the first wave after all of its dependencies' waves.

    A step with an empty `after` still waits for the previous wave when it shares a role with it, because
    two scripts must never run on one node at once (apt and dpkg locks, service restarts).
    """
    level: dict[str, int] = {}
    for step in steps:
        deps = [level[a] + 1 for a in step.after]
        same_node = [level[s.name] + 1 for s in steps if s.name in level and set(s.roles) & set(step.roles)]
        level[step.name] = max(deps + same_node + [0])
    grouped: list[list[Step]] = [[] for _ in range(max(level.values(), default=-1) + 1)]
    for step in steps:
        grouped[level[step.name]].append(step)
    return grouped


def select(steps: list[Step], from_step: str | None = None, only: list[str] | None = None) -> list[Step]:
    """The steps a run executes; unknown names raise with the list of valid ones.

    The rule itself lives in lambdas/common/run_input.py, which the state machine's input validator runs too.
    """
    try:
        chosen = select_names([s.name for s in steps], from_step, only)
    except UnknownStepError as error:
        raise StepCatalogError(str(error)) from None
    return [s for s in steps if s.name in chosen]


def compose_script(step: Step) -> str:
    """What runs on a node for a step: `lib/*.sh` (sorted by name) concatenated, then the optional libraries its
    `# uses:` header names (`lib/optional/NAME.sh`), then the step file.

    The SSM document of the step carries exactly this text, and the rig runs exactly this text. Each part ends
    with a newline so that no two files' lines merge.
    """
    # steps/NN-x.sh and steps/rebuild/NN-x.sh share steps/lib: the nearest lib/ up the tree.
    lib = next((d / "lib" for d in step.path.parents if (d / "lib").is_dir()), step.path.parent / "lib")
    return library(lib, step.uses) + _line_ended(step.body)


def library(lib: Path, uses: tuple[str, ...] = ()) -> str:
    """The library part of a step's script: `lib/*.sh` sorted by name, then `lib/optional/NAME.sh` for each of
    `uses` (also what the rig's proofs put in front of the library functions they call on a node)."""
    paths = [*sorted(lib.glob("*.sh")), *(lib / "optional" / f"{name}.sh" for name in uses)]
    return "".join(_line_ended(p.read_text()) for p in paths)


def _line_ended(text: str) -> str:
    return text if text.endswith("\n") else text + "\n"
