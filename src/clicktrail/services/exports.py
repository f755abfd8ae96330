"""Exports: click events and messages as CSV, JSON lines or Parquet, streamed in chunks.

An export is planned first (`plan_export`: every parameter is
checked and the campaign resolved, so errors surface before a single byte is sent) and then
streamed (`stream`): rows come from storage in keyset-paginated chunks and each chunk is encoded
and handed on before the next is read, so a 10-million-row export runs in constant memory.
Parquet is written in row groups of `ROW_GROUP` rows. The columns are documented in
docs/exports.md; `CLICK_COLUMNS` and `MESSAGE_COLUMNS` are their single source.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import hmac
import io
import json
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from clicktrail.domain.errors import InvalidInput
from clicktrail.domain.models import Workspace
from clicktrail.services.campaigns import CampaignStore, get_campaign
from clicktrail.services.clock import MAX_TIME_US
from clicktrail.services.receipts import parse_time

FORMATS = ("csv", "jsonl", "parquet")
PHONE_MODES = ("plain", "hash", "omit")
MEDIA_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "jsonl": "application/jsonl",
    "parquet": "application/vnd.apache.parquet",
}
CHUNK = 5000  # rows per storage round trip
ROW_GROUP = 65_536  # rows per Parquet row group
# A salt anyone can guess makes the hash of a 10-digit number space reversible in minutes;
# a long one at least stops the lazy attempt. Keep it secret: it is the key of an HMAC.
MIN_SALT = 16


@dataclass(frozen=True, slots=True)
class ClickEvent:
    """One request on a tracked link, with who, what and how it was judged (times in µs)."""

    click_id: str
    at_us: int
    campaign_id: str
    campaign_slug: str
    message_id: str
    link: int  # the link's number, from 1 (as in --link-role and reports)
    link_url: str
    link_role: str
    destination: str
    external_id: str | None
    phone: str
    method: str
    is_click: bool
    verdict: str | None
    score: int | None
    reasons: tuple[str, ...]
    final: bool
    ip: str | None
    user_agent: str | None


@dataclass(frozen=True, slots=True)
class MessageRecord:
    """One message of a campaign and where it is in its life (times in µs)."""

    message_id: str
    campaign_id: str
    campaign_slug: str
    external_id: str | None
    phone: str
    body: str
    encoding: str
    segments: int
    status: str
    provider: str | None
    provider_message_id: str | None
    error_code: str | None
    queued_us: int
    sent_us: int | None
    delivered_us: int | None
    failed_us: int | None
    status_us: int


@dataclass(frozen=True, slots=True)
class ConversionCredit:
    """One conversion and the credit one attribution model gave it (docs/attribution.md):
    `kind` ``click``, ``view`` or ``none`` (nothing eligible: no campaign, credit 0)."""

    conversion_id: str
    event: str
    occurred_us: int
    value: float | None
    currency: str | None
    model: str
    kind: str
    campaign_id: str | None
    campaign_slug: str | None
    message_id: str | None
    link: int | None
    click_id: str | None
    credit: float
    delay_s: float | None
    settled: bool
    external_id: str | None
    phone: str | None


class ExportSource(Protocol):
    """Rows for exports, read in chunks (implemented by `storage.exports.ExportQueries`)."""

    def click_event_chunks(
        self,
        workspace_id: int,
        campaign_id: int | None,
        since_us: int | None,
        until_us: int | None,
        chunk: int,
    ) -> Iterator[Sequence[ClickEvent]]:
        """Yield the workspace's click events in id order, `chunk` at a time."""
        ...

    def message_chunks(
        self,
        workspace_id: int,
        campaign_id: int | None,
        since_us: int | None,
        until_us: int | None,
        chunk: int,
    ) -> Iterator[Sequence[MessageRecord]]:
        """Yield the workspace's messages in id order, `chunk` at a time."""
        ...

    def conversion_credit_chunks(
        self,
        workspace_id: int,
        campaign_id: int | None,
        since_us: int | None,
        until_us: int | None,
        chunk: int,
    ) -> Iterator[Sequence[ConversionCredit]]:
        """Yield the workspace's conversion credits by conversion and model, `chunk` at a
        time (with a campaign: those credited to it)."""
        ...


def iso_utc(us: int | None) -> str | None:
    """Return µs since the epoch as ISO 8601 UTC (``2026-05-28T10:00:00.000123Z``)."""
    if us is None:
        return None
    seconds, micros = divmod(us, 1_000_000)
    return f"{_iso_seconds(seconds)}.{micros:06d}Z"


