"""Proof that no node leaves a secret readable by others (issue 13, item 2): every file under /etc on every node
that holds any value of the rig's secrets (build/rig/secrets.json: the rig knows them, a node's scan does not
need to) or a line of the public side's TLS key (the artifact store's copy) must be closed to "others". The values
reach the scan on stdin, never on a command line. The key must be found where the public-tls step installs it (so
the scan does cover it), and the store's copy must be closed to others too.

`python3 -m tests.rig.secret_files` runs it alone on running nodes (no lock: it only reads).
"""

from __future__ import annotations

import json
import stat
import sys
from typing import Any

from . import config, nodes

# Prints "HOLD <path>" for each file under /etc holding a secret, and "OPEN <mode> <owner:group> <path>" for those
# others may read. grep -r does not follow symlinks met on the way, so each file is seen once.
SCAN = r"""
grep -rlsF -f /dev/stdin /etc | while IFS= read -r f; do
    printf 'HOLD %s\n' "$f"
    find "$f" -maxdepth 0 -perm /o=r -printf 'OPEN %m %u:%g %p\n'
done
"""


def scan_node(spec: config.NodeSpec, values: list[str]) -> tuple[list[str], list[str]]:
    """(files holding a secret, "mode owner path" of those readable by others) on one node."""
    out = nodes.node_run(spec, ["bash", "-c", SCAN], input="\n".join(values) + "\n", timeout=120).stdout
    held = [line[5:] for line in out.splitlines() if line.startswith("HOLD ")]
    open_ = [line[5:] for line in out.splitlines() if line.startswith("OPEN ")]
    return held, open_


def key_lines(pem: str) -> list[str]:
    """The lines of a PEM key's body that any copy of it holds (a short last line could match unrelated text)."""
    return [line for line in pem.splitlines() if len(line) >= 32 and not line.startswith("-----")]


def secrets_not_readable_by_others(step: str = "verify") -> dict[str, Any]:
    store_key = config.PUBLIC_TLS_KEY
    tls_key = key_lines(store_key.read_text()) if store_key.exists() else []
    # An EC key's PEM also carries its public key, which the certificate holds too: only lines no certificate line
    # contains are the secret part (a 0644 certificate once matched the key's last line).
    store_cert = config.PUBLIC_TLS_CERT
    cert = store_cert.read_text().splitlines() if store_cert.exists() else []
    tls_key = [line for line in tls_key if not any(line in c for c in cert)]
    values = [v for v in nodes.rig_secrets().values() if v] + tls_key
    held_total = 0
    exposed: list[str] = []
    for spec in config.NODES:
        held, open_ = scan_node(spec, values)
        held_total += len(held)
        exposed += [f"{spec.name}:{entry}" for entry in open_]
    if tls_key and stat.S_IMODE(store_key.stat().st_mode) & 0o007:
        exposed.append(f"host:{stat.S_IMODE(store_key.stat().st_mode):o} {store_key}")
    key_missing = bool(tls_key) and config.NODE_TLS_KEY not in scan_node(config.node("controller"), tls_key)[0]
    passed = held_total > 0 and not exposed and not key_missing
    if exposed:
        detail = "readable by others: " + "; ".join(exposed)
    elif key_missing:
        detail = f"the public TLS key of {store_key} is not in controller:{config.NODE_TLS_KEY}: the scan misses it"
    elif held_total:
        detail = (f"{held_total} files under /etc on {len(config.NODES)} nodes hold a secret"
                  + (f" (the public TLS key among them, in {config.NODE_TLS_KEY})" if tls_key else "")
                  + "; none is readable by others")
    else:
        detail = "no file under /etc holds a secret: the scan found nothing to judge (is the cloud installed?)"
    return {"name": "secrets-not-readable-by-others", "ok": passed, "status": "ok" if passed else "fail",
            "detail": detail, "node": "all", "step": step}


if __name__ == "__main__":
    check = secrets_not_readable_by_others()
    print(json.dumps(check, indent=1))
    sys.exit(0 if check["ok"] else 1)
