"""The tests' side of the brokers: a stream name and prefix unique to each test, and reading
back what the stream-out published, in the stream's order, as consumers would."""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import nats
import pytest
import redis

from clicktrail.brokers import StreamTarget

NATS_URL = os.environ.get("CLICKTRAIL_TEST_NATS_URL", "nats://127.0.0.1:4222")
REDIS_URL = os.environ.get("CLICKTRAIL_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
REQUIRED = os.environ.get("CLICKTRAIL_TEST_POSTGRES", "") not in ("", "0", "false")


def open_broker(kind: str) -> Iterator[Broker]:
    """Yield the real broker of `kind` (``nats`` or ``redis``) with this test's own names, and
    delete its stream and keys afterwards; skip when it is unreachable (fail in CI)."""
    url = NATS_URL if kind == "nats" else REDIS_URL
    reason = reachable(url)
    if reason:
        if REQUIRED:
            pytest.fail(f"CLICKTRAIL_TEST_POSTGRES is set (CI) but {reason}")
        pytest.skip(reason)
    reader = JetStreamReader(url) if kind == "nats" else RedisReader(url)
    yield reader
    reader.cleanup()


@dataclass(frozen=True)
class Entry:
    """One published event as a consumer reads it."""

    where: str  # the NATS subject, or the Redis key
    event_id: str  # Nats-Msg-Id, or the entry's `id` field
    type: str
    workspace: str
    payload: str


def reachable(url: str) -> str | None:
    """Return why `url`'s server cannot be reached, or None."""
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname, parts.port), timeout=2):
            return None
    except OSError as exc:
        return f"{parts.scheme} not reachable at {parts.hostname}:{parts.port}: {exc}"


class Broker:
    """A broker with this test's own names."""

    kind = ""

    def __init__(self, url: str) -> None:
        self.url = url
        tag = uuid.uuid4().hex[:10]
        self.prefix = f"t{tag}"
        self.stream = f"T{tag}".upper()

    def target(self, url: str | None = None, **kw: Any) -> StreamTarget:
        """The target of this test's names (at `url`, default the real server)."""
        return StreamTarget(url or self.url, self.prefix, self.stream, **kw)

    def read(self, workspace: str | None = None) -> list[Entry]:
        """Every entry published, in the stream's order (one workspace's, if named)."""
        raise NotImplementedError

    def cleanup(self) -> None:
        raise NotImplementedError


class JetStreamReader(Broker):
    kind = "nats"

    def _run(self, coro: Any) -> Any:
        return asyncio.run(coro)

    async def _read(self, workspace: str | None) -> list[Entry]:
        nc = await nats.connect(self.url)
        try:
            js = nc.jetstream()
            subject = f"{self.prefix}.{workspace}.>" if workspace else f"{self.prefix}.>"
            # A consumer as docs/streams.md shows it: a durable pull consumer on a filter.
            name = f"reader-{uuid.uuid4().hex[:8]}"
            sub = await js.pull_subscribe(subject, durable=name, stream=self.stream)
            out: list[Entry] = []
            while True:
                try:
                    msgs = await sub.fetch(500, timeout=0.5)
                except (nats.errors.TimeoutError, TimeoutError):
                    break
                for m in msgs:
                    h = m.headers or {}
                    out.append(Entry(m.subject, h["Nats-Msg-Id"], h["Clicktrail-Event-Type"],
                                     h["Clicktrail-Workspace"], m.data.decode()))  # fmt: skip
                    await m.ack()
            await js.delete_consumer(self.stream, name)
            return out
        finally:
            await nc.close()

    def read(self, workspace: str | None = None) -> list[Entry]:
        return self._run(self._read(workspace))  # type: ignore[no-any-return]

    def stream_info(self) -> Any:
        async def info() -> Any:
            nc = await nats.connect(self.url)
            try:
                return await nc.jetstream().stream_info(self.stream)
            finally:
                await nc.close()

        return self._run(info())

    def cleanup(self) -> None:
        async def drop() -> None:
            nc = await nats.connect(self.url)
            try:
                await nc.jetstream().delete_stream(self.stream)
            except nats.js.errors.NotFoundError:
                pass
            finally:
                await nc.close()

        self._run(drop())


class RedisReader(Broker):
    kind = "redis"

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.client = redis.Redis.from_url(url, decode_responses=True)

    def keys(self) -> list[str]:
        return sorted(self.client.scan_iter(f"{self.prefix}:*"))

    def read(self, workspace: str | None = None) -> list[Entry]:
        keys = [f"{self.prefix}:events:{workspace}"] if workspace else self.keys()
        rows: list[tuple[tuple[int, int], Entry]] = []
        for key in keys:
            for entry_id, f in self.client.xrange(key):
                ms, seq = entry_id.split("-")
                rows.append(((int(ms), int(seq)),
                             Entry(key, f["id"], f["type"], f["workspace"], f["payload"])))  # fmt: skip
        return [e for _, e in sorted(rows, key=lambda r: r[0])]

    def cleanup(self) -> None:
        keys = self.keys()
        if keys:
            self.client.delete(*keys)
        self.client.close()
