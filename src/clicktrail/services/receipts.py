"""Delivery receipts: parse them (API JSON, JSONL or CSV files) and apply them."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from clicktrail.domain.errors import InvalidInput, Problem
from clicktrail.domain.models import Receipt, Workspace
from clicktrail.domain.status import RECEIPT_STATUSES, parse_status

MAX_BATCH = 10_000


@dataclass
class ReceiptOutcome:
    """What a batch of receipts did: applied, left unchanged (stale/repeated), unknown ids.

    `rejected` is set when unknown ids stopped the whole batch (nothing was written).
    """

    applied: int = 0
    unchanged: int = 0
    unknown: list[str] = field(default_factory=list)
    rejected: bool = False


class ReceiptStore(Protocol):
    """Messages as receipts need them (`storage.messages`)."""

    def apply_receipts(
        self,
        workspace_id: int,
        receipts: Sequence[Receipt],
        *,
        skip_unknown: bool,
        source: str,
        now_us: int,
    ) -> ReceiptOutcome:
        """Move the workspace's messages forward by their receipts, all in one transaction;
        with unknown ids and not `skip_unknown`, write nothing and set `rejected`."""
        ...


def parse_time(value: Any, field: str, default_us: int) -> int:
    """Return µs since the epoch from an ISO 8601 string or a number of seconds.

    A missing value means `default_us`; a time without zone is taken as UTC. Raises
    `InvalidInput` naming `field`.
    """
    if value is None or value == "":
        return default_us
    if isinstance(value, bool):
        raise InvalidInput(f"{field}: expected a time, got {value!r}", field=field)
    if isinstance(value, int | float):
        return _seconds_us(value, field)
    if isinstance(value, str):
        text = value.strip()
        try:
            number = float(text)
        except ValueError:
            pass
        else:
            return _seconds_us(number, field)
        try:
            dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise InvalidInput(
                f"{field}: {value!r} is not an ISO 8601 time (e.g. 2026-11-22T10:00:00Z)",
                field=field,
            ) from None
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=UTC)
        return int(dt.timestamp() * 1_000_000)
    raise InvalidInput(f"{field}: expected a time, got {value!r}", field=field)


def _seconds_us(seconds: float, field: str) -> int:
    # Unix seconds from 1970 to the end of year 9999; NaN, infinities and the rest would
    # overflow an integer column (or Python's int()) further down.
    if not 0 <= seconds < 253_402_300_800:
        raise InvalidInput(
            f"{field}: {seconds!r} is not a time in Unix seconds between 1970 and 9999",
            field=field,
        )
    return int(seconds * 1_000_000)


def field_at(loc: str, name: str) -> str:
    """Name field `name` of the item at `loc`: ``/3/status`` (JSON pointer) or ``line 4: status``."""
    return f"{loc}/{name}" if loc.startswith("/") else f"{loc}: {name}"


def receipts_from_items(items: Sequence[Any], where: Sequence[str], now_us: int) -> list[Receipt]:
    """Validate receipt objects ``{message_id, status, at}``; `where[i]` names item i in errors.

    Raises `InvalidInput` with one problem per bad field, naming the item.
    """
    problems: list[Problem] = []
    out: list[Receipt] = []
    allowed = ", ".join(sorted(s.value for s in RECEIPT_STATUSES))
    for item, loc in zip(items, where, strict=True):
        if not isinstance(item, dict):
            problems.append(Problem(loc, "expected an object with message_id, status and at"))
            continue
        mid = item.get("message_id")
        if not isinstance(mid, str) or not mid.strip():
            problems.append(Problem(field_at(loc, "message_id"), "missing or not a string"))
            continue
        raw_status = item.get("status")
        status = parse_status(raw_status) if isinstance(raw_status, str) else None
        if status is None or status not in RECEIPT_STATUSES:
            problems.append(
                Problem(field_at(loc, "status"), f"{raw_status!r} is not one of {allowed}")
            )
            continue
        try:
            at = parse_time(item.get("at"), field_at(loc, "at"), now_us)
        except InvalidInput as exc:
            problems.append(Problem(exc.field or loc, exc.message.split(": ", 1)[-1]))
            continue
        out.append(Receipt(mid.strip(), status.value, at))
    if problems:
        detail = "; ".join(f"{p.field}: {p.message}" for p in problems[:10])
        more = f" (and {len(problems) - 10} more)" if len(problems) > 10 else ""
        raise InvalidInput(
            f"{len(problems)} invalid receipt(s), nothing was recorded: {detail}{more}",
            field=problems[0].field,
            problems=problems,
        )
    return out


def parse_receipts_file(data: bytes, name: str, now_us: int) -> tuple[list[Receipt], list[str]]:
    """Parse a receipts file: JSON lines, or CSV with a ``message_id,status,at`` header.

    The format is sniffed from the first non-blank character. Returns the receipts and where
    each came from (``line N``). Raises `InvalidInput` naming the line at fault.
    """
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise InvalidInput(f"{name} line {line}: not UTF-8 text", field=f"line {line}") from None
    if not text.strip():
        raise InvalidInput(f"{name} is empty", field=name)
    items: list[Any] = []
    where: list[str] = []
    if text.lstrip().startswith(("{", "[")):
        for no, raw_line in enumerate(text.splitlines(), start=1):
            if not raw_line.strip():
                continue
            try:
                items.append(json.loads(raw_line))
            except json.JSONDecodeError as exc:
                raise InvalidInput(
                    f"{name} line {no}: not valid JSON ({exc.msg} at column {exc.colno})",
                    field=f"line {no}",
                ) from None
            where.append(f"line {no}")
    else:
        reader = csv.DictReader(io.StringIO(text, newline=""))
        if not reader.fieldnames or "message_id" not in reader.fieldnames:
            raise InvalidInput(
                f"{name} line 1: CSV header must name message_id,status[,at]", field="line 1"
            )
        for row in reader:
            items.append(dict(row))
            where.append(f"line {reader.line_num}")
    return receipts_from_items(items, where, now_us), where


def record_receipts(
    store: ReceiptStore,
    workspace: Workspace,
    receipts: Sequence[Receipt],
    *,
    where: Sequence[str],
    skip_unknown: bool,
    source: str,
    now_us: int,
    skip_option: str = "",
) -> ReceiptOutcome:
    """Apply receipts; a status only ever moves forward.

    `where[i]` names receipt i in errors. Raises `InvalidInput` listing every receipt whose
    message id is unknown in this workspace, and writes nothing, unless `skip_unknown`; the
    message suggests `skip_option`, the caller's own spelling of that switch.
    """
    outcome = store.apply_receipts(
        workspace.id, receipts, skip_unknown=skip_unknown, source=source, now_us=now_us
    )
    if outcome.rejected:
        unknown = set(outcome.unknown)
        problems = [
            Problem(field_at(loc, "message_id"), f"unknown message id {r.message_id!r}")
            for r, loc in zip(receipts, where, strict=True)
            if r.message_id in unknown
        ]
        shown = ", ".join(repr(m) for m in outcome.unknown[:10])
        hint = f" (skip them with {skip_option})" if skip_option else ""
        raise InvalidInput(
            f"{len(problems)} receipt(s) name unknown message ids ({shown}); nothing was "
            f"recorded{hint}",
            field=problems[0].field,
            problems=problems,
        )
    return outcome