@functools.lru_cache(maxsize=4096)
def _iso_seconds(seconds: int) -> str:
    # Cached: rows of an export come in time order, so neighbours share their second.
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")


def hash_phone(phone: str, salt: str) -> str:
    """Return the salted hash of a phone: HMAC-SHA256 keyed by `salt`, hex."""
    return hmac.new(salt.encode(), phone.encode(), hashlib.sha256).hexdigest()


def time_param(value: str | None, field: str) -> int | None:
    """Return a query parameter's time in µs (None when absent).

    Accepts ISO 8601 (no zone means UTC) or Unix seconds. Raises `InvalidInput` naming
    `field` for anything else, including times outside 1970..9999.
    """
    if value is None or value == "":
        return None
    try:
        us = parse_time(value, field, 0)
    except (ValueError, OverflowError):  # nan, inf
        us = -1
    if not 0 <= us < MAX_TIME_US:
        raise InvalidInput(
            f"{field}: {value!r} is not a time between 1970 and 9999 "
            "(ISO 8601 like 2026-11-22T10:00:00Z, or Unix seconds)",
            field=field,
        )
    return us


@dataclass(frozen=True, slots=True)
class Column:
    """One exported column: its name, Arrow type and how it is read from a row."""

    name: str
    type: str  # string | int16 | int32 | float64 | bool | timestamp | list (of strings)
    get: Callable[[Any], Any]


_TS = "timestamp"
CLICK_COLUMNS: tuple[Column, ...] = (
    Column("click_id", "string", lambda e: e.click_id),
    Column("at", _TS, lambda e: e.at_us),
    Column("campaign_id", "string", lambda e: e.campaign_id),
    Column("campaign_slug", "string", lambda e: e.campaign_slug),
    Column("message_id", "string", lambda e: e.message_id),
    Column("link", "int32", lambda e: e.link),
    Column("link_url", "string", lambda e: e.link_url),
    Column("link_role", "string", lambda e: e.link_role),
    Column("destination", "string", lambda e: e.destination),
    Column("external_id", "string", lambda e: e.external_id),
    Column("phone", "string", lambda e: e.phone),
    Column("method", "string", lambda e: e.method),
    Column("is_click", "bool", lambda e: e.is_click),
    Column("verdict", "string", lambda e: e.verdict),
    Column("score", "int16", lambda e: e.score),
    Column("reasons", "list", lambda e: list(e.reasons)),
    Column("final", "bool", lambda e: e.final),
    Column("ip", "string", lambda e: e.ip),
    Column("user_agent", "string", lambda e: e.user_agent),
)
MESSAGE_COLUMNS: tuple[Column, ...] = (
    Column("message_id", "string", lambda m: m.message_id),
    Column("campaign_id", "string", lambda m: m.campaign_id),
    Column("campaign_slug", "string", lambda m: m.campaign_slug),
    Column("external_id", "string", lambda m: m.external_id),
    Column("phone", "string", lambda m: m.phone),
    Column("body", "string", lambda m: m.body),
    Column("encoding", "string", lambda m: m.encoding),
    Column("segments", "int32", lambda m: m.segments),
    Column("status", "string", lambda m: m.status),
    Column("provider", "string", lambda m: m.provider),
    Column("provider_message_id", "string", lambda m: m.provider_message_id),
    Column("error_code", "string", lambda m: m.error_code),
    Column("queued_at", _TS, lambda m: m.queued_us),
    Column("sent_at", _TS, lambda m: m.sent_us),
    Column("delivered_at", _TS, lambda m: m.delivered_us),
    Column("failed_at", _TS, lambda m: m.failed_us),
    Column("status_at", _TS, lambda m: m.status_us),
)
CONVERSION_COLUMNS: tuple[Column, ...] = (
    Column("conversion_id", "string", lambda c: c.conversion_id),
    Column("event", "string", lambda c: c.event),
    Column("occurred_at", _TS, lambda c: c.occurred_us),
    Column("value", "float64", lambda c: c.value),
    Column("currency", "string", lambda c: c.currency),
    Column("model", "string", lambda c: c.model),
    Column("kind", "string", lambda c: c.kind),
    Column("campaign_id", "string", lambda c: c.campaign_id),
    Column("campaign_slug", "string", lambda c: c.campaign_slug),
    Column("message_id", "string", lambda c: c.message_id),
    Column("link", "int32", lambda c: c.link),
    Column("click_id", "string", lambda c: c.click_id),
    Column("credit", "float64", lambda c: c.credit),
    Column("delay_s", "float64", lambda c: c.delay_s),
    Column("settled", "bool", lambda c: c.settled),
    Column("external_id", "string", lambda c: c.external_id),
    Column("phone", "string", lambda c: c.phone),
)


