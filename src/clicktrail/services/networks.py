"""A workspace's own network (CIDR) lists for bot filtering: add, list, remove (docs/bots.md).

A workspace keeps named lists ("carriers", "own-scanners", "aws") of ranges, each with a kind
(`RANGE_KINDS`: hosting, cdn, crawler, scanner, mobile, relay, residential, vpn, tor) and an
owner. Its requests are judged with its own lists on top of the installation's range file and
iporigin; another workspace's lists never count for it. Ranges come from the clouds' published
range files (read through a `RangeFileReader`, `signals.network.range_file_entries` in
production) or one CIDR at a time.

Every change is all or nothing: one bad line anywhere, and nothing is written; the error names
the file (or argument, or body item), the line and the field.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from clicktrail.domain.bots.model import RANGE_KINDS
from clicktrail.domain.errors import InvalidInput, NotFound, Problem
from clicktrail.domain.models import Workspace
from clicktrail.domain.network import normalize_cidr
from clicktrail.services.listing import Page, decode_cursor, page_of

LIST_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
MAX_OWNER = 200
DEFAULT_KIND = "hosting"
# Something that was meant as an address or a range, not a file name (digits, dots or colons,
# hex, a prefix): refused as a bad CIDR rather than looked for on disk.
_LOOKS_LIKE_CIDR = re.compile(r"(?=[^/]*[0-9])(?=[^/]*[.:])[0-9A-Fa-f:.]+(/[0-9.]*)?")
_KINDS_TEXT = ", ".join(sorted(RANGE_KINDS))

# Reads one downloaded range file: (cidr, kind, owner) per range, `kind` and `owner` (when not
# None) overriding what the file implies. Raises `InvalidInput` naming the file and line.
RangeFileReader = Callable[[Path, str | None, str | None], Sequence[tuple[str, str, str]]]


@dataclass(frozen=True, slots=True)
class WorkspaceRange:
    """One range of a workspace's network list: `cidr` normalized, `kind` one of
    `RANGE_KINDS`, `owner` possibly empty."""

    list_name: str
    cidr: str
    kind: str
    owner: str
    created_us: int


@dataclass(frozen=True, slots=True)
class NetworkListSummary:
    """A workspace's named network list: how many ranges, of which kinds, added when."""

    name: str
    ranges: int
    kinds: tuple[str, ...]
    created_us: int  # its first range
    added_us: int  # its newest range


class NetworkListStore(Protocol):
    """Workspaces' network lists as this service needs them (`storage.networks`)."""

    def add_network_ranges(
        self,
        workspace_id: int,
        list_name: str,
        ranges: Sequence[tuple[str, str, str]],
        now_us: int,
    ) -> tuple[int, int]:
        """Add (cidr, kind, owner) ranges to a list, a known range taking the new kind and
        owner, all or nothing; return (added, updated). Raises `Conflict` on a racing writer."""
        ...

    def network_lists(
        self, workspace_id: int, after: str | None = None, limit: int | None = None
    ) -> list[NetworkListSummary]:
        """Return the workspace's lists by name, those after `after`, up to `limit`."""
        ...

    def network_ranges_page(
        self, workspace_id: int, list_name: str, after: str | None, limit: int
    ) -> list[WorkspaceRange]:
        """Return up to `limit` ranges of a list by CIDR text, those after `after`."""
        ...

    def workspace_network_ranges(self, workspace_id: int) -> list[WorkspaceRange]:
        """Return every range of every list of the workspace, by list name and CIDR."""
        ...

    def remove_network_list(self, workspace_id: int, list_name: str, now_us: int) -> int:
        """Delete a list; return how many ranges it had."""
        ...

    def remove_network_range(
        self, workspace_id: int, list_name: str, cidr: str, now_us: int
    ) -> bool:
        """Delete one range of a list; return whether it was there."""
        ...

    def network_list_revisions(self) -> dict[int, int]:
        """Return each workspace's lists revision (up with every change)."""
        ...


