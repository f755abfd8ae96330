"""Message delivery status: a forward-only state machine.

``queued → sending → sent → delivered | failed | undelivered``. A receipt may arrive late, twice
or out of order (a `sent` callback after `delivered`); it never moves a message back. The three
final states are terminal: the first one recorded wins.

Sending jobs add three states (docs/providers.md, "Sending jobs"): `cancelled` and `skipped`
(never handed to a provider: the job was cancelled, the recipient opted out or the number is
invalid; terminal, no receipt moves them) and `unknown` (handed to a provider that cannot say
whether it took the message; held for an operator, and a receipt moves it forward like `sending`).
"""

from __future__ import annotations

from enum import StrEnum


class Status(StrEnum):
    """Where a message is in its life."""

    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    DELIVERED = "delivered"
    FAILED = "failed"
    UNDELIVERED = "undelivered"
    CANCELLED = "cancelled"
    SKIPPED = "skipped"
    UNKNOWN = "unknown"


RANK: dict[Status, int] = {
    Status.QUEUED: 0,
    Status.SENDING: 1,
    Status.SENT: 2,
    Status.DELIVERED: 3,
    Status.FAILED: 3,
    Status.UNDELIVERED: 3,
    Status.CANCELLED: 3,
    Status.SKIPPED: 3,
    Status.UNKNOWN: 1,
}
FINAL = frozenset({Status.DELIVERED, Status.FAILED, Status.UNDELIVERED})
RECEIPT_STATUSES = frozenset({Status.SENT, Status.DELIVERED, Status.FAILED, Status.UNDELIVERED})


def parse_status(value: str) -> Status | None:
    """Return the `Status` named by `value` (case-insensitive), or None if it names none."""
    try:
        return Status(value.strip().lower())
    except ValueError:
        return None


def advances(current: Status, new: Status) -> bool:
    """Return True if a receipt saying `new` moves a message that is `current` forward."""
    return RANK[new] > RANK[current]
