"""Touchpoints: other channels' touches of a contact (email, paid social, web, …), the rules of
one (no I/O).

A touchpoint names its channel (`channel_name`: lower-case letters, digits, ``_`` and ``-``;
``sms`` is clicktrail's own channel, read from its messages and clicks, so it is refused here),
the contact, when it happened, and optionally the campaign and source labels of the channel
(free text: they are the other tool's names, not clicktrail campaigns), an external touch id
(`touch_id`: the touch is stored once per workspace and id, forever; a repeat is a
``duplicate``) and flat metadata (bounded as a conversion's: `domain.conversions.metadata`).
"""

from __future__ import annotations

import re

from clicktrail.domain.errors import InvalidInput

SMS = "sms"  # clicktrail's own channel: deliveries and clicks, never ingested
CHANNEL = re.compile(r"[a-z][a-z0-9_-]{0,31}")
MAX_LABEL = 128
MAX_TOUCH_ID = 128
OUTCOMES = ("accepted", "duplicate", "unknown_contact", "invalid")


def channel_name(raw: object, field: str = "channel") -> str:
    """Return a channel name (lower-cased, trimmed); raise `InvalidInput` naming `field` when it
    is missing, not 1-32 of ``a-z 0-9 _ -`` starting with a letter, or ``sms``."""
    if not isinstance(raw, str) or not raw.strip():
        raise InvalidInput(f"{field}: required: the touch's channel (e.g. email)", field=field)
    name = raw.strip().lower()
    if CHANNEL.fullmatch(name) is None:
        raise InvalidInput(
            f"{field}: {raw[:40]!r} is not a channel name: 1-32 of a-z, 0-9, _ and -, "
            "starting with a letter",
            field=field,
        )
    if name == SMS:
        raise InvalidInput(
            f"{field}: sms touches are clicktrail's own deliveries and clicks: they are not "
            "ingested",
            field=field,
        )
    return name


def label(raw: object, field: str, limit: int = MAX_LABEL) -> str | None:
    """Return an optional label (a campaign or source name, a touch id) trimmed, None when
    missing or empty; raise `InvalidInput` naming `field` for anything but printable text of
    at most `limit` characters."""
    if raw is None:
        return None
    if not isinstance(raw, str) or len(raw) > limit or not raw.isprintable():
        raise InvalidInput(f"{field}: text of at most {limit} printable characters", field=field)
    return raw.strip() or None
