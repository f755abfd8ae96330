"""When a provider that refused a message for now says to try again (``Retry-After``)."""

from __future__ import annotations

import time
from email.utils import parsedate_to_datetime

# A provider asking for more than a day is not throttling, it is down: the sender's own backoff
# decides then.
MAX_RETRY_AFTER = 86_400.0


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Return the seconds to wait from a ``Retry-After`` header (RFC 9110 §10.2.3: seconds or an
    HTTP date), or None when absent, malformed or over a day."""
    if not value:
        return None
    text = value.strip()
    if text.isdigit():
        seconds = float(text)
    else:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            return None
        seconds = max(0.0, when.timestamp() - (time.time() if now is None else now))
    return seconds if seconds <= MAX_RETRY_AFTER else None
