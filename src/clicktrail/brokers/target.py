"""Where the stream-out publishes: the broker's URL, the prefix of subjects and keys, the
JetStream stream; and the checks of those settings."""

from __future__ import annotations

import re
from dataclasses import dataclass

from clicktrail.domain.errors import InvalidInput

NATS_SCHEMES = ("nats", "tls")
REDIS_SCHEMES = ("redis", "rediss", "unix")
# Dot-separated tokens NATS subjects and Redis keys can both carry.
_PREFIX = re.compile(r"[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*\Z")
_STREAM = re.compile(r"[A-Za-z0-9_-]{1,64}\Z")


@dataclass(frozen=True, slots=True)
class StreamTarget:
    """Where events go: the broker's URL, the subject or key prefix, the JetStream stream (and
    the duplicate window it gets when clicktrail creates it), Redis's approximate MAXLEN per
    workspace key (0: no trimming)."""

    url: str
    prefix: str = "clicktrail"
    stream: str = "CLICKTRAIL"
    dedup_window_s: float = 300.0
    maxlen: int = 0


def check_target(target: StreamTarget) -> StreamTarget:
    """Return `target` if its settings are usable; raises `InvalidInput` naming the setting at
    fault (``stream_url``, ``stream_prefix``, ``stream_name``, ``stream_dedup_window``,
    ``stream_maxlen``)."""
    scheme = target.url.partition("://")[0].lower() if "://" in target.url else ""
    if scheme not in NATS_SCHEMES + REDIS_SCHEMES:
        raise InvalidInput(
            f"stream_url: {target.url!r} is not a broker URL: use nats://host:4222 (NATS "
            "JetStream) or redis://host:6379/0 (Redis Streams)",
            field="stream_url",
        )
    if not _PREFIX.match(target.prefix):
        raise InvalidInput(
            f"stream_prefix: {target.prefix!r} must be letters, digits, _ and -, in "
            "dot-separated parts (e.g. clicktrail or acme.clicktrail)",
            field="stream_prefix",
        )
    if not _STREAM.match(target.stream):
        raise InvalidInput(
            f"stream_name: {target.stream!r} must be 1-64 letters, digits, _ and -",
            field="stream_name",
        )
    if target.dedup_window_s <= 0:
        raise InvalidInput(
            "stream_dedup_window must be above 0 seconds", field="stream_dedup_window"
        )
    if target.maxlen < 0:
        raise InvalidInput("stream_maxlen must be 0 (no trimming) or more", field="stream_maxlen")
    return target
