"""Templates of the generic HTTP provider (`sms/http.py`): ``{placeholders}`` in strings, JSON
bodies rendered from them (fields that render empty left out), and values read from JSON
answers and receipts by dotted path."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any

_PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([A-Za-z_][A-Za-z0-9_]*)\}")


def placeholders(template: Any) -> Iterator[str]:
    """Yield the placeholder names in `template` (a string, or lists and objects of them)."""
    if isinstance(template, str):
        for m in _PLACEHOLDER.finditer(template):
            if m.group(1):
                yield m.group(1)
    elif isinstance(template, dict):
        for value in template.values():
            yield from placeholders(value)
    elif isinstance(template, list):
        for value in template:
            yield from placeholders(value)


def render(template: str, values: Mapping[str, str], escape: Callable[[str], str] = str) -> str:
    """Return `template` with each ``{name}`` replaced by ``escape(values[name])``."""

    def one(m: re.Match[str]) -> str:
        if m.group(0) == "{{":
            return "{"
        if m.group(0) == "}}":
            return "}"
        return escape(values[m.group(1)])

    return _PLACEHOLDER.sub(one, template)


def render_body(template: Any, values: Mapping[str, str]) -> Any:
    """Return a JSON body template rendered: strings filled in, other values kept, object
    fields that render to an empty string left out."""
    if isinstance(template, str):
        return render(template, values)
    if isinstance(template, dict):
        out = {}
        for key, value in template.items():
            rendered = render_body(value, values)
            if rendered != "":
                out[key] = rendered
        return out
    if isinstance(template, list):
        return [render_body(v, values) for v in template]
    return template


def at_path(data: Any, path: str) -> Any:
    """Return the value at a dotted path (``messages.0.message-id``; numbers index lists),
    or None when the path leads nowhere."""
    for part in path.split("."):
        if isinstance(data, dict):
            data = data.get(part)
        elif isinstance(data, list) and part.isdigit() and int(part) < len(data):
            data = data[int(part)]
        else:
            return None
    return data


def as_text(value: Any) -> str | None:
    """Return a scalar JSON value as text (booleans as ``true``/``false``), None when empty,
    missing, or an object or list."""
    if value is None or isinstance(value, dict | list):
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value).strip()
    return text or None
