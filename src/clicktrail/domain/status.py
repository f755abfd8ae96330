"""Message delivery status: a forward-only state machine.

``queued → sending → sent → delivered | failed | undelivered``. A receipt may arrive late, twice
or out of order (a `sent` callback after `delivered`); it never moves a message back. The three
final states are terminal: the first one recorded wins.
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


RANK: dict[Status, int] = {
    Status.QUEUED: 0,
    Status.SENDING: 1,
    Status.SENT: 2,
    Status.DELIVERED: 3,
    Status.FAILED: 3,
    Status.UNDELIVERED: 3,
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
