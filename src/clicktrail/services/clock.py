"""The one clock of clicktrail. Services take times as arguments so tests can pin them."""

from __future__ import annotations

import time

# Times a query may name: from the epoch to the end of year 9999 (µs).
MAX_TIME_US = 253_402_300_800_000_000


def now_us() -> int:
    """Return the current time in microseconds since the epoch (UTC)."""
    return time.time_ns() // 1000