@dataclass(frozen=True, slots=True)
class RangeInput:
    """One range to add as given: `kind` and `owner` None take the call's defaults. `where`
    names its origin in errors (``aws.json``, ``argument 2``, ``/ranges/3``)."""

    cidr: str
    kind: str | None = None
    owner: str | None = None
    where: str = ""


@dataclass(frozen=True, slots=True)
class RangesAdded:
    """What adding ranges to a list did: new ranges, ranges whose kind or owner changed, and
    ranges that were already there as given."""

    list_name: str
    added: int
    updated: int
    unchanged: int


def check_list_name(name: str) -> str:
    """Return `name` if it can name a network list. Raises `InvalidInput` (field ``list``)."""
    if not LIST_NAME.fullmatch(name):
        raise InvalidInput(
            f"list name {name!r} must be 1 to 64 lowercase letters, digits, '.', '_' or '-', "
            "starting with a letter or digit",
            field="list",
        )
    return name


def _check_kind(kind: str | None, field: str) -> str | None:
    if kind is not None and kind not in RANGE_KINDS:
        raise InvalidInput(f"kind {kind!r} is not one of {_KINDS_TEXT}", field=field)
    return kind


def _check_owner(owner: str | None, field: str) -> str | None:
    if owner is not None and (len(owner) > MAX_OWNER or "\x00" in owner):
        raise InvalidInput(
            f"owner must be at most {MAX_OWNER} characters, without NUL", field=field
        )
    return owner


def _field(where: str, name: str) -> str:
    if not where:
        return name
    return f"{where}/{name}" if where.startswith("/") else f"{where}: {name}"


def add_range_entries(
    store: NetworkListStore,
    ws: Workspace,
    list_name: str,
    entries: Sequence[RangeInput],
    *,
    now_us: int,
    kind: str | None = None,
    owner: str | None = None,
) -> RangesAdded:
    """Add `entries` to the workspace's network list `list_name` (created when new).

    `kind` (default ``hosting``) and `owner` (default none) apply to entries that name none. A
    range already in the list takes the new kind and owner; a range given twice counts once
    (the first). CIDRs are normalized (``10.1.2.3/8`` is ``10.0.0.0/8``, an address is a /32 or
    /128). Raises `InvalidInput` naming every bad entry (its `where` and field), and nothing is
    written; `Conflict` if another writer changed the list at the same moment.
    """
    check_list_name(list_name)
    _check_kind(kind, "kind")
    _check_owner(owner, "owner")
    if not entries:
        raise InvalidInput("no ranges given", field="ranges")
    problems: list[Problem] = []
    rows: dict[str, tuple[str, str, str]] = {}
    for e in entries:
        cidr = normalize_cidr(e.cidr)
        if cidr is None:
            problems.append(Problem(_field(e.where, "cidr"), f"{e.cidr!r} is not a CIDR range"))
        if e.kind is not None and e.kind not in RANGE_KINDS:
            problems.append(
                Problem(_field(e.where, "kind"), f"kind {e.kind!r} is not one of {_KINDS_TEXT}")
            )
        if e.owner is not None and (len(e.owner) > MAX_OWNER or "\x00" in e.owner):
            problems.append(
                Problem(
                    _field(e.where, "owner"),
                    f"owner must be at most {MAX_OWNER} characters, without NUL",
                )
            )
        if cidr is not None and not problems and cidr not in rows:
            rows[cidr] = (cidr, e.kind or kind or DEFAULT_KIND, (e.owner or owner or "").strip())
    if problems:
        first = problems[0]
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise InvalidInput(
            f"{first.field}: {first.message}{more}; nothing was added",
            field=first.field,
            problems=problems,
        )
    added, updated = store.add_network_ranges(ws.id, list_name, list(rows.values()), now_us)
    return RangesAdded(list_name, added, updated, len(rows) - added - updated)