def phone_columns(columns: Sequence[Column], phone: str, salt: str | None) -> list[Column]:
    """Return `columns` with the phone shown as is, replaced by `phone_hash`, or left out."""
    out: list[Column] = []
    for col in columns:
        if col.name != "phone" or phone == "plain":
            out.append(col)
        elif phone == "hash":
            assert salt is not None
            key = salt

            def hashed(row: Any, key: str = key, get: Callable[[Any], Any] = col.get) -> str:
                return hash_phone(get(row), key)

            out.append(Column("phone_hash", "string", hashed))
    return out


@dataclass(frozen=True)
class ExportPlan:
    """A checked export: what to read, which columns and how to encode them."""

    what: str  # "clicks", "messages" or "conversions"
    format: str
    columns: tuple[Column, ...]
    chunks: Callable[[], Iterator[Sequence[Any]]]

    @property
    def media_type(self) -> str:
        """The Content-Type of the encoded export."""
        return MEDIA_TYPES[self.format]

    @property
    def filename(self) -> str:
        """A file name for the download (``clicks.csv``)."""
        return f"{self.what}.{self.format}"


def check_params(
    fmt: str, phone: str, salt: str | None, since: str | None, until: str | None
) -> tuple[int | None, int | None]:
    """Check an export's format, phone mode, salt and time range; return the range in µs.
    Raises `InvalidInput` naming the bad parameter."""
    if fmt not in FORMATS:
        raise InvalidInput(f"format {fmt!r} is not one of {', '.join(FORMATS)}", field="format")
    if phone not in PHONE_MODES:
        raise InvalidInput(f"phone {phone!r} is not one of {', '.join(PHONE_MODES)}", field="phone")
    if phone == "hash" and (salt is None or len(salt) < MIN_SALT):
        raise InvalidInput(
            f"phone=hash needs a secret salt of at least {MIN_SALT} characters", field="salt"
        )
    if phone != "hash" and salt:
        raise InvalidInput("salt is only used with phone=hash", field="salt")
    since_us = time_param(since, "since")
    until_us = time_param(until, "until")
    if since_us is not None and until_us is not None and until_us <= since_us:
        raise InvalidInput("until must be after since", field="until")
    return since_us, until_us


def plan_export(
    store: CampaignStore,
    source: ExportSource,
    workspace: Workspace,
    what: str,
    *,
    format: str = "csv",
    campaign: str | None = None,
    since: str | None = None,
    until: str | None = None,
    phone: str = "plain",
    salt: str | None = None,
) -> ExportPlan:
    """Plan an export of the workspace's click events (`what` = ``clicks``: every request on
    its tracked links), ``messages`` (the time range then applies to when each was queued) or
    ``conversions`` (each conversion's credit under every attribution model; the time range
    applies to when it occurred, the campaign to where the credit went).

    `since` (inclusive) and `until` (exclusive) are ISO 8601 times (UTC without a zone) or
    Unix seconds. Raises `InvalidInput` naming the bad parameter, `NotFound` for an unknown
    campaign.
    """
    since_us, until_us = check_params(format, phone, salt, since, until)
    campaign_id = get_campaign(store, workspace, campaign).id if campaign else None
    read: Callable[[int, int | None, int | None, int | None, int], Iterator[Sequence[Any]]]
    if what == "clicks":
        columns, read = CLICK_COLUMNS, source.click_event_chunks
    elif what == "messages":
        columns, read = MESSAGE_COLUMNS, source.message_chunks
    elif what == "conversions":
        columns, read = CONVERSION_COLUMNS, source.conversion_credit_chunks
    else:
        raise InvalidInput(f"cannot export {what!r}: clicks, messages or conversions", field="what")
    return ExportPlan(
        what,
        format,
        tuple(phone_columns(columns, phone, salt)),
        lambda: read(workspace.id, campaign_id, since_us, until_us, CHUNK),
    )


def stream(plan: ExportPlan) -> Iterator[bytes]:
    """Yield the encoded export piece by piece (one piece per chunk or row group)."""
    if plan.format == "csv":
        return _csv(plan.columns, plan.chunks())
    if plan.format == "jsonl":
        return _jsonl(plan.columns, plan.chunks())
    return _parquet(plan.columns, plan.chunks())


