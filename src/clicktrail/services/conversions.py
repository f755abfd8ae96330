"""What happens when a conversion arrives: check it, resolve its click id or contact, dedup,
store, and answer with one outcome per conversion (docs/conversions.md).

Every way in (the API, affiliate postbacks, the browser snippet's beacon, the pixel, the CLI's
import) calls `record_conversions`; the rules of one conversion are `domain.conversions`'s.

- A click id (``ct_cid``, the id the redirect put in the destination URL) resolves to its
  click, contact, message, campaign and link, but only among the workspace's own clicks: an
  unknown id and another workspace's answer the same `unknown_click`. A click that happened
  moments ago may still be on its way from the redirect to the clicks table (the jobs process
  moves it within a second or two): a recent id is also looked for in the click inbox.
- Otherwise a contact, by external id or phone, resolves to the contact alone (attribution
  finds its touches).
- A batch is answered item by item, in order, as if each had been sent alone: the second of
  two items with the same dedup key is its `duplicate` (or `replaced`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from clicktrail.domain import conversions as rules
from clicktrail.domain.conversions import DuplicateMode, Source
from clicktrail.domain.errors import (
    ClicktrailError,
    InvalidInput,
    NotFound,
    UnknownClick,
    UnknownContact,
)
from clicktrail.domain.ids import new_public_id
from clicktrail.domain.models import Workspace
from clicktrail.services.contacts import normalize_phone
from clicktrail.services.listing import Page, decode_cursor, page_of
from clicktrail.services.receipts import parse_time

MAX_BATCH = 1000
# A click id this recent may still be in the click inbox rather than in `clicks`.
INBOX_LAG_US = 10 * 60 * 1_000_000
FIELDS = frozenset(
    ("event", "value", "currency", "occurred_at", "txn", "click_id", "ct_cid", "contact",
     "metadata")
)  # fmt: skip
CONTACT_FIELDS = frozenset(("external_id", "phone"))


@dataclass(frozen=True, slots=True)
class ClickRef:
    """What a click id resolved to (its workspace's own click)."""

    click_id: str
    contact_id: int
    message_id: int
    campaign_id: int
    link_id: int
    at_us: int


@dataclass(frozen=True, slots=True)
class NewConversion:
    """A conversion row about to be stored."""

    public_id: str
    workspace_id: int
    event: str
    value_micros: int | None
    currency: str | None
    occurred_us: int
    received_us: int
    click_id: str | None
    contact_id: int | None
    message_id: int | None
    campaign_id: int | None
    link_id: int | None
    txn: str | None
    source: str
    dedup_key: str
    metadata: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class Stored:
    """What storing one conversion did: `state` ``inserted``, ``replaced`` or ``duplicate``,
    and the public id of the conversion that holds its dedup key."""

    public_id: str
    state: str


@dataclass(frozen=True, slots=True)
class Conversion:
    """A stored conversion as the API and the CLI show it."""

    public_id: str
    event: str
    value_micros: int | None
    currency: str | None
    occurred_us: int
    received_us: int
    click_id: str | None
    contact_external_id: str | None
    contact_phone: str | None
    campaign: str | None  # slug
    message: str | None  # public id
    link: int | None  # number in the template, from 1
    txn: str | None
    source: str
    metadata: dict[str, Any] | None
    updated_us: int | None

    @property
    def value(self) -> str | None:
        """The value as decimal text (``12.5``), None without one."""
        return None if self.value_micros is None else rules.decimal_text(self.value_micros)


@dataclass(frozen=True, slots=True)
class Outcome:
    """The answer for one conversion: `outcome` (one of `domain.conversions.OUTCOMES`), the
    conversion's id when one holds its dedup key, and for refusals the field and reason."""

    outcome: str
    id: str | None = None
    field: str | None = None
    detail: str | None = None


@dataclass(frozen=True, slots=True)
class Rejection:
    """A refused postback, pixel or beacon in the rejected log: why (`reason`: an outcome or
    error code; `field`; `detail`), the query string with secrets masked, the client address.
    `workspace_id` None: the request named no workspace (an unknown secret or key)."""

    workspace_id: int | None
    at_us: int
    source: str
    reason: str
    field: str | None
    detail: str
    query: str
    ip: str | None
    id: int = 0  # set once stored


@dataclass(frozen=True, slots=True)
class ConversionFilter:
    """What a listing of conversions keeps (None: anything)."""

    event: str | None = None
    campaign_id: int | None = None
    source: str | None = None
    since_us: int | None = None
    until_us: int | None = None


class ConversionStore(Protocol):
    """Conversions as this service needs them (`storage.conversions.ConversionQueries`)."""

    def clicks_by_id(self, workspace_id: int, click_ids: Sequence[str]) -> dict[str, ClickRef]:
        """Return the workspace's stored clicks with these ids (others are absent)."""
        ...

    def clicks_in_inbox(self, workspace_id: int, click_ids: Sequence[str]) -> dict[str, ClickRef]:
        """Return the workspace's clicks with these ids still in the click inbox."""
        ...

    def contacts_by_ref(
        self, workspace_id: int, external_ids: Sequence[str], phones: Sequence[str]
    ) -> tuple[dict[str, int], dict[str, int]]:
        """Return the workspace's contact ids by external id and by phone (E.164)."""
        ...

    def duplicate_modes(self, workspace_id: int, events: Sequence[str]) -> dict[str, str]:
        """Return the duplicate mode of those of `events` that have one set."""
        ...

    def put_conversions(
        self, rows: Sequence[NewConversion], replace: set[str], now_us: int
    ) -> dict[str, Stored]:
        """Store rows whose dedup key is new, in one transaction; a row whose key is taken
        replaces the stored value and currency when its key is in `replace` and they differ.
        Return what happened, by dedup key. Rows share one workspace and have distinct keys."""
        ...

    def conversion(self, workspace_id: int, public_id: str) -> Conversion | None:
        """Return the workspace's conversion with this id (None: no such conversion)."""
        ...

    def conversions_page(
        self, workspace_id: int, where: ConversionFilter, after: str | None, limit: int
    ) -> list[Conversion]:
        """Return up to `limit` conversions in the order they were stored, after the one with
        public id `after`."""
        ...

    def set_duplicate_mode(self, workspace_id: int, event: str, mode: str, now_us: int) -> None:
        """Set an event's duplicate mode."""
        ...

    def event_modes(self, workspace_id: int) -> list[tuple[str, str, int]]:
        """Return (event, mode, updated µs) of every event with a mode set, by name."""
        ...

    def record_rejection(self, rejection: Rejection) -> None:
        """Add a refusal to the rejected log (bounded: the oldest rows go)."""
        ...

    def rejections_page(
        self, workspace_id: int | None, before: int | None, limit: int
    ) -> list[Rejection]:
        """Return up to `limit` refusals newest first, older than row `before`."""
        ...


@dataclass(frozen=True, slots=True)
class _Checked:
    event: str
    value_micros: int | None
    currency: str | None
    occurred_us: int
    txn: str | None
    click_id: str | None
    external_id: str | None
    phone: str | None
    metadata: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class _Resolved:
    checked: _Checked
    click: ClickRef | None
    contact_id: int


def known_fields(item: object, where: str, known: frozenset[str], what: str) -> Mapping[str, Any]:
    """Return `item` when it is an object (a `what`) of `known` fields only. Raises
    `InvalidInput` naming the item (``/conversions/3``, ``line 12``; ``body`` alone) when it is
    not an object, else its first unknown field (prefixed by `where`)."""
    if not isinstance(item, Mapping):
        at = where.rstrip("/: ") or "body"
        raise InvalidInput(f"{at}: expected a {what} object", field=at)
    unknown = sorted(str(k) for k in item if k not in known)
    if unknown:
        raise InvalidInput(
            f"{where}{unknown[0]}: unknown field (known: {', '.join(sorted(known))})",
            field=where + unknown[0],
        )
    return item


def check_item(item: object, where: str, now_us: int, region: str | None = None) -> _Checked:
    """Return one conversion of a request checked (not resolved). `where` prefixes the field
    names in errors (``/conversions/3/``, ``line 12: ``). Raises `InvalidInput` naming the
    first field at fault."""
    item = known_fields(item, where, FIELDS, "conversion")
    event = rules.event_name(item.get("event"), where + "event")
    micros, currency = rules.money(item.get("value"), item.get("currency"), where)
    occurred = parse_time(item.get("occurred_at"), where + "occurred_at", now_us)
    rules.check_occurred(occurred, now_us, where + "occurred_at")
    txn = rules.txn_id(item.get("txn"), where + "txn")
    click_id = item.get("click_id", item.get("ct_cid"))
    if click_id == "":
        click_id = None
    if click_id is not None and (
        not isinstance(click_id, str) or len(click_id) > rules.MAX_CLICK_ID
        or not click_id.isprintable()
    ):  # fmt: skip
        raise InvalidInput(
            f"{where}click_id: text of at most {rules.MAX_CLICK_ID} printable characters",
            field=where + "click_id",
        )
    external_id, phone = contact_ref(item.get("contact"), where, region)
    if click_id is None and external_id is None and phone is None:
        raise InvalidInput(
            f"{where}click_id: give the click id (ct_cid) or a contact (external_id or phone)",
            field=where + "click_id",
        )
    meta = rules.metadata(item.get("metadata"), where + "metadata")
    return _Checked(event, micros, currency, occurred, txn, click_id, external_id, phone, meta)


def contact_ref(raw: object, where: str, region: str | None) -> tuple[str | None, str | None]:
    """Return (external id, phone in E.164) of a request's ``contact`` object (one of the two
    set), (None, None) when there is none. Raises `InvalidInput` naming the field."""
    at = where + "contact"
    if raw is None:
        return None, None
    if not isinstance(raw, Mapping) or len(raw) != 1 or not set(raw) <= CONTACT_FIELDS:
        raise InvalidInput(f"{at}: an object with one of external_id or phone", field=at)
    ((name, value),) = raw.items()
    if not isinstance(value, str) or not value.strip() or len(value) > 200 or "\x00" in value:
        raise InvalidInput(f"{at}/{name}: 1-200 characters of text", field=f"{at}/{name}")
    if name == "external_id":
        return value.strip(), None
    try:
        return None, normalize_phone(value, region)
    except ValueError as exc:
        raise InvalidInput(f"{at}/phone: {exc}", field=f"{at}/phone") from None


def record_conversions(
    store: ConversionStore,
    ws: Workspace,
    items: Sequence[object],
    *,
    source: Source,
    now_us: int,
    where: Sequence[str] | None = None,
    region: str | None = None,
    dry_run: bool = False,
) -> list[Outcome]:
    """Check, resolve, dedup and store `items` (conversions as received: mappings of
    `FIELDS`); return one `Outcome` per item, in order.

    `where[i]` prefixes item i's field names in its outcome (default ``/i/``). With `dry_run`
    nothing is written: refusals (`invalid`, `unknown_*`) are answered and every other item is
    `accepted` with no id (it would be stored, or found a duplicate). Raises `InvalidInput`
    only for a batch over `MAX_BATCH`; a bad item gets its own `invalid`.
    """
    if len(items) > MAX_BATCH:
        raise InvalidInput(
            f"at most {MAX_BATCH} conversions per request, got {len(items)}", field="conversions"
        )
    where = list(where) if where is not None else [f"/{i}/" for i in range(len(items))]
    outcomes: list[Outcome | None] = [None] * len(items)
    checked: dict[int, _Checked] = {}
    for i, item in enumerate(items):
        try:
            checked[i] = check_item(item, where[i], now_us, region)
        except ClicktrailError as exc:
            outcomes[i] = Outcome("invalid", field=exc.field, detail=exc.message)
    resolved = _resolve(store, ws, checked, now_us, outcomes, where)
    if dry_run:
        return [o if o is not None else Outcome("accepted") for o in outcomes]
    modes = store.duplicate_modes(ws.id, sorted({r.checked.event for r in resolved.values()}))
    # Rounds: the first item of each dedup key, then the second of each, and so on, so that a
    # repeat inside one batch meets the first as a stored conversion (as if sent alone).
    rounds: list[dict[str, tuple[int, NewConversion]]] = []
    for i, r in sorted(resolved.items()):
        c = r.checked
        mode: DuplicateMode = rules.duplicate_mode(modes.get(c.event, rules.DEFAULT_MODE))
        public_id = new_public_id("cnv", 16)
        click = r.click
        key = rules.dedup_key(
            c.event, c.txn, click.click_id if click else None, r.contact_id, mode, public_id
        )
        row = NewConversion(
            public_id, ws.id, c.event, c.value_micros, c.currency, c.occurred_us, now_us,
            click.click_id if click else None, r.contact_id,
            click.message_id if click else None, click.campaign_id if click else None,
            click.link_id if click else None, c.txn, source, key, c.metadata,
        )  # fmt: skip
        n = 0
        while n < len(rounds) and key in rounds[n]:
            n += 1
        if n == len(rounds):
            rounds.append({})
        rounds[n][key] = (i, row)
    for batch in rounds:
        replace = {key for key, (_i, row) in batch.items() if modes.get(row.event) == "replace"}
        stored = store.put_conversions([row for _i, row in batch.values()], replace, now_us)
        for key, (i, _row) in batch.items():
            s = stored[key]
            state = {"inserted": "accepted"}.get(s.state, s.state)
            outcomes[i] = Outcome(state, id=s.public_id)
    assert all(o is not None for o in outcomes)
    return [o for o in outcomes if o is not None]


def _resolve(
    store: ConversionStore,
    ws: Workspace,
    checked: dict[int, _Checked],
    now_us: int,
    outcomes: list[Outcome | None],
    where: Sequence[str],
) -> dict[int, _Resolved]:
    """Resolve click ids and contacts; set `unknown_*` outcomes; return the items resolved."""
    click_ids = sorted({c.click_id for c in checked.values() if c.click_id is not None})
    clicks = store.clicks_by_id(ws.id, click_ids) if click_ids else {}
    recent = [
        cid for cid in click_ids
        if cid not in clicks and (t := rules.click_id_time_us(cid)) is not None
        and now_us - INBOX_LAG_US <= t <= now_us + rules.MAX_SKEW_US
    ]  # fmt: skip
    if recent:
        clicks.update(store.clicks_in_inbox(ws.id, recent))
    by_contact = [c for c in checked.values() if c.click_id is None]
    external = sorted({c.external_id for c in by_contact if c.external_id is not None})
    phones = sorted({c.phone for c in by_contact if c.phone is not None})
    by_ext: dict[str, int] = {}
    by_phone: dict[str, int] = {}
    if external or phones:
        by_ext, by_phone = store.contacts_by_ref(ws.id, external, phones)
    out: dict[int, _Resolved] = {}
    for i, c in checked.items():
        if c.click_id is not None:
            click = clicks.get(c.click_id)
            if click is None:
                outcomes[i] = Outcome(
                    "unknown_click", field=where[i] + "click_id",
                    detail=f"no click with id {c.click_id!r} in this workspace",
                )  # fmt: skip
                continue
            out[i] = _Resolved(c, click, click.contact_id)
            continue
        if c.external_id is not None:
            contact, named = by_ext.get(c.external_id), f"external id {c.external_id!r}"
        else:
            contact, named = by_phone.get(c.phone or ""), f"phone {c.phone}"
        if contact is None:
            outcomes[i] = Outcome(
                "unknown_contact", field=where[i] + "contact",
                detail=f"no contact with {named} in this workspace",
            )  # fmt: skip
            continue
        out[i] = _Resolved(c, None, contact)
    return out


def record_one(
    store: ConversionStore,
    ws: Workspace,
    item: object,
    *,
    source: Source,
    now_us: int,
    region: str | None = None,
) -> tuple[Outcome, Conversion | None]:
    """Record one conversion; return its outcome and the conversion holding its dedup key.

    Raises `InvalidInput` naming the field for a bad conversion, `UnknownClick` or
    `UnknownContact` when it resolves to nothing; nothing is written then.
    """
    (outcome,) = record_conversions(
        store, ws, [item], source=source, now_us=now_us, where=[""], region=region
    )
    raise_for(outcome)
    assert outcome.id is not None
    return outcome, store.conversion(ws.id, outcome.id)


def raise_for(outcome: Outcome) -> None:
    """Raise the error of a refused outcome (`InvalidInput`, `UnknownClick`,
    `UnknownContact`); nothing for a counted or duplicate one."""
    error = {"invalid": InvalidInput, "unknown_click": UnknownClick,
             "unknown_contact": UnknownContact}.get(outcome.outcome)  # fmt: skip
    if error is not None:
        raise error(outcome.detail or outcome.outcome, field=outcome.field)


def get_conversion(store: ConversionStore, ws: Workspace, public_id: str) -> Conversion:
    """Return the workspace's conversion `public_id`. Raises `NotFound`."""
    found = store.conversion(ws.id, public_id) if len(public_id) <= 32 else None
    if found is None:
        raise NotFound(f"conversion {public_id[:40]!r} not found in this workspace", field="id")
    return found


def list_conversions(
    store: ConversionStore,
    ws: Workspace,
    where: ConversionFilter,
    limit: int,
    cursor: str | None = None,
) -> Page[Conversion]:
    """Return a page of the workspace's conversions in the order they were stored."""
    after = decode_cursor("conversions", cursor)
    rows = store.conversions_page(ws.id, where, after, limit + 1)
    return page_of("conversions", rows, limit, lambda c: c.public_id)


def set_event_mode(
    store: ConversionStore, ws: Workspace, event: str, mode: str, *, now_us: int
) -> tuple[str, DuplicateMode]:
    """Set what a second conversion of `event` does in the workspace (ignore, count, replace);
    return (event, mode) normalized. Applies to conversions arriving from now on. Raises
    `InvalidInput` naming ``event`` or ``mode``."""
    name = rules.event_name(event)
    checked = rules.duplicate_mode(mode)
    store.set_duplicate_mode(ws.id, name, checked, now_us)
    return name, checked


def event_modes(store: ConversionStore, ws: Workspace) -> list[tuple[str, str, int]]:
    """Return (event, mode, updated µs) of the workspace's events with a mode set."""
    return store.event_modes(ws.id)


def rejected(
    store: ConversionStore, ws: Workspace | None, limit: int, cursor: str | None = None
) -> Page[Rejection]:
    """Return a page of the rejected log, newest first: the workspace's, or with `ws` None the
    refusals that named no workspace (the operator's CLI only)."""
    after = decode_cursor("rejected", cursor)
    if after is not None and not after.isdigit():
        raise InvalidInput("cursor is not one of this listing's", field="cursor")
    rows = store.rejections_page(
        None if ws is None else ws.id, None if after is None else int(after), limit + 1
    )
    return page_of("rejected", rows, limit, lambda r: str(r.id))
