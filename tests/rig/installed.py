"""Is the rig up and fully installed? What the kill harness needs before it may kill a step on it.

A step counts as installed on a node when its newest run there since the node's launch ended with the library's
`done in Ns; ...` line (steps/lib/common.sh prints it only on exit 0). Both ways of installing leave that
evidence: `make rig` writes /root/rig-steps/NN-name.sh in the node and logs/steps/NN-name.NODE.log, `make local`'s
SSM stand-in the same with the stem `local-<document name>`. The script lives in the node's overlay, which
`down` and a rebuild's root-volume reset remove, so a log kept from an earlier rig never counts.
"""

from __future__ import annotations

import re
from pathlib import Path

from stacks.step_catalog import Step

from . import config, nodes, runner, state
from .sh import RigError

#: The last line of a step that exited 0 (steps/lib/common.sh `_osa_on_exit`).
DONE_LINE = re.compile(r"\bdone in \d+s; (changed: .*|nothing changed)$")
HOW = "install it first: `RIG_KEEP=1 make rig` (or `make local`, which keeps its nodes)"


def _local_step(stem: str, names: list[str]) -> str | None:
    """The step of a `make local` stem `local-<prefix>-<step>`: the longest step name it ends with (the prefix is
    the deployment's, any lower-case name, so a step whose name ends another's must not be mistaken for it)."""
    if not stem.startswith("local-"):
        return None
    return max((n for n in names if stem.endswith("-" + n)), key=len, default=None)


def _last_line(path: Path) -> str:
    lines = [line for line in path.read_text(errors="replace").splitlines() if line.strip()]
    return lines[-1] if lines else ""


def completed_run(step: Step, spec: config.NodeSpec, names: list[str]) -> Path | None:
    """The log of the step's newest run on the node since its launch when that run completed; None otherwise."""
    scripts = nodes.rootfs(spec) / "root" / "rig-steps"
    runs = [path for path in scripts.glob("*.sh")
            if path.stem == runner.step_stem(step) or _local_step(path.stem, names) == step.name]
    if not runs:
        return None
    newest = max(runs, key=lambda path: path.stat().st_mtime)
    log = config.LOGS / "steps" / f"{newest.stem}.{spec.name}.log"
    # the runner writes the script, then opens the log: an older log belongs to an earlier rig or run
    if not log.is_file() or log.stat().st_mtime < newest.stat().st_mtime:
        return None
    return log if DONE_LINE.search(_last_line(log)) else None


def require_installed(all_steps: list[Step], needed: list[Step] | None = None) -> None:
    """Raise RigError saying what is missing unless every node is up and every step of `needed` (default: all)
    completed on its nodes."""
    if not state.load().get("nodes"):
        raise RigError(f"no rig nodes recorded in {config.STATE}: {HOW}")
    nodes.check_topology()
    down = [spec.name for spec in config.NODES if not nodes.leader(spec)]
    if down:
        raise RigError(f"node(s) not running: {', '.join(down)} (`make rig-up` boots them); then {HOW}")
    names = [step.name for step in all_steps]
    missing = [f"{step.name}@{spec.name}" for step in (all_steps if needed is None else needed)
               for spec in runner._targets(step)
               if completed_run(step, spec, names) is None]
    if missing:
        raise RigError(f"the rig is not fully installed: no completed run since the nodes' launch of "
                       f"{', '.join(missing)}; {HOW}")
