"""The arithmetic of sending: the rate limiter, retry backoff and quiet hours.

Pure: callers pass the time (seconds, monotonic or epoch as the function says), the random
draw of the jitter and the recipients' time zones as `tzinfo` objects.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta, tzinfo

from clicktrail.domain.errors import InvalidInput

# -- rate -----------------------------------------------------------------------------------------


class TokenBucket:
    """A token bucket: `rate` tokens per second, at most `burst` banked (rate 0: no limit).

    Carriers and aggregators count messages per second per sender; a bucket that starts full
    lets a burst of `burst` messages go at once, then one every 1/rate seconds. `hold_until`
    stops it for a while (the provider answered 429 with Retry-After).
    """

    def __init__(self, rate: float, burst: float | None = None, now: float = 0.0) -> None:
        if rate < 0:
            raise InvalidInput(f"rate must be 0 (no limit) or positive, got {rate}", field="rate")
        self.rate = rate
        self.burst = max(1.0, burst if burst is not None else rate)
        self.tokens = self.burst
        self.stamp = now
        self.held_until = 0.0

    def _refill(self, now: float) -> None:
        if now > self.stamp:
            self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
            self.stamp = now

    def take(self, want: int, now: float) -> int:
        """Take up to `want` whole tokens now; return how many were taken (0: wait first)."""
        if now < self.held_until:
            return 0
        if self.rate == 0:
            return want
        self._refill(now)
        got = min(want, int(self.tokens))
        self.tokens -= got
        return got

    def give_back(self, n: int) -> None:
        """Return `n` tokens that were taken but not used."""
        if self.rate:
            self.tokens = min(self.burst, self.tokens + n)

    def wait(self, now: float) -> float:
        """Return the seconds until one token is available (0 when one is)."""
        if now < self.held_until:
            return self.held_until - now
        if self.rate == 0:
            return 0.0
        self._refill(now)
        return 0.0 if self.tokens >= 1 else (1 - self.tokens) / self.rate

    def hold_until(self, until: float) -> None:
        """Give no token before `until` (a provider asked to slow down)."""
        self.held_until = max(self.held_until, until)


# -- retries --------------------------------------------------------------------------------------


def retry_delay(
    attempt: int,
    jitter: float,
    *,
    base: float = 2.0,
    cap: float = 300.0,
    retry_after: float | None = None,
) -> float:
    """Return the seconds to wait before attempt `attempt` + 1 of a message refused for now.

    Exponential (`base` × 2^(attempt-1), at most `cap`) with "equal jitter": half the delay is
    fixed, the other half scaled by `jitter` (a draw in [0, 1)), so retries of many messages
    refused together spread out instead of returning as a herd, and never come back sooner than
    half the backoff. Never less than the provider's `retry_after`.
    """
    step = min(cap, base * 2.0 ** max(0, attempt - 1))
    delay = step / 2 + step / 2 * min(max(jitter, 0.0), 1.0)
    return max(delay, retry_after or 0.0)


# -- quiet hours ----------------------------------------------------------------------------------

_HOURS = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")
_LOOKAHEAD_DAYS = 3


@dataclass(frozen=True, slots=True)
class QuietHours:
    """A daily span of local time when no message may be sent, e.g. 21:00-08:00.

    `start` is the first quiet minute, `end` the first allowed one again; a span may wrap
    midnight. Applied in each recipient's own time zone(s).
    """

    start: time
    end: time

    @classmethod
    def parse(cls, text: str) -> QuietHours:
        """Return quiet hours from ``HH:MM-HH:MM`` (24-hour clock, local time of the recipient).

        Raises `InvalidInput` (field ``quiet_hours``) for another shape, an hour past 23, a
        minute past 59, or an empty span.
        """
        found = _HOURS.match(text)
        if not found:
            raise InvalidInput(
                f"quiet hours {text!r}: expected HH:MM-HH:MM, e.g. 21:00-08:00", field="quiet_hours"
            )
        h1, m1, h2, m2 = (int(x) for x in found.groups())
        if h1 > 23 or h2 > 23 or m1 > 59 or m2 > 59:
            raise InvalidInput(
                f"quiet hours {text!r}: hours go 00-23 and minutes 00-59", field="quiet_hours"
            )
        if (h1, m1) == (h2, m2):
            raise InvalidInput(
                f"quiet hours {text!r}: start and end are the same time", field="quiet_hours"
            )
        return cls(time(h1, m1), time(h2, m2))

    def __str__(self) -> str:
        return f"{self.start:%H:%M}-{self.end:%H:%M}"

    def is_quiet(self, local: time) -> bool:
        """Return True when the local wall-clock time `local` falls in the quiet span."""
        t = local.replace(tzinfo=None, fold=0)
        if self.start < self.end:
            return self.start <= t < self.end
        return t >= self.start or t < self.end

    def allowed(self, at: datetime, zones: Sequence[tzinfo]) -> bool:
        """Return True when the aware instant `at` is outside quiet hours in every zone."""
        return not any(self.is_quiet(at.astimezone(z).time()) for z in zones)

    def next_allowed(self, at: datetime, zones: Sequence[tzinfo]) -> datetime | None:
        """Return `at` when sending is allowed then in every one of `zones`, else the earliest
        later instant when it is; None when no such instant comes within three days (the zones
        are further apart than the allowed span is long).

        The earliest instant is `at` itself or the end of the quiet span in one of the zones:
        each of those is tried, in order.
        """
        if self.allowed(at, zones):
            return at
        candidates: list[datetime] = []
        for z in zones:
            local = at.astimezone(z)
            for day in range(-1, _LOOKAHEAD_DAYS + 1):
                d = local.date() + timedelta(days=day)
                opens = datetime.combine(d, self.end, tzinfo=z)
                # Across a DST change the wall-clock time may not exist (or exist twice): the
                # instant is normalised through UTC and checked like any other candidate.
                opens = opens.astimezone(at.tzinfo)
                if opens > at:
                    candidates.append(opens)
        for c in sorted(candidates):
            if self.allowed(c, zones):
                return c
        return None
