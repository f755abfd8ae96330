"""Touchpoints in: other channels' touches of a workspace's contacts (docs/touchpoints.md).

Every way in (``POST /v1/touchpoints``, `clicktrail touchpoints import`) calls `prepare` (check
each item, resolve its contact) and then stores what passed. The API answers item by item (one
outcome each: ``accepted``, ``duplicate``, ``unknown_contact``, ``invalid`` with the field); the
CLI's import is all or nothing (`import_lines`: any bad line, nothing stored). A touch with a
`touch_id` is stored once per workspace and id, forever: a repeat (in the same batch too) is a
``duplicate`` naming the stored touch. SMS deliveries and clicks are touches as well, read from
clicktrail's own tables by multi-touch attribution; they are never ingested here.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from clicktrail.domain import conversions as money_rules
from clicktrail.domain import touchpoints as rules
from clicktrail.domain.errors import ClicktrailError, InvalidInput
from clicktrail.domain.ids import new_public_id
from clicktrail.domain.models import Workspace
from clicktrail.services.conversions import Outcome, contact_ref, known_fields
from clicktrail.services.imports import read_lines
from clicktrail.services.receipts import parse_time

MAX_BATCH = 1000
FIELDS = frozenset(
    ("channel", "contact", "occurred_at", "campaign", "source", "touch_id", "metadata")
)
# The columns of an imported CSV file: the API's fields, the contact flattened.
CSV_COLUMNS = ("channel", "external_id", "phone", "occurred_at", "campaign", "source", "touch_id")


@dataclass(frozen=True, slots=True)
class NewTouchpoint:
    """A touchpoint row about to be stored (`dedup_key`: its touch id, else its public id)."""

    public_id: str
    workspace_id: int
    channel: str
    contact_id: int
    occurred_us: int
    received_us: int
    campaign: str | None
    source: str | None
    touch_id: str | None
    dedup_key: str
    metadata: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class StoredTouch:
    """What storing one touchpoint did: the public id of the touch holding its key, and
    whether this one was stored (else a touch with its touch id was there already)."""

    public_id: str
    inserted: bool


class TouchpointStore(Protocol):
    """Touchpoints as this service needs them (`storage.touchpoints.TouchpointQueries`)."""

    def contacts_by_ref(
        self, workspace_id: int, external_ids: Sequence[str], phones: Sequence[str]
    ) -> tuple[dict[str, int], dict[str, int]]:
        """Return the workspace's contact ids by external id and by phone (E.164)."""
        ...

    def put_touchpoints(self, rows: Sequence[NewTouchpoint]) -> dict[str, StoredTouch]:
        """Store the rows whose dedup key is new in the workspace, in one transaction; return
        what happened, by dedup key. Rows share one workspace and have distinct keys."""
        ...


@dataclass(frozen=True, slots=True)
class _Checked:
    channel: str
    external_id: str | None
    phone: str | None
    occurred_us: int
    campaign: str | None
    source: str | None
    touch_id: str | None
    metadata: dict[str, Any] | None


def check_item(item: object, where: str, now_us: int, region: str | None = None) -> _Checked:
    """Return one touchpoint of a request checked (not resolved); `where` prefixes the field
    names in errors (``/touchpoints/3/``, ``line 12: ``). Raises `InvalidInput` naming the
    first field at fault."""
    item = known_fields(item, where, FIELDS, "touchpoint")
    channel = rules.channel_name(item.get("channel"), where + "channel")
    external_id, phone = contact_ref(item.get("contact"), where, region)
    if external_id is None and phone is None:
        raise InvalidInput(
            f"{where}contact: required: an object with one of external_id or phone",
            field=where + "contact",
        )
    occurred = parse_time(item.get("occurred_at"), where + "occurred_at", now_us)
    money_rules.check_occurred(occurred, now_us, where + "occurred_at")
    return _Checked(
        channel, external_id, phone, occurred,
        rules.label(item.get("campaign"), where + "campaign"),
        rules.label(item.get("source"), where + "source"),
        rules.label(item.get("touch_id"), where + "touch_id", rules.MAX_TOUCH_ID),
        money_rules.metadata(item.get("metadata"), where + "metadata"),
    )  # fmt: skip


