"""Text the steps write to nodes, taken from the step and library files as they are, for tests that run it."""

from __future__ import annotations

import re
from pathlib import Path


def written_file(script: Path, target: str) -> str:
    """What `script` writes to `target` with `write_file TARGET MODE <<'EOF2' ... EOF2` (quoted: no expansion)."""
    match = re.search(rf"write_file {re.escape(target)} \d+ <<'?EOF2'?\n(.*?)\nEOF2\n", script.read_text(), re.S)
    assert match, f"{target} is not written by {script.name}"
    return match.group(1) + "\n"
