"""Events: what happened in a workspace, as the outbox records it and webhooks deliver it.

An event is written to the outbox (`events`, storage/events.py) in the same transaction as the
fact it reports, once per fact (its `key`), and never changes afterwards. Consumers read the
outbox in commit order, each from its own cursor: the webhook dispatcher (services/webhooks.py)
is the first; an automation engine is another cursor over the same rows.

The body a webhook receives is the event's payload exactly as stored, in the shape the
Standard Webhooks specification recommends::

    {"type": "click.created", "timestamp": "2026-12-07T17:38:17.123456Z", "data": {...}}

This module is pure: event types, payload builders, the retry schedule of deliveries.
"""

from __future__ import annotations

import base64
import json
import os
import random
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from clicktrail.domain.errors import InvalidInput
from clicktrail.domain.report import COUNTED_VERDICTS

CLICK_CREATED = "click.created"
CLICK_RECLASSIFIED = "click.reclassified"
MESSAGE_DELIVERED = "message.delivered"
MESSAGE_FAILED = "message.failed"
CONVERSION_CREATED = "conversion.created"
CONTACT_OPTED_OUT = "contact.opted_out"
CONTACT_OPTED_IN = "contact.opted_in"
ENDPOINT_DISABLED = "webhook.disabled"
AUTOMATION_FIRED = "automation.fired"

# Every type an endpoint may subscribe to, in the order docs/webhooks.md lists them.
EVENT_TYPES = (
    CLICK_CREATED, CLICK_RECLASSIFIED, MESSAGE_DELIVERED, MESSAGE_FAILED, CONVERSION_CREATED,
    CONTACT_OPTED_OUT, CONTACT_OPTED_IN, ENDPOINT_DISABLED, AUTOMATION_FIRED,
)  # fmt: skip

# Delay before each attempt of a delivery, in seconds: the first at once, the last 24 h after
# the one before; about 75.6 h from the first attempt to the last, before jitter.
RETRY_SCHEDULE_S = (0, 5, 300, 1800, 7200, 18000, 36000, 50400, 72000, 86400)
MAX_ATTEMPTS = len(RETRY_SCHEDULE_S)
JITTER = 0.2  # each delay is stretched by up to this share, never shortened (the 72 h floor)

SECRET_PREFIX = "whsec_"  # noqa: S105 (a prefix, not a secret)
SECRET_BYTES = 32
_SECRET = re.compile(r"whsec_[A-Za-z0-9+/]{24,88}={0,2}")


@dataclass(frozen=True, slots=True)
class NewEvent:
    """An event about to be written to the outbox.

    `key` makes the write idempotent: a fact reported twice (a batch moved twice, a retried
    receipt) is one event. `payload` is the JSON body receivers get, serialized once."""

    workspace_id: int
    type: str
    key: str
    occurred_us: int
    payload: str


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """An event as consumers of the outbox read it, in commit order ((txid, id))."""

    id: int
    txid: int
    public_id: str
    workspace_id: int
    type: str
    occurred_us: int
    payload: str


def iso(us: int) -> str:
    """Return the UTC time `us` (µs since the epoch) as ISO 8601 with microseconds and ``Z``."""
    return datetime.fromtimestamp(us / 1_000_000, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def event(
    workspace_id: int, type_: str, key: str, occurred_us: int, data: Mapping[str, Any]
) -> NewEvent:
    """Return the event of type `type_` with `data`, its payload serialized (keys in order)."""
    body = {"type": type_, "timestamp": iso(occurred_us), "data": dict(data)}
    payload = json.dumps(body, separators=(",", ":"), ensure_ascii=False)
    return NewEvent(workspace_id, type_, f"{type_}/{key}", occurred_us, payload)


def verdict_data(
    verdict: str | None, reasons: Sequence[str], score: int | None, final: bool
) -> dict[str, Any]:
    """Return a click's verdict as events show it (`verdict` None: not classified yet)."""
    return {"verdict": verdict, "reasons": list(reasons), "score": score, "final": final}


def new_secret(random_bytes: Callable[[int], bytes] = os.urandom) -> str:
    """Return a new endpoint secret: ``whsec_`` and 32 random bytes in base64 (the Standard
    Webhooks form, which its libraries accept as they are)."""
    return SECRET_PREFIX + base64.b64encode(random_bytes(SECRET_BYTES)).decode()


def check_secret(secret: str, field: str = "secret") -> str:
    """Return `secret` if it is a ``whsec_`` secret of 18 to 64 bytes in base64; raises
    `InvalidInput` naming `field` otherwise."""
    if not _SECRET.fullmatch(secret):
        raise InvalidInput(
            f"{field} must be whsec_ followed by 18 to 64 random bytes in base64", field=field
        )
    try:
        raw = base64.b64decode(secret[len(SECRET_PREFIX) :], validate=True)
    except ValueError:
        raise InvalidInput(f"{field} is not valid base64 after whsec_", field=field) from None
    if not 18 <= len(raw) <= 64:
        raise InvalidInput(f"{field} must hold 18 to 64 bytes", field=field)
    return secret


def check_event_types(types: Sequence[str], field: str = "events") -> list[str]:
    """Return `types` deduplicated in `EVENT_TYPES` order; raises `InvalidInput` for an empty
    list or an unknown type."""
    if not types:
        raise InvalidInput(f"{field}: subscribe to at least one event type", field=field)
    for i, x in enumerate(types):
        if x not in EVENT_TYPES:
            raise InvalidInput(
                f"{field}: unknown event type {x!r}; known: {', '.join(EVENT_TYPES)}",
                field=f"{field}/{i}",
            )
    return [x for x in EVENT_TYPES if x in types]


def retry_delay_us(attempts_made: int, rng: Callable[[], float] = random.random) -> int | None:
    """Return how long to wait before the next attempt after `attempts_made` failed ones
    (jittered up by up to `JITTER`), None when the schedule is exhausted."""
    if attempts_made >= MAX_ATTEMPTS:
        return None
    base = RETRY_SCHEDULE_S[attempts_made] * 1_000_000
    return int(base * (1 + JITTER * rng()))


def counts(verdict: str | None) -> bool:
    """Return whether a click with `verdict` is a person's as webhooks see it (not classified
    yet, human or suspect: the verdicts reports count)."""
    return verdict is None or verdict in COUNTED_VERDICTS


def wants(
    subscribed: Sequence[str], humans_only: bool, provisional: bool, type_: str, payload: str
) -> bool:
    """Return whether an endpoint with these settings receives an event of `type_` whose body
    is `payload`: it subscribes to the type, and for `click.created` the verdict's stage is
    the one it asked for (provisional or final) and, with `humans_only`, the click counts."""
    if type_ not in subscribed:
        return False
    if type_ != CLICK_CREATED:
        return True
    verdict = json.loads(payload)["data"]["verdict"]
    if bool(verdict["final"]) == provisional:
        return False
    return not humans_only or counts(verdict["verdict"])