def add_ranges(
    store: NetworkListStore,
    ws: Workspace,
    list_name: str,
    sources: Sequence[str],
    *,
    read_file: RangeFileReader,
    now_us: int,
    kind: str | None = None,
    owner: str | None = None,
) -> RangesAdded:
    """Add ranges to the workspace's list `list_name` from `sources`: each a CIDR range or an
    address, or the path of a range file in any format `read_file` understands (AWS, Google,
    Azure, Cloudflare, plain CIDR text, clicktrail's CSV).

    `kind` and `owner` override what files imply and apply to the CIDRs given. All files are
    read and checked before anything is written. Raises `InvalidInput` naming the file, line
    and field at fault (or the argument); see `add_range_entries`.
    """
    check_list_name(list_name)
    _check_kind(kind, "kind")
    _check_owner(owner, "owner")
    entries: list[RangeInput] = []
    for n, source in enumerate(sources, 1):
        text = source.strip()
        if normalize_cidr(text) is not None or _LOOKS_LIKE_CIDR.fullmatch(text):
            entries.append(RangeInput(text, kind, owner, f"argument {n}"))
            continue
        path = Path(source)
        entries += [RangeInput(c, k, o, str(path)) for c, k, o in read_file(path, kind, owner)]
    if not entries:
        raise InvalidInput("no ranges given: name CIDR ranges or range files", field="ranges")
    return add_range_entries(store, ws, list_name, entries, now_us=now_us)


def list_networks(
    store: NetworkListStore, ws: Workspace, limit: int | None = None, cursor: str | None = None
) -> Page[NetworkListSummary]:
    """Return the workspace's network lists by name (a page of `limit`, or all)."""
    after = decode_cursor("networks", cursor)
    rows = store.network_lists(ws.id, after, None if limit is None else limit + 1)
    if limit is None:
        return Page(rows)
    return page_of("networks", rows, limit, lambda n: n.name)


def list_ranges(
    store: NetworkListStore,
    ws: Workspace,
    list_name: str,
    limit: int | None = None,
    cursor: str | None = None,
) -> Page[WorkspaceRange]:
    """Return the ranges of the workspace's list `list_name` by CIDR text (a page of `limit`,
    or all). Raises `NotFound` for a list the workspace does not have."""
    after = decode_cursor(f"ranges:{list_name}", cursor)
    _require_list(store, ws, list_name)
    if limit is None:
        return Page([r for r in store.workspace_network_ranges(ws.id) if r.list_name == list_name])
    rows = store.network_ranges_page(ws.id, list_name, after, limit + 1)
    return page_of(f"ranges:{list_name}", rows, limit, lambda r: r.cidr)


def _require_list(store: NetworkListStore, ws: Workspace, list_name: str) -> None:
    if not LIST_NAME.fullmatch(list_name) or not store.network_ranges_page(
        ws.id, list_name, None, 1
    ):
        raise NotFound(f"network list {list_name!r} not found in this workspace", field="list")


def remove_list(store: NetworkListStore, ws: Workspace, list_name: str, *, now_us: int) -> int:
    """Delete the workspace's network list `list_name`; return how many ranges it had.
    Raises `NotFound` when the workspace has no such list."""
    gone = (
        store.remove_network_list(ws.id, list_name, now_us) if LIST_NAME.fullmatch(list_name) else 0
    )
    if not gone:
        raise NotFound(f"network list {list_name!r} not found in this workspace", field="list")
    return gone


def remove_range(
    store: NetworkListStore, ws: Workspace, list_name: str, cidr: str, *, now_us: int
) -> str:
    """Delete one range from the workspace's list `list_name`; return it, normalized.

    Raises `InvalidInput` (field ``cidr``) for a malformed range, `NotFound` when the list does
    not hold it.
    """
    normal = normalize_cidr(cidr)
    if normal is None:
        raise InvalidInput(f"{cidr!r} is not a CIDR range", field="cidr")
    _require_list(store, ws, list_name)
    if not store.remove_network_range(ws.id, list_name, normal, now_us):
        raise NotFound(f"network list {list_name!r} has no range {normal}", field="cidr")
    return normal


def workspace_ranges(store: NetworkListStore, ws: Workspace) -> list[WorkspaceRange]:
    """Return every range of every list of the workspace, by list name and CIDR."""
    return store.workspace_network_ranges(ws.id)