# A spreadsheet opening a CSV evaluates a cell that starts with one of these as a formula
# (OWASP "CSV Injection"): a clicker's User-Agent such as =HYPERLINK("http://evil.example/","x")
# would run in the analyst's spreadsheet. Such cells get a leading apostrophe, which makes the
# spreadsheet show the text as text. A plain signed number (an E.164 phone, "-1") is no formula
# and is left alone.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"[+-]?[0-9]+(?:\.[0-9]+)?")


def neutralise_formula(text: str) -> str:
    """Return `text` safe to put in a CSV cell that a spreadsheet will open: prefixed with an
    apostrophe when it starts like a formula (``=``, ``+``, ``-``, ``@``, tab, CR), unless it is a
    plain signed number."""
    if text.startswith(FORMULA_PREFIXES) and not _PLAIN_NUMBER.fullmatch(text):
        return "'" + text
    return text


def _as_text(col: Column) -> Callable[[Any], Any]:
    """Return how a column's value is written in CSV (text cells neutralised: see
    `neutralise_formula`)."""
    get = col.get
    if col.type == _TS:
        return lambda row: iso_utc(get(row)) or ""
    if col.type == "bool":
        return lambda row: "true" if get(row) else "false"
    if col.type == "list":
        return lambda row: neutralise_formula(" ".join(get(row)))
    if col.type == "string":

        def text(row: Any) -> Any:
            value = get(row)
            return neutralise_formula(value) if isinstance(value, str) else value

        return text
    return get


def _as_json(col: Column) -> Callable[[Any], Any]:
    """Return how a column's value is written in JSON."""
    get = col.get
    if col.type == _TS:
        return lambda row: iso_utc(get(row))
    return get


def _csv(columns: Sequence[Column], chunks: Iterable[Sequence[Any]]) -> Iterator[bytes]:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")  # RFC 4180; None is written empty
    writer.writerow([c.name for c in columns])
    cells = [_as_text(c) for c in columns]
    for chunk in chunks:
        writer.writerows([[cell(row) for cell in cells] for row in chunk])
        yield buf.getvalue().encode()
        buf.seek(0)
        buf.truncate()
    rest = buf.getvalue()
    if rest:
        yield rest.encode()


def _jsonl(columns: Sequence[Column], chunks: Iterable[Sequence[Any]]) -> Iterator[bytes]:
    fields = [(c.name, _as_json(c)) for c in columns]
    dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
    for chunk in chunks:
        lines = [dumps({name: value(row) for name, value in fields}) for row in chunk]
        if lines:
            yield ("\n".join(lines) + "\n").encode()


class _Sink:
    """A write-only file for `pyarrow.parquet.ParquetWriter` whose bytes are taken as they
    come, so no more than one row group is ever held."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.size = 0
        self.closed = False

    def write(self, data: Any) -> int:
        b = bytes(data)
        self.parts.append(b)
        self.size += len(b)
        return len(b)

    def tell(self) -> int:
        return self.size

    def flush(self) -> None:
        return None

    def close(self) -> None:
        self.closed = True

    def take(self) -> bytes:
        out = b"".join(self.parts)
        self.parts.clear()
        return out


def _arrow_type(name: str) -> Any:
    import pyarrow as pa  # type: ignore[import-untyped]

    return {
        "string": pa.string(),
        "int16": pa.int16(),
        "int32": pa.int32(),
        "float64": pa.float64(),
        "bool": pa.bool_(),
        "timestamp": pa.timestamp("us", tz="UTC"),
        "list": pa.list_(pa.string()),
    }[name]


def _parquet(columns: Sequence[Column], chunks: Iterable[Sequence[Any]]) -> Iterator[bytes]:
    # pyarrow is imported here, not at module level: it costs tens of MB in every process
    # (the redirect server included) and only Parquet exports need it.
    import pyarrow as pa
    import pyarrow.parquet as pq  # type: ignore[import-untyped]

    schema = pa.schema([pa.field(c.name, _arrow_type(c.type)) for c in columns])
    sink = _Sink()
    writer = pq.ParquetWriter(sink, schema, compression="zstd")
    pending: list[pa.RecordBatch] = []
    rows = 0
    try:
        for chunk in chunks:
            if not chunk:
                continue
            pending.append(
                pa.record_batch([pa.array([c.get(r) for r in chunk], _arrow_type(c.type)) for c in columns],
                                schema=schema)
            )  # fmt: skip
            rows += len(chunk)
            if rows >= ROW_GROUP:
                writer.write_table(pa.Table.from_batches(pending, schema), row_group_size=rows)
                pending, rows = [], 0
                yield sink.take()
        if pending:
            writer.write_table(pa.Table.from_batches(pending, schema), row_group_size=rows)
    finally:
        writer.close()
    yield sink.take()
