"""Time in one place, so that tests can move it (a deadline test must not wait for the deadline)."""

from __future__ import annotations

import time
from datetime import datetime


def now() -> float:
    """Epoch seconds."""
    return time.time()


def parse_timestamp(text: str) -> float:
    """Epoch seconds of an ISO 8601 timestamp as Step Functions writes them (`2024-05-01T03:00:00.123Z`)."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
