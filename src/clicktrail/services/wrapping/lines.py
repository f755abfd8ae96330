"""Wrap items read from JSON lines (the CLI's ``clicktrail wrap`` file)."""

from __future__ import annotations

import json

from clicktrail.domain.errors import InvalidInput, Problem
from clicktrail.domain.wrapping import item_field
from clicktrail.services.wrapping.records import WrapItem

_ITEM_FIELDS = ("to", "external_id", "region", "first_name", "text", "client_ref")


def items_from_lines(data: bytes, name: str) -> tuple[list[WrapItem], list[str]]:
    """Read wrap items from JSON lines: one object per line with the fields of `WrapItem`
    (``to``, ``external_id``, ``region``, ``first_name``, ``text``, ``client_ref``).

    Returns the items and where each came from (``line N``); blank lines are skipped. Raises
    `InvalidInput` naming every bad line (not JSON, not an object, an unknown field, a value
    that is not a string).
    """
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise InvalidInput(f"{name} line {line}: not UTF-8 text", field=f"line {line}") from None
    items: list[WrapItem] = []
    where: list[str] = []
    problems: list[Problem] = []
    for no, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        loc = f"line {no}"
        try:
            obj = json.loads(raw)
        except json.JSONDecodeError as exc:
            problems.append(Problem(loc, f"not valid JSON ({exc.msg} at column {exc.colno})"))
            continue
        if not isinstance(obj, dict):
            problems.append(Problem(loc, "expected a JSON object with to and text"))
            continue
        unknown = sorted(set(obj) - set(_ITEM_FIELDS))
        if unknown:
            problems.append(
                Problem(
                    item_field(loc, unknown[0]), f"unknown field; fields: {', '.join(_ITEM_FIELDS)}"
                )
            )
            continue
        bad = [k for k, v in obj.items() if v is not None and not isinstance(v, str)]
        if bad:
            problems.append(Problem(item_field(loc, bad[0]), "must be a string"))
            continue
        items.append(WrapItem(**{k: obj.get(k) for k in _ITEM_FIELDS}))
        where.append(loc)
    if problems:
        detail = "\n".join(f"  {p.field}: {p.message}" for p in problems[:20])
        raise InvalidInput(
            f"{name}: {len(problems)} bad line(s), nothing was wrapped:\n{detail}",
            field=problems[0].field,
            problems=problems,
        )
    if not items:
        raise InvalidInput(f"{name} holds no item to wrap", field=name)
    return items, where
