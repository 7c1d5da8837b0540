"""The tiny bootable test image (kernel + busybox initramfs), built from Debian packages through the cache."""

from __future__ import annotations

from pathlib import Path

from . import config
from .sh import log, run

HERE = Path(__file__).resolve().parent


def ensure(force: bool = False) -> None:
    if config.TEST_IMAGE.exists() and config.TEST_IMAGE.stat().st_size > 0 and not force:
        return
    script = HERE / "build-test-image.sh"
    if not script.exists():
        log("test image: builder not written yet, skipping")
        return
    run(["bash", str(script), str(config.TEST_IMAGE)], timeout=1200)
