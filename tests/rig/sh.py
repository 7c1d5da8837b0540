"""Small helpers to run host commands and print rig messages."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Sequence

_T0 = time.monotonic()


def log(msg: str) -> None:
    print(f"[rig {time.monotonic() - _T0:7.1f}s] {msg}", flush=True)


def run(cmd: Sequence[str], check: bool = True, input: str | None = None, quiet: bool = False,
        env: dict[str, str] | None = None, timeout: float | None = None) -> subprocess.CompletedProcess[str]:
    """Run a command; on failure raise with its output."""
    proc = subprocess.run(list(cmd), input=input, text=True, capture_output=True, env=env, timeout=timeout)
    if check and proc.returncode != 0:
        raise RigError(f"command failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stdout}{proc.stderr}".rstrip())
    if not quiet and proc.stderr and proc.returncode != 0:
        print(proc.stderr, file=sys.stderr, end="")
    return proc


def ok(cmd: Sequence[str]) -> bool:
    return subprocess.run(list(cmd), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode == 0


def pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie is not alive
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def pid_cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return fh.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


class RigError(RuntimeError):
    """A rig operation failed; the message says what and why."""
