"""Webhook deliveries: events from the outbox to the endpoints that want them, signed, retried,
logged, replayed (docs/webhooks.md). Run by the jobs process (`Deliveries.tick`).

1. **Fan-out.** The dispatcher reads the outbox from its cursor (consumer ``webhooks``, in
   commit order: storage/events.py) and creates one delivery per enabled endpoint that wants
   each event (`domain.events.wants`), moving its cursor in the same transaction.
2. **Claim.** Due deliveries of enabled endpoints are claimed in a batch: their attempt count
   goes up and their next attempt moves past the attempt's timeout (a lease), committed before
   anything is sent. A worker killed mid-send leaves them to be claimed again when the lease
   ends: delivery is at least once, every attempt with the same ``webhook-id`` (the event's
   id), which receivers deduplicate on.
3. **Send.** Each request is signed with the Standard Webhooks library (``standardwebhooks``):
   ``webhook-id``, ``webhook-timestamp`` and ``webhook-signature`` (``v1,<base64>``; two,
   space-separated, while a rotated-out secret still signs). The body is the event's payload
   byte for byte. Requests go through the outbound policy (no private or loopback address
   unless the operator allows it) with a timeout, `concurrency` at a time.
4. **Outcome.** A 2xx succeeds. 410 Gone disables the endpoint at once (the delivery fails).
   Anything else (another status, a timeout, a refused connection) is retried on
   `domain.events.RETRY_SCHEDULE_S` with jitter, over about 75 hours, then fails. Every attempt
   is logged with its status or error. An endpoint whose failed attempts in a row reach
   `disable_failures` over at least `disable_after_us` is disabled, and a `webhook.disabled`
   event is written for the workspace's other endpoints.

Replay puts a delivery back to pending, due now (its attempts start over), whatever its state.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from standardwebhooks import Webhook

from clicktrail.domain import events
from clicktrail.domain.errors import NotFound
from clicktrail.domain.events import StoredEvent
from clicktrail.domain.models import Workspace
from clicktrail.services.clock import now_us as clock
from clicktrail.services.listing import Page, decode_cursor, page_of
from clicktrail.services.scheduler import OwnThread
from clicktrail.services.webhooks import Endpoint, WebhookStore, get_endpoint

log = logging.getLogger("clicktrail.webhooks")

CONSUMER = "webhooks"
FAN_OUT_BATCH = 1000
ROUNDS_PER_CLAIM = 4  # a claim takes `concurrency` deliveries this many times over
LEASE_MARGIN_US = 30_000_000  # past the batch's longest time: retried only when its worker is gone
USER_AGENT = "clicktrail-webhooks/1"

# (url, headers, body, timeout) -> (status or None, the response's start or the error)
Send = Callable[[str, Mapping[str, str], bytes, float], tuple[int | None, str]]


@dataclass(frozen=True, slots=True)
class Due:
    """A claimed delivery: what to send, where, with which secrets."""

    id: int
    public_id: str
    attempt: int  # this attempt's number, from 1
    endpoint_id: int
    url: str
    secrets: tuple[str, ...]
    event_id: str  # the webhook-id
    event_type: str
    payload: str


@dataclass(frozen=True, slots=True)
class Result:
    """What one attempt got, and what follows: `state` ``succeeded``, ``pending`` (retry at
    `next_attempt_us`) or ``failed``; `gone` when the endpoint answered 410."""

    due: Due
    at_us: int
    duration_us: int
    status: int | None
    error: str | None
    response: str | None
    state: str
    next_attempt_us: int | None
    gone: bool = False


@dataclass(frozen=True, slots=True)
class Delivery:
    """A delivery as the API shows it."""

    public_id: str
    endpoint: str  # public id
    event: str  # public id (the webhook-id)
    event_type: str
    state: str
    attempts: int
    next_attempt_us: int | None
    last_attempt_us: int | None
    last_status: int | None
    last_error: str | None
    created_us: int
    completed_us: int | None


@dataclass(frozen=True, slots=True)
class Attempt:
    """One attempt of a delivery (the delivery log)."""

    attempt: int
    at_us: int
    status: int | None
    error: str | None
    duration_us: int
    response: str | None


@dataclass(frozen=True, slots=True)
class DisablePolicy:
    """When a run of failures disables an endpoint: `failures` in a row (0: never) spanning at
    least `after_us`."""

    failures: int = 50
    after_us: int = 259_200_000_000


class DeliveryStore(Protocol):
    """What deliveries need of storage (`storage.deliveries.DeliveryQueries`)."""

    def events_after(self, consumer: str, limit: int) -> list[StoredEvent]:
        """Up to `limit` events after `consumer`'s cursor, in commit order."""
        ...

    def endpoints_of(self, workspace_ids: Sequence[int]) -> list[Endpoint]:
        """The enabled endpoints of these workspaces."""
        ...

    def add_deliveries(self, consumer: str, pairs: Sequence[tuple[Endpoint, StoredEvent]],
                       last: StoredEvent, now_us: int) -> int:  # fmt: skip
        """Create a pending delivery, due now, per (endpoint, event) not delivered yet, and
        move `consumer`'s cursor to `last`, in one transaction; return how many were new."""
        ...

    def claim(self, limit: int, now_us: int, lease_until_us: int) -> list[Due]:
        """Claim up to `limit` due pending deliveries of enabled endpoints (oldest due first):
        attempts + 1, next attempt at `lease_until_us`; committed before returning."""
        ...

    def record(self, results: Sequence[Result], policy: DisablePolicy, now_us: int) -> list[int]:
        """Store the results with one log row each, the endpoints' failure runs, 410s and runs
        past `policy` disabling endpoints (with a `webhook.disabled` event), in one
        transaction; return the ids of the endpoints disabled."""
        ...

    def deliveries_page(self, workspace_id: int, endpoint_id: int, after: str | None,
                        limit: int, state: str | None) -> list[Delivery]:  # fmt: skip
        """An endpoint's deliveries, newest first, after the one named `after`."""
        ...

    def delivery(self, workspace_id: int, public_id: str) -> tuple[Delivery, list[Attempt]] | None:
        """A delivery of the workspace with its attempts, oldest first."""
        ...

    def replay(self, workspace_id: int, public_ids: Sequence[str], now_us: int) -> int:
        """Make these deliveries pending and due now, attempts from 0; return how many."""
        ...

    def replay_since(self, endpoint: Endpoint, since_us: int, now_us: int) -> int:
        """Create or reset a delivery, due now, for every event of the endpoint's workspace and
        types that occurred at or after `since_us`; return how many."""
        ...


