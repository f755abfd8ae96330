"""The one clock of clicktrail. Services take times as arguments so tests can pin them."""

from __future__ import annotations

import time


def now_us() -> int:
    """Return the current time in microseconds since the epoch (UTC)."""
    return time.time_ns() // 1000
