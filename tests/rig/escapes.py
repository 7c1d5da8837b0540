"""What a step's process-group kill leaves running, and how the kill harness finds and ends it.

SSM's timeout kills the script's process group (the agent sends SIGKILL to `-pid`), and so do the rig's runner and
its kill harness (runner.kill_group). A child that made a group of its own (`timeout CMD` does) escapes, on EC2 as
here, but it stays in the step's session: the session of the step's nsenter, which start_new_session made.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from .sh import pid_cmdline


class ProcStat(NamedTuple):
    state: str
    pgrp: int
    session: int
    start: int  # clock ticks after boot: with the pid, names one process (this machine's pid_max is 32768)


def _stat(pid: int) -> ProcStat | None:
    """Fields 3, 5, 6 and 22 of /proc/PID/stat (proc(5)), as the host sees them; None when the process is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return ProcStat(fields[0], int(fields[2]), int(fields[3]), int(fields[19]))
    except (OSError, IndexError, ValueError):
        return None


@dataclass(frozen=True)
class Survivor:
    pid: int
    start: int
    cmdline: str


def escaped(proc: subprocess.Popen[bytes]) -> list[Survivor]:
    """Live processes of a step's session outside its process group: what the group kill cannot reach.

    The step's nsenter leads both (start_new_session); a child that made its own group (`timeout CMD` does)
    stays in the session. Called while the session's id is still this step's (its leader unreaped, or members
    alive: the kernel reuses no pid that names a live session)."""
    out: list[Survivor] = []
    for entry in Path("/proc").iterdir():
        st = _stat(int(entry.name)) if entry.name.isdigit() else None
        if st and st.session == proc.pid and st.pgrp != proc.pid and st.state != "Z":
            out.append(Survivor(int(entry.name), st.start, pid_cmdline(int(entry.name)).strip()))
    return out


def kill_survivors(survivors: list[Survivor]) -> None:
    """SIGKILL the recorded processes that still run (same pid and start time: never a reused pid)."""
    for proc in survivors:
        st = _stat(proc.pid)
        if st and st.start == proc.start:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGKILL)