@functools.lru_cache(maxsize=1024)
def _signer(secret: str) -> Webhook:
    return Webhook(secret)  # decodes the secret once, not per request


def signature(secrets: Sequence[str], msg_id: str, at_s: int, body: bytes) -> str:
    """Return the ``webhook-signature`` header: one ``v1,<base64>`` per secret, space-separated
    (Standard Webhooks; its library computes each)."""
    ts = datetime.fromtimestamp(at_s, UTC)
    return " ".join(_signer(s).sign(msg_id, ts, body) for s in secrets)


def request_headers(due: Due, at_s: int, body: bytes) -> dict[str, str]:
    """Return the headers of an attempt of `due` sent at `at_s` (Unix seconds)."""
    return {
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        "webhook-id": due.event_id,
        "webhook-timestamp": str(at_s),
        "webhook-signature": signature(due.secrets, due.event_id, at_s, body),
    }


def outcome(
    due: Due, status: int | None, detail: str, at_us: int, duration_us: int,
    rng: Callable[[], float] | None = None,
) -> Result:  # fmt: skip
    """Return the `Result` of an attempt of `due` that got `status` (None: no response,
    `detail` says why) at `at_us`."""
    ok = status is not None and 200 <= status < 300
    gone = status == 410
    error = None if status is not None else detail[:300]
    response = detail[:500] if status is not None else None
    if ok:
        return Result(due, at_us, duration_us, status, None, response, "succeeded", None)
    delay = None if gone else events.retry_delay_us(due.attempt, *(() if rng is None else (rng,)))
    if delay is None:
        return Result(due, at_us, duration_us, status, error, response, "failed", None, gone)
    return Result(due, at_us, duration_us, status, error, response, "pending", at_us + delay)


