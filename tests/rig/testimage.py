"""The tiny bootable test image (kernel + busybox initramfs), built from Debian packages through the cache."""

from __future__ import annotations

import hashlib
from pathlib import Path

from . import config
from .sh import log, run

HERE = Path(__file__).resolve().parent


def _recipe(script: Path) -> str:
    """What the image is made of: the builder's text and what it bakes in (the probe's address and name). A
    changed recipe rebuilds the image, so a fresh install never uploads an image older than its builder."""
    args = f"{config.PROBE_IP} {config.PROBE_NAME}\n"
    return hashlib.sha256(script.read_bytes() + args.encode()).hexdigest()


def ensure(force: bool = False) -> None:
    script = HERE / "build-test-image.sh"
    if not script.exists():
        log("test image: builder not written yet, skipping")
        return
    stamp = config.TEST_IMAGE.with_name(config.TEST_IMAGE.name + ".recipe")
    built = config.TEST_IMAGE.exists() and config.TEST_IMAGE.stat().st_size > 0
    if built and not force and stamp.exists() and stamp.read_text().strip() == _recipe(script):
        return
    run(["bash", str(script), str(config.TEST_IMAGE), config.PROBE_IP, config.PROBE_NAME], timeout=1200)
    stamp.write_text(_recipe(script) + "\n")
