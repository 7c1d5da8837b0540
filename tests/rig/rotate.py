"""Rotate passwords in the rig as an operator rotates them in Secrets Manager: new values for the named keys in
build/rig/secrets.json, copied into every node that exists (the rig writes a node's copy only when it boots it).
The next run of the install must carry each new value everywhere it is used (steps/README.md, "Rotating a
password"). Prints the keys, never a value.

    python3 -m tests.rig.rotate RABBIT_PASS NOVA_DBPASS ...
"""

from __future__ import annotations

import json
import secrets
import sys
from pathlib import Path

from . import config, nodes

#: Not passwords: a new hash path prefix/suffix would hide every stored object (steps/README.md).
NEVER = ("SWIFT_HASH_PATH_PREFIX", "SWIFT_HASH_PATH_SUFFIX")


def rotate(keys: list[str]) -> list[Path]:
    """New values for `keys`; returns the node copies written."""
    wrong = [k for k in keys if k not in config.SECRET_KEYS or k in NEVER]
    if not keys or wrong:
        raise SystemExit(f"name keys to rotate among {', '.join(k for k in config.SECRET_KEYS if k not in NEVER)}"
                         + (f" (not {', '.join(wrong)})" if wrong else ""))  # fmt: skip
    values = nodes.rig_secrets() | {key: secrets.token_hex(16) for key in keys}
    text = json.dumps(values, indent=1) + "\n"
    config.SECRETS.write_text(text)
    written = []
    for spec in nodes.known_specs():
        conf = nodes.rootfs(spec) / config.NODE_CONF_DIR.lstrip("/")
        if conf.is_dir():
            (conf / "secrets.json").write_text(text)
            (conf / "secrets.json").chmod(0o600)
            written.append(conf / "secrets.json")
    return written


if __name__ == "__main__":
    copies = rotate(sys.argv[1:])
    print(f"rotated {' '.join(sys.argv[1:])} in {config.SECRETS} and {len(copies)} node copies")