def prepare(
    store: TouchpointStore,
    ws: Workspace,
    items: Sequence[object],
    *,
    now_us: int,
    where: Sequence[str],
    region: str | None = None,
) -> tuple[list[Outcome | None], dict[int, NewTouchpoint]]:
    """Check `items` and resolve their contacts: return the outcome of each refused one
    (``invalid``, ``unknown_contact``; None for the others) and the rows of the others, by
    index."""
    outcomes: list[Outcome | None] = [None] * len(items)
    checked: dict[int, _Checked] = {}
    for i, item in enumerate(items):
        try:
            checked[i] = check_item(item, where[i], now_us, region)
        except ClicktrailError as exc:
            outcomes[i] = Outcome("invalid", field=exc.field, detail=exc.message)
    external = sorted({c.external_id for c in checked.values() if c.external_id is not None})
    phones = sorted({c.phone for c in checked.values() if c.phone is not None})
    by_ext, by_phone = store.contacts_by_ref(ws.id, external, phones) if checked else ({}, {})
    rows: dict[int, NewTouchpoint] = {}
    for i, c in checked.items():
        if c.external_id is not None:
            contact, named = by_ext.get(c.external_id), f"external id {c.external_id!r}"
        else:
            contact, named = by_phone.get(c.phone or ""), f"phone {c.phone}"
        if contact is None:
            outcomes[i] = Outcome(
                "unknown_contact", field=where[i] + "contact",
                detail=f"{where[i]}contact: no contact with {named} in this workspace",
            )  # fmt: skip
            continue
        public_id = new_public_id("tch", 16)
        rows[i] = NewTouchpoint(
            public_id, ws.id, c.channel, contact, c.occurred_us, now_us, c.campaign, c.source,
            c.touch_id, c.touch_id if c.touch_id is not None else "=" + public_id, c.metadata,
        )  # fmt: skip
    return outcomes, rows


def store_rows(
    store: TouchpointStore, rows: dict[int, NewTouchpoint], outcomes: list[Outcome | None]
) -> list[Outcome]:
    """Store `rows` (by item index) and fill their outcomes: ``accepted``, or ``duplicate``
    when their touch id was stored before (or earlier in the same batch). Return them all."""
    first: dict[str, NewTouchpoint] = {}
    for row in rows.values():
        first.setdefault(row.dedup_key, row)
    stored = store.put_touchpoints(list(first.values())) if first else {}
    for i, row in rows.items():
        s = stored[row.dedup_key]
        mine = s.inserted and first[row.dedup_key] is row
        outcomes[i] = Outcome("accepted" if mine else "duplicate", id=s.public_id)
    assert all(o is not None for o in outcomes)
    return [o for o in outcomes if o is not None]


def record_touchpoints(
    store: TouchpointStore,
    ws: Workspace,
    items: Sequence[object],
    *,
    now_us: int,
    where: Sequence[str] | None = None,
    region: str | None = None,
) -> list[Outcome]:
    """Check, resolve and store `items` (touchpoints as received: mappings of `FIELDS`); return
    one `Outcome` per item, in order (`where[i]` prefixes item i's field names, default
    ``/i/``). Raises `InvalidInput` only for a batch over `MAX_BATCH`."""
    if len(items) > MAX_BATCH:
        raise InvalidInput(
            f"at most {MAX_BATCH} touchpoints per request, got {len(items)}", field="touchpoints"
        )
    where = list(where) if where is not None else [f"/{i}/" for i in range(len(items))]
    outcomes, rows = prepare(store, ws, items, now_us=now_us, where=where, region=region)
    return store_rows(store, rows, outcomes)


# -- the CLI's import ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ImportResult:
    """An import: the outcome of each line (`where` its place), stored only if none failed."""

    outcomes: list[Outcome]
    where: list[str]
    stored: bool

    def failures(self) -> Iterable[tuple[str, Outcome]]:
        """(place, outcome) of every refused line."""
        return (
            (w, o)
            for w, o in zip(self.where, self.outcomes, strict=True)
            if o.outcome in ("invalid", "unknown_contact")
        )


def import_lines(
    store: TouchpointStore,
    ws: Workspace,
    data: bytes,
    fmt: str,
    *,
    now_us: int,
    region: str | None = None,
) -> ImportResult:
    """Import a file of touchpoints all or nothing: every line checked and its contact
    resolved; any refused line and nothing is stored (the result lists every refusal);
    else all are stored in one transaction (repeated touch ids are ``duplicate``)."""
    lines = read_lines(data, fmt, CSV_COLUMNS, ("external_id", "phone"))
    items, where, unreadable = lines.items, lines.where, lines.unreadable
    if not items:
        raise InvalidInput("file: no touchpoints in it", field="file")
    outcomes, rows = prepare(store, ws, items, now_us=now_us, where=where, region=region)
    for i, reason in unreadable.items():
        rows.pop(i, None)
        outcomes[i] = Outcome("invalid", field=where[i].rstrip(": "), detail=where[i] + reason)
    if any(o is not None for o in outcomes):
        kept = [o if o is not None else Outcome("not_stored") for o in outcomes]
        return ImportResult(kept, where, stored=False)
    return ImportResult(store_rows(store, rows, outcomes), where, stored=True)
