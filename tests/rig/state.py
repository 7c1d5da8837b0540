"""What the rig created, written down before each thing is made so `down` can undo it even after a crash.

build/rig/state.json: {"bridges": [...], "netns": [...], "nft": [["bridge", "rigvpc"], ...], "links": [...],
"loops": {"/dev/loop3": "build/rig/disks/block1-0.img"}, "pids": {"acng": 123, "node:controller": 456},
"cgroups": [...], "mounts": [...], "nodes": ["controller", "compute1", ...]} ("nodes": the topology `up` launched,
whatever COMPUTE_COUNT `down` later runs with).
"""

from __future__ import annotations

import json
import threading
from typing import Any

from . import config

_LOCK = threading.RLock()
_LISTS = ("bridges", "netns", "nft", "links", "cgroups", "mounts")


def load() -> dict[str, Any]:
    with _LOCK:
        try:
            data = json.loads(config.STATE.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            data = {}
        for key in _LISTS:
            data.setdefault(key, [])
        data.setdefault("loops", {})
        data.setdefault("pids", {})
        return data


def save(data: dict[str, Any]) -> None:
    with _LOCK:
        config.BUILD.mkdir(parents=True, exist_ok=True)
        tmp = config.STATE.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
        tmp.replace(config.STATE)


def add(kind: str, value: Any) -> None:
    """Record one created resource in list `kind` (idempotent)."""
    with _LOCK:
        data = load()
        if value not in data[kind]:
            data[kind].append(value)
        save(data)


def remove(kind: str, value: Any) -> None:
    with _LOCK:
        data = load()
        if value in data[kind]:
            data[kind].remove(value)
        save(data)


def set_item(kind: str, key: str, value: Any) -> None:
    """Record a mapping entry (pids, loops); value None deletes it."""
    with _LOCK:
        data = load()
        if value is None:
            data[kind].pop(key, None)
        else:
            data[kind][key] = value
        save(data)


def set_value(key: str, value: Any) -> None:
    """Record a top-level value; None deletes it."""
    with _LOCK:
        data = load()
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
        save(data)
