"""Stream-out: outbox events published to NATS JetStream or Redis Streams (docs/streams.md,
ADR 0019). Run by the jobs process (`StreamOut.kick`, on a thread of its own).

The publisher reads the outbox from a cursor of its own (consumer ``stream``, in commit order:
storage/events.py), publishes each event of a streamed workspace in that order with its event
id as the id the server deduplicates on, and moves its cursor only past what the server
acknowledged. A crash between the acknowledgement and the cursor's move publishes those events
again: at least once to the server, which drops the repeats (JetStream: ``Nats-Msg-Id`` within
the stream's duplicate window; Redis: entry ids taken from the outbox order, which XADD refuses
to add twice), so consumers see each event once.

While the broker is unreachable nothing is skipped: the events wait in the outbox, and tries
back off from `min_backoff_s` to `max_backoff_s`. The work runs on its own thread, so a slow or
absent broker never holds up the jobs that share the scheduler's thread.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from clicktrail.domain.events import StoredEvent
from clicktrail.services.clock import now_us as clock
from clicktrail.services.scheduler import OwnThread

log = logging.getLogger("clicktrail.streams")

CONSUMER = "stream"
BATCH = 1000


@dataclass(frozen=True, slots=True)
class Outgoing:
    """An event as it is published: with the slug of its workspace (subjects and keys name
    workspaces by slug)."""

    event: StoredEvent
    workspace: str


class BrokerUnavailable(Exception):
    """The broker could not take (all of) a batch: `done` events from its start are stored."""

    def __init__(self, reason: str, done: int = 0) -> None:
        super().__init__(reason)
        self.reason = reason
        self.done = done


class StreamPublisher(Protocol):
    """A broker adapter (`clicktrail.streams`)."""

    def publish(self, batch: Sequence[Outgoing]) -> int:
        """Publish `batch` in order and return how many of its events the server acknowledged
        (stored now, or recognized as already stored): all of them. Raises `BrokerUnavailable`
        with the acknowledged prefix's length when the rest could not be confirmed."""
        ...

    def close(self) -> None:
        """Close the connection (a later `publish` opens a new one)."""
        ...


class StreamStore(Protocol):
    """What the stream-out needs of storage (`storage.streams.StreamQueries`)."""

    def events_after(self, consumer: str, limit: int) -> list[StoredEvent]:
        """Up to `limit` events after `consumer`'s cursor, in commit order."""
        ...

    def advance(self, consumer: str, last: StoredEvent, now_us: int) -> None:
        """Move `consumer`'s cursor to `last` (never back), in a transaction of its own."""
        ...

    def workspace_slugs(self, workspace_ids: Sequence[int]) -> dict[int, str]:
        """The slug of each of these workspaces that still exists."""
        ...


@dataclass
class StreamOut:
    """The stream-out of the jobs process: one batch after another from the cursor, each
    `tick`, with backoff while the broker is unreachable. `workspaces`: the slugs of the
    workspaces whose events are published (None: every workspace)."""

    store: StreamStore
    publisher: StreamPublisher
    workspaces: frozenset[str] | None = None
    consumer: str = CONSUMER  # the cursor's name
    batch: int = BATCH
    max_tick_s: float = 5.0
    min_backoff_s: float = 1.0
    max_backoff_s: float = 30.0
    clock: Callable[[], int] = clock
    monotonic: Callable[[], float] = time.monotonic
    failures: int = field(default=0, init=False)  # failed tries in a row
    retry_at: float = field(default=0.0, init=False)  # monotonic; no try before it
    published: int = field(default=0, init=False)  # events acknowledged since start
    _thread: OwnThread = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._thread = OwnThread(self.tick, "clicktrail-stream", "stream-out")

    def step(self) -> int:
        """Publish the next batch and move the cursor past what the server acknowledged;
        return how many outbox events the cursor moved past (0: none new). Raises
        `BrokerUnavailable` after moving it past the acknowledged part."""
        batch = self.store.events_after(self.consumer, self.batch)
        if not batch:
            return 0
        slugs = self.store.workspace_slugs(sorted({e.workspace_id for e in batch}))
        out = [
            Outgoing(e, slugs[e.workspace_id])
            for e in batch
            if e.workspace_id in slugs
            and (self.workspaces is None or slugs[e.workspace_id] in self.workspaces)
        ]
        try:
            done = self.publisher.publish(out) if out else 0
        except BrokerUnavailable as exc:
            done = exc.done
            # Past every event before the first unacknowledged one (others' events included).
            first = out[done].event.id
            upto = next(i for i, e in enumerate(batch) if e.id == first)
            if upto:
                self.store.advance(self.consumer, batch[upto - 1], self.clock())
            self.published += done
            raise
        self.store.advance(self.consumer, batch[-1], self.clock())
        self.published += done
        return len(batch)

    def tick(self) -> int:
        """Publish batches until none is left, `max_tick_s` passed or the broker fails (then
        the next try waits its backoff); return how many outbox events were passed."""
        now = self.monotonic()
        if now < self.retry_at:
            return 0
        deadline = now + self.max_tick_s
        passed = 0
        while self.monotonic() < deadline:
            try:
                n = self.step()
            except BrokerUnavailable as exc:
                self.failures += 1
                delay = min(self.max_backoff_s, self.min_backoff_s * 2 ** (self.failures - 1))
                self.retry_at = self.monotonic() + delay
                level = logging.WARNING if self.failures == 1 else logging.DEBUG
                log.log(level, "stream-out: %s; events wait in the outbox (next try in %.0f s)",
                        exc.reason, delay)  # fmt: skip
                return passed + exc.done
            if self.failures:
                log.info("stream-out: the broker is back after %d failed tries", self.failures)
                self.failures, self.retry_at = 0, 0.0
            if not n:
                break
            passed += n
        return passed

    def kick(self) -> None:
        """Run `tick` on a thread of its own unless one is running (the jobs' scheduler calls
        this: a broker's timeouts must not hold up the other jobs)."""
        self._thread.kick()

    def close(self) -> None:
        """Wait for a running `tick`, then close the broker connection."""
        self._thread.join()
        self.publisher.close()
