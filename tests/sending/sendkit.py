"""Test helpers for sending jobs: a fake clock, scripted providers and a fake SMS aggregator on
127.0.0.1 that records every message and honours an idempotency key."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from clicktrail.domain.status import Status
from clicktrail.services.ports import OutgoingSms, SendResult
from clicktrail.services.sending import SendDefaults, Sending
from clicktrail.storage.holdouts import HoldoutQueries
from factories import NOW_US, Repos


class FakeTime:
    """A clock (µs) that only moves when the code under test sleeps."""

    def __init__(self, start_us: int = NOW_US) -> None:
        self.now_us = start_us
        self.slept = 0.0

    def clock(self) -> int:
        return self.now_us

    def sleep(self, seconds: float) -> None:
        self.slept += seconds
        self.now_us += max(1, int(seconds * 1_000_000))

    def advance(self, seconds: float) -> None:
        self.now_us += int(seconds * 1_000_000)


Answer = Callable[[OutgoingSms, int], SendResult]


def sent(m: OutgoingSms, _attempt: int) -> SendResult:
    return SendResult(m.message_id, Status.SENT, "prov-" + m.message_id)


@dataclass
class ScriptedProvider:
    """A provider whose answer per message comes from `answer(message, attempt)` (attempt from
    1); it records every hand-over with the fake time. `before_send` runs before each batch."""

    answer: Answer = sent
    name: str = "scripted"
    reconcile_complete: bool = False
    idempotent: bool = False
    fail_batches: int = 0  # the first N send() calls raise
    clock: Callable[[], int] | None = None
    before_send: Callable[[Sequence[OutgoingSms]], None] | None = None
    calls: list[list[str]] = field(default_factory=list)
    # (message id, to, fake time, status answered) per hand-over
    handed: list[tuple[str, str, int, Status]] = field(default_factory=list)
    taken: dict[str, str] = field(default_factory=dict)  # message id -> provider id (accepted)

    def send(self, batch: Sequence[OutgoingSms]) -> list[SendResult]:
        if self.before_send is not None:
            self.before_send(batch)
        self.calls.append([m.message_id for m in batch])
        if self.fail_batches:
            self.fail_batches -= 1
            raise ConnectionError("provider unreachable")
        out = []
        for m in batch:
            attempt = 1 + sum(1 for h in self.handed if h[0] == m.message_id)
            res = self.answer(m, attempt)
            self.handed.append((m.message_id, m.to, self.clock() if self.clock else 0, res.status))
            if res.status == Status.SENT:
                self.taken[m.message_id] = res.provider_message_id or ""
            out.append(res)
        return out

    def reconcile(self, batch: Sequence[OutgoingSms]) -> list[SendResult]:
        if not self.reconcile_complete:
            return []
        return [
            SendResult(m.message_id, Status.SENT, self.taken[m.message_id])
            for m in batch
            if m.message_id in self.taken
        ]

    def deliveries(self) -> dict[str, int]:
        """Hand-overs the provider accepted, per recipient phone."""
        out: dict[str, int] = {}
        for _mid, to, _at, status in self.handed:
            if status == Status.SENT:
                out[to] = out.get(to, 0) + 1
        return out


def sending_for(
    store: Repos,
    provider: Any,
    fake: FakeTime | None = None,
    **defaults: Any,
) -> Sending:
    """A `Sending` over `store` that always uses `provider`, on the fake time when given."""
    return Sending(
        store,
        store.send_jobs,
        lambda _ws, _name: provider,
        defaults=SendDefaults(**defaults),
        clock=fake.clock if fake else None,
        sleep=fake.sleep if fake else time.sleep,
        jitter=lambda: 0.5,
        holdouts=HoldoutQueries(store.engine),
    )


# -- a fake SMS aggregator over HTTP ------------------------------------------------------------


class FakeAggregator:
    """An SMS API on 127.0.0.1: `POST /send` with JSON ``{"to", "text", "ref"}``.

    Every request is recorded (`requests`); a message is *delivered* the first time its
    idempotency key (header `Idempotency-Key`) is seen; a repeat of a key gets the first answer
    back and is not delivered again (as real aggregators with idempotency keys do). Without
    the header every request is a delivery. `delay` slows each answer (widens the window a
    kill can land in). Thread-safe.
    """

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.lock = threading.Lock()
        self.requests: list[dict[str, Any]] = []
        self.delivered: list[dict[str, Any]] = []
        self.by_key: dict[str, str] = {}
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_args: Any) -> None:
                pass

            def do_POST(self) -> None:
                size = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(size)
                try:
                    data = json.loads(raw)
                    complete = len(raw) == size and "to" in data
                except ValueError:
                    complete = False
                if not complete:
                    # The sender died mid-request (killed): a real API never delivers half a
                    # request. It answers 400 to a connection nobody reads any more.
                    with contextlib.suppress(OSError):
                        self.send_response(400)
                        self.end_headers()
                    return
                key = self.headers.get("idempotency-key")
                if owner.delay:
                    time.sleep(owner.delay)
                with owner.lock:
                    owner.requests.append({**data, "key": key})
                    if key is not None and key in owner.by_key:
                        answer = owner.by_key[key]
                    else:
                        answer = f"agg-{len(owner.delivered) + 1}"
                        owner.delivered.append({**data, "key": key, "id": answer})
                        if key is not None:
                            owner.by_key[key] = answer
                body = json.dumps({"message_id": answer}).encode()
                try:
                    self.send_response(200)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the sender was killed while we answered: it got no answer

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FakeAggregator:
        self.thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def deliveries_per_phone(self) -> dict[str, int]:
        with self.lock:
            out: dict[str, int] = {}
            for d in self.delivered:
                out[d["to"]] = out.get(d["to"], 0) + 1
            return out
