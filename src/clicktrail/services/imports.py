"""Import files read as items, one a line: CSV with a header, or JSON lines (one object a line,
as the API takes it). The one reader of `clicktrail conversions import` and `clicktrail
touchpoints import`; each names its columns and the two that make up an item's ``contact``.

A file that cannot be read at all (not UTF-8, a CSV without a header or with an unknown column,
an unknown format) raises; a line that cannot be read as an item (not JSON, more cells than
columns) is recorded by its index, so that the import can name every bad line at once.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from clicktrail.domain.errors import InvalidInput

FORMATS = ("csv", "jsonl")


@dataclass(frozen=True, slots=True)
class Lines:
    """The items of an import file, each one's place (``line N: ``, the prefix of its
    errors) and, by index, why a line could not be read as an item (its item is None)."""

    items: list[object]
    where: list[str]
    unreadable: dict[int, str]


def read_lines(
    data: bytes,
    fmt: str,
    columns: Sequence[str],
    contact: tuple[str, str],
    *,
    name: str = "file",
) -> Lines:
    """Return the items of `data` in format `fmt` (`FORMATS`). A CSV row becomes an item of
    its non-empty cells; the columns `contact` (external id, phone) become its ``contact``
    object (both given: both kept, which the item's check refuses). Blank JSON lines are
    skipped. Errors about the whole file start with `name`."""
    if fmt not in FORMATS:
        raise InvalidInput(f"format {fmt!r} is not one of {', '.join(FORMATS)}", field="format")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"{name}: not UTF-8 (byte {exc.start})", field="file") from None
    lines = Lines([], [], {})
    if fmt == "jsonl":
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                lines.items.append(orjson.loads(line))
            except orjson.JSONDecodeError as exc:
                lines.unreadable[len(lines.items)] = f"not JSON ({exc})"
                lines.items.append(None)
            lines.where.append(f"line {n}: ")
        return lines
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = reader.fieldnames
    if not header:
        raise InvalidInput(f"{name}: no CSV header (columns: {', '.join(columns)})", "file")
    unknown = [h for h in header if h not in columns]
    if unknown:
        raise InvalidInput(
            f"{name}: unknown column {unknown[0]!r} (columns: {', '.join(columns)})", "file"
        )
    for row in reader:
        if None in row:
            lines.unreadable[len(lines.items)] = "more cells than the header has columns"
        lines.items.append(_csv_item(row, contact))
        lines.where.append(f"line {reader.line_num}: ")
    return lines


def _csv_item(row: Mapping[str | None, Any], contact: tuple[str, str]) -> dict[str, Any]:
    item: dict[str, Any] = {
        k: v for k, v in row.items() if k is not None and k not in contact and v not in ("", None)
    }
    ext, phone = row.get(contact[0]) or None, row.get(contact[1]) or None
    if ext is not None and phone is not None:
        item["contact"] = {"external_id": ext, "phone": phone}  # refused: one of the two
    elif ext is not None or phone is not None:
        item["contact"] = {"external_id": ext} if ext is not None else {"phone": phone}
    return item
