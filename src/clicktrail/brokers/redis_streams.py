"""Redis Streams: each event XADDed to its workspace's stream, ``<prefix>:events:<slug>``.

Redis has no deduplication of its own, so the entry id is taken from the outbox order: event
(txid, id) becomes entry ``<txid>-<id>`` (``0-<id>`` on SQLite). The outbox is read in that
order and XADD refuses an id not above the stream's last one (also after trimming or deleting
entries: the stream keeps its last id), so an event published again after a crash is refused
and counted as already stored. One Lua script adds a batch in order and stops at the first
other error, so nothing after an event that failed is ever added before it (which would make
that event look published). ADR 0019 weighs the alternatives.

Entries carry ``id`` (the event id, as webhooks' ``webhook-id``), ``type``, ``workspace`` and
``payload`` (the JSON body webhooks get).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import redis
import redis.exceptions

from clicktrail.brokers.target import StreamTarget
from clicktrail.services.streams import BrokerUnavailable, Outgoing

FIELDS = 5  # ARGV per event: entry id, event id, type, workspace, payload
# Returns {events added or refused as repeats, repeats, the error that stopped it or ''}.
XADD_IN_ORDER = """
local maxlen = tonumber(ARGV[1])
local repeats = 0
for i = 1, #KEYS do
  local b = 1 + (i - 1) * 5
  local r
  if maxlen > 0 then
    r = redis.pcall('XADD', KEYS[i], 'MAXLEN', '~', maxlen, ARGV[b + 1], 'id', ARGV[b + 2],
                    'type', ARGV[b + 3], 'workspace', ARGV[b + 4], 'payload', ARGV[b + 5])
  else
    r = redis.pcall('XADD', KEYS[i], ARGV[b + 1], 'id', ARGV[b + 2], 'type', ARGV[b + 3],
                    'workspace', ARGV[b + 4], 'payload', ARGV[b + 5])
  end
  if type(r) == 'table' and r.err then
    if string.find(r.err, 'equal or smaller', 1, true) then
      repeats = repeats + 1
    else
      return {i - 1, repeats, r.err}
    end
  end
end
return {#KEYS, repeats, ''}
"""


def key_of(prefix: str, workspace: str) -> str:
    """Return the stream key of a workspace's events."""
    return f"{prefix}:events:{workspace}"


def entry_id(txid: int, event_id: int) -> str:
    """Return the entry id of outbox event (txid, id): increasing in the outbox's order."""
    return f"{txid}-{event_id}"


class RedisStreamPublisher:
    """Publishes batches of events to Redis Streams with one script call each."""

    def __init__(self, target: StreamTarget, timeout: float = 5.0) -> None:
        self.target = target
        self.client: redis.Redis = redis.Redis.from_url(
            target.url, socket_connect_timeout=min(timeout, 2.0), socket_timeout=timeout
        )
        self.script: Any = self.client.register_script(XADD_IN_ORDER)
        self.repeats = 0  # events refused as already stored (since start)

    def publish(self, batch: Sequence[Outgoing]) -> int:
        """XADD `batch` in order; return its length. Raises `BrokerUnavailable` with the
        number of events stored (or refused as repeats) before a failure."""
        if not batch:
            return 0
        keys = [key_of(self.target.prefix, o.workspace) for o in batch]
        args: list[Any] = [self.target.maxlen]
        for o in batch:
            e = o.event
            args += [entry_id(e.txid, e.id), e.public_id, e.type, o.workspace, e.payload]
        try:
            done, repeats, err = self.script(keys=keys, args=args)
        except redis.exceptions.RedisError as exc:
            raise BrokerUnavailable(f"Redis at {self._where()}: {exc}") from None
        self.repeats += int(repeats)
        if int(done) < len(batch):
            error = err.decode() if isinstance(err, bytes) else str(err)
            raise BrokerUnavailable(f"Redis at {self._where()}: {error}", int(done))
        return len(batch)

    def _where(self) -> str:
        kw = self.client.connection_pool.connection_kwargs
        return str(kw.get("path") or f"{kw.get('host')}:{kw.get('port')}")

    def close(self) -> None:
        """Close the pooled connections."""
        self.client.close()
