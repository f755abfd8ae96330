"""The click record and its wire shape: one named field list for every place a click is a row.

A click travels as a positional row, not as an object: the redirect builds a plain tuple (the
cheapest thing to build on the hot path, `web/redirect.py`), the click log writes it as one JSON
array per spool line (`storage/clicklog.py`), the click inbox keeps those lines as they are, and
the classification job reads them back (`storage/inbox.py`). `CLICK_FIELDS` is the order all of
them share; `ClickRecord` has exactly these fields, and `click_from_row` is the one way back from
a decoded row to a record. Reordering or inserting a field would silently shift every spooled
click into the wrong column, so tests/domain/test_click_codec.py pins the list and checks a
click written by the real redirect reads back field by field.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

# The positional order of a click row: the redirect's tuple, a spool line's JSON array and an
# inbox row's lines. Append-only in spirit: spooled and inboxed clicks outlive an upgrade.
CLICK_FIELDS = (
    "click_id", "token", "campaign_id", "link_id", "message_id", "contact_id", "at_us",
    "method", "ip", "user_agent", "headers",
)  # fmt: skip


class ClickRecord(NamedTuple):
    """One request on a token, as the redirect saw it. `headers` are allow-listed, raw.

    A named tuple in `CLICK_FIELDS` order: the redirect builds plain tuples in this order
    (cheaper on the hot path) and the click log and writers take either.
    """

    click_id: str
    token: str
    campaign_id: int
    link_id: int
    message_id: int
    contact_id: int
    at_us: int
    method: str
    ip: str | None
    user_agent: str | None
    headers: dict[str, str]


if ClickRecord._fields != CLICK_FIELDS:  # pragma: no cover - caught at import, in every test
    raise AssertionError("ClickRecord's fields differ from CLICK_FIELDS")


def click_from_row(row: Sequence[Any]) -> ClickRecord:
    """Return the `ClickRecord` of a decoded click row (a spool line's JSON array).

    Raises `ValueError` when the row does not have one value per field of `CLICK_FIELDS`.
    """
    if len(row) != len(CLICK_FIELDS):
        raise ValueError(f"a click row has {len(CLICK_FIELDS)} values, got {len(row)}")
    return ClickRecord._make(row)


@dataclass(frozen=True, slots=True)
class InboxBatch:
    """Clicks taken together from the click inbox: their records (in arrival order) and the
    inbox rows that hold them, to remove in the transaction that stores the clicks."""

    rows: tuple[int, ...]
    records: list[ClickRecord]