@dataclass
class Deliveries:
    """The webhook work of the jobs process: fan-out, then due deliveries, each `tick`."""

    store: DeliveryStore
    send: Send
    timeout: float = 10.0
    concurrency: int = 16
    policy: DisablePolicy = field(default_factory=DisablePolicy)
    clock: Callable[[], int] = clock
    max_tick_s: float = 5.0
    _pool: ThreadPoolExecutor | None = field(default=None, init=False, repr=False)
    _thread: OwnThread = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._thread = OwnThread(self.tick, "clicktrail-webhooks", "webhook deliveries")

    def fan_out(self) -> int:
        """Create the deliveries of the events after the dispatcher's cursor; return how many
        events were read (0: none new)."""
        batch = self.store.events_after(CONSUMER, FAN_OUT_BATCH)
        if not batch:
            return 0
        by_ws: dict[int, list[Endpoint]] = {}
        for ep in self.store.endpoints_of(sorted({e.workspace_id for e in batch})):
            by_ws.setdefault(ep.workspace_id, []).append(ep)
        pairs = [
            (ep, e)
            for e in batch
            for ep in by_ws.get(e.workspace_id, ())
            if events.wants(ep.event_types, ep.humans_only, ep.provisional, e.type, e.payload)
        ]
        self.store.add_deliveries(CONSUMER, pairs, batch[-1], self.clock())
        return len(batch)

    def _attempt(self, due: Due) -> Result:
        body = due.payload.encode()
        start = self.clock()
        # Signed with the wall clock, whatever clock schedules: receivers check it against theirs.
        headers = request_headers(due, int(time.time()), body)
        t0 = time.perf_counter()
        try:
            status, detail = self.send(due.url, headers, body, self.timeout)
        except Exception as exc:  # a sender's bug must not lose the claim's outcome
            log.exception("webhook send to %s failed", due.url)
            status, detail = None, f"{type(exc).__name__}: {exc}"
        took = int((time.perf_counter() - t0) * 1_000_000)
        return outcome(due, status, detail, start, took)

    def deliver(self) -> int:
        """Send one claimed batch of due deliveries and record what they got; return how many
        were attempted (0: none due).

        The lease covers the whole batch even if every attempt waits its full timeout (the
        batch is `ROUNDS_PER_CLAIM` rounds of `concurrency` attempts), so no attempt of a live
        worker starts after its claim could have been taken over.
        """
        now = self.clock()
        lease = now + int(ROUNDS_PER_CLAIM * self.timeout * 1_000_000) + LEASE_MARGIN_US
        claimed = self.store.claim(ROUNDS_PER_CLAIM * self.concurrency, now, lease)
        if not claimed:
            return 0
        if self._pool is None:
            self._pool = ThreadPoolExecutor(
                self.concurrency, thread_name_prefix="clicktrail-webhook"
            )
        results = list(self._pool.map(self._attempt, claimed))
        for ep in self.store.record(results, self.policy, self.clock()):
            log.warning("webhook endpoint %s disabled (410, or a run of failures)", ep)
        return len(claimed)

    def tick(self) -> int:
        """Fan out and deliver until nothing is due or `max_tick_s` passed (the other jobs
        share the thread); return how many attempts were made."""
        deadline = time.monotonic() + self.max_tick_s
        done = 0
        while time.monotonic() < deadline:
            read = self.fan_out()
            sent = self.deliver()
            done += sent
            if not read and not sent:
                break
        return done

    def kick(self) -> None:
        """Run `tick` on a thread of its own unless one is running (the jobs' scheduler calls
        this: a slow endpoint's timeouts must not hold up the click pipeline that shares the
        scheduler's thread)."""
        self._thread.kick()

    def close(self) -> None:
        """Wait for a running `tick`, then stop the sending threads."""
        self._thread.join()
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None


# -- what the API and the CLI ask ----------------------------------------------------------------


def list_deliveries(
    store: DeliveryStore, endpoints: WebhookStore, workspace: Workspace, endpoint: str,
    limit: int, cursor: str | None, state: str | None = None,
) -> Page[Delivery]:  # fmt: skip
    """Return a page of an endpoint's deliveries, newest first (optionally in one `state`).
    Raises `NotFound` for another workspace's endpoint, `InvalidInput` for a bad cursor."""
    ep = get_endpoint(endpoints, workspace, endpoint)
    after = decode_cursor("webhook-deliveries", cursor)
    rows = store.deliveries_page(workspace.id, ep.id, after, limit + 1, state)
    return page_of("webhook-deliveries", rows, limit, lambda r: r.public_id)


def get_delivery(
    store: DeliveryStore, workspace: Workspace, public_id: str
) -> tuple[Delivery, list[Attempt]]:
    """Return a delivery of the workspace and its attempts. Raises `NotFound`."""
    found = store.delivery(workspace.id, public_id) if public_id.startswith("dlv_") else None
    if found is None:
        raise NotFound("webhook delivery not found in this workspace", field="delivery")
    return found


def replay(store: DeliveryStore, workspace: Workspace, public_id: str, now_us: int) -> Delivery:
    """Send a delivery again now, attempts from 0, whatever its state; return it as it is
    now. Raises `NotFound`."""
    get_delivery(store, workspace, public_id)
    store.replay(workspace.id, [public_id], now_us)
    return get_delivery(store, workspace, public_id)[0]


def replay_since(
    store: DeliveryStore, endpoints: WebhookStore, workspace: Workspace, endpoint: str,
    since_us: int, now_us: int,
) -> int:  # fmt: skip
    """Send an endpoint every event of its types since `since_us` again (or for the first
    time, e.g. those that happened while it was disabled); return how many deliveries are now
    due. Raises `NotFound`."""
    ep = get_endpoint(endpoints, workspace, endpoint)
    return store.replay_since(ep, since_us, now_us)
