"""NATS JetStream: each event published to ``<prefix>.<slug>.<type>`` (e.g.
``clicktrail.acme.click.created``) with ``Nats-Msg-Id: <event id>``, which the stream
deduplicates on within its duplicate window.

The stream (`StreamTarget.stream`, subjects ``<prefix>.>``) is created with the target's
duplicate window when it is missing; an existing one is used as it is (an operator who creates
it gives it those subjects and a window: docs/streams.md). A batch is published pipelined
(``publish_async``, each message expecting that stream) and its acknowledgements awaited; the
acknowledged prefix is what the cursor moves past.

nats-py is asyncio: its event loop runs on a thread of this publisher's own, and the
synchronous `publish` hands it work. The connection is opened on the first publish and again
after a failure (no reconnecting in the background: the stream-out's backoff decides when).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Coroutine, Sequence
from typing import Any, TypeVar

import nats
import nats.errors
import nats.js.errors
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import PubAck, StorageType, StreamConfig

from clicktrail.brokers.target import StreamTarget
from clicktrail.services.streams import BrokerUnavailable, Outgoing

_T = TypeVar("_T")
MAX_PENDING = 4000  # publishes awaiting their acknowledgement at once


def subject_of(prefix: str, workspace: str, event_type: str) -> str:
    """Return the subject of an event (its type's dots make subject tokens: ``click.created``)."""
    return f"{prefix}.{workspace}.{event_type}"


async def _quiet(_exc: Exception) -> None:
    """nats-py's error callback: failures surface as exceptions of `publish` instead."""


async def _close(nc: Client) -> None:
    """Close `nc` and its socket, whatever state a failure left it in."""
    with contextlib.suppress(Exception):  # a broken connection: nothing more to do
        await nc.close()
    writer = getattr(nc, "_transport", None)
    with contextlib.suppress(Exception):
        if writer is not None:
            writer.close()


class JetStreamPublisher:
    """Publishes batches of events to one JetStream stream."""

    def __init__(self, target: StreamTarget, timeout: float = 5.0) -> None:
        self.target = target
        self.timeout = timeout
        self.repeats = 0  # acknowledgements that said "duplicate" (since start)
        self._nc: Client | None = None
        self._js: JetStreamContext | None = None
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="clicktrail-nats", daemon=True
        )
        self._thread.start()

    def _call(self, coro: Coroutine[Any, Any, _T], timeout: float) -> _T:
        fut = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            return fut.result(timeout)
        except TimeoutError:
            fut.cancel()  # not left running beside the next call
            raise

    def publish(self, batch: Sequence[Outgoing]) -> int:
        """Publish `batch` in order; return its length once every message is acknowledged.
        Raises `BrokerUnavailable` with the acknowledged prefix's length otherwise."""
        if not batch:
            return 0
        acked = [False] * len(batch)
        try:
            self._call(self._publish(batch, acked), self.timeout * 3 + len(batch) * 0.01)
        except Exception as exc:  # connection refused, timeouts, API errors: all wait and retry
            done = acked.index(False) if False in acked else len(batch)
            self._call(self._drop(), self.timeout)
            reason = f"{type(exc).__name__}: {exc}".rstrip(": ")
            raise BrokerUnavailable(f"NATS at {self.target.url}: {reason}", done) from None
        return len(batch)

    async def _connect(self) -> JetStreamContext:
        if self._nc is not None and self._js is not None and self._nc.is_connected:
            return self._js
        await self._drop()
        nc = Client()
        try:
            await nc.connect(
                self.target.url, connect_timeout=int(max(1, self.timeout)), allow_reconnect=False,
                error_cb=_quiet, name="clicktrail-stream", max_reconnect_attempts=0,
            )  # fmt: skip
        except BaseException:
            await _close(nc)  # a failed handshake leaves its socket open otherwise
            raise
        js = nc.jetstream(timeout=self.timeout, publish_async_max_pending=MAX_PENDING)
        try:
            await js.stream_info(self.target.stream)
        except nats.js.errors.NotFoundError:
            await js.add_stream(StreamConfig(
                name=self.target.stream, subjects=[f"{self.target.prefix}.>"],
                duplicate_window=self.target.dedup_window_s, storage=StorageType.FILE,
            ))  # fmt: skip
        self._nc, self._js = nc, js
        return js

    async def _publish(self, batch: Sequence[Outgoing], acked: list[bool]) -> None:
        js = await self._connect()
        futures: list[asyncio.Future[PubAck]] = []
        for o in batch:
            e = o.event
            headers = {"Nats-Msg-Id": e.public_id, "Clicktrail-Event-Type": e.type,
                       "Clicktrail-Workspace": o.workspace}  # fmt: skip
            futures.append(await js.publish_async(
                subject_of(self.target.prefix, o.workspace, e.type), e.payload.encode(),
                stream=self.target.stream, headers=headers, wait_stall=self.timeout,
            ))  # fmt: skip
        for i, fut in enumerate(futures):
            ack = await asyncio.wait_for(fut, self.timeout)
            if ack.duplicate:
                self.repeats += 1
            acked[i] = True

    async def _drop(self) -> None:
        nc, self._nc, self._js = self._nc, None, None
        if nc is not None and not nc.is_closed:
            await _close(nc)

    def close(self) -> None:
        """Close the connection and stop the event loop's thread."""
        if self._loop.is_running():
            self._call(self._drop(), self.timeout)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(self.timeout)
        if not self._loop.is_running():
            self._loop.close()
