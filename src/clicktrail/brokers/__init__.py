"""Adapter: message brokers the stream-out publishes outbox events to (services/streams.py).

`open_publisher` picks the broker by the URL's scheme: ``nats://`` or ``tls://`` for NATS
JetStream (`brokers.jetstream`), ``redis://``, ``rediss://`` or ``unix://`` for Redis Streams
(`brokers.redis_streams`). Neither connects before its first publish.
"""

from __future__ import annotations

from clicktrail.brokers.target import NATS_SCHEMES, StreamTarget, check_target
from clicktrail.services.streams import StreamPublisher

__all__ = ["StreamTarget", "check_target", "open_publisher"]


def open_publisher(target: StreamTarget) -> StreamPublisher:
    """Return the publisher of `target`'s broker (not connected yet). Raises `InvalidInput`
    for bad settings (`check_target`)."""
    check_target(target)
    if target.url.split("://", 1)[0].lower() in NATS_SCHEMES:
        from clicktrail.brokers.jetstream import JetStreamPublisher

        return JetStreamPublisher(target)
    from clicktrail.brokers.redis_streams import RedisStreamPublisher

    return RedisStreamPublisher(target)
