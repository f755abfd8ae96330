"""Importing recipients from CSV: validation, E.164 normalization, merging duplicates.

Error messages name the caller's own options (`Spelling`: `--skip-invalid` on the command line,
`skip_invalid=true` in the API), so each interface speaks its own language.
"""

from __future__ import annotations

import codecs
import csv
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import BinaryIO, Protocol

import phonenumbers

from clicktrail.domain.errors import InvalidInput, Problem
from clicktrail.domain.models import Contact, ContactInput, Workspace

STANDARD_COLUMNS = ("phone", "external_id", "first_name")
# The phone rules in force: phonenumbers' metadata, which changes with its version. A contact
# stores the rules its number was found valid under (`Contact.valid_under`); a send trusts
# that while the rules are the same and checks the number again once they change.
PHONE_RULES = f"phonenumbers {phonenumbers.__version__}"
MAX_PROBLEMS_SHOWN = 20


@dataclass
class Rejected:
    """A CSV row that was not imported: its line number, reason and original cells."""

    line: int
    reason: str
    row: dict[str, str]


@dataclass
class ParsedCsv:
    """The good contacts of a file (duplicates merged) and the rows rejected, with reasons."""

    contacts: dict[str, ContactInput] = field(default_factory=dict)
    rejected: list[Rejected] = field(default_factory=list)
    rows: int = 0
    duplicates: int = 0
    columns: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Spelling:
    """How the calling interface writes the import's options, for its error messages (e.g.
    `--skip-invalid` or `skip_invalid=true`)."""

    skip_invalid: str
    encoding: str
    allow_empty: str


@dataclass(frozen=True)
class ImportResult:
    """What an import did."""

    rows: int
    created: int
    updated: int
    duplicates: int
    rejected: list[Rejected]


class ContactStore(Protocol):
    """Contacts and their lists as services need them (`storage.contacts`)."""

    def upsert_contacts(
        self,
        workspace_id: int,
        contacts: Sequence[ContactInput],
        list_name: str | None,
        now_us: int,
    ) -> tuple[int, int]:
        """Insert new contacts and merge known ones (same phone) in one transaction, joining
        them to the list `list_name` when given; return (created, updated)."""
        ...

    def find_list(self, workspace_id: int, name: str) -> int | None:
        """Return the id of the workspace's contact list called `name`."""
        ...

    def count_contacts(self, workspace_id: int) -> int:
        """Return how many contacts the workspace has."""
        ...

    def attribute_names(self, workspace_id: int) -> set[str]:
        """Return every attribute name any of the workspace's contacts has."""
        ...

    def audience(
        self, workspace_id: int, list_id: int | None, after_id: int, limit: int
    ) -> list[Contact]:
        """Return up to `limit` opted-in contacts of the audience with id > `after_id`, by id."""
        ...

    def longest_values(self, workspace_id: int, list_id: int | None) -> list[dict[str, str]]:
        """Return the audience's worst-case field value sets (GSM-7, then UCS-2 if any)."""
        ...

    def find_contact(self, workspace_id: int, phone_or_external_id: str) -> Contact | None:
        """Return the workspace's contact with this phone (E.164) or external id."""
        ...


def normalize_phone(raw: str, region: str | None) -> str:
    """Return `raw` as E.164 (``+14155550123``), valid under `PHONE_RULES`.

    Raises `ValueError` with the reason when it is not a valid number (numbers without a
    ``+country`` prefix need `region`).
    """
    text = raw.strip()
    if not text:
        raise ValueError("phone is empty")
    try:
        num = phonenumbers.parse(text, region.upper() if region else None)
    except phonenumbers.NumberParseException as exc:
        if exc.error_type == phonenumbers.NumberParseException.INVALID_COUNTRY_CODE:
            raise ValueError(
                f"{text!r} has no country code; write it as +<country><number> "
                "or give a default region (e.g. US)"
            ) from None
        raise ValueError(f"{text!r} is not a phone number") from None
    if not phonenumbers.is_valid_number(num):
        where = phonenumbers.region_code_for_number(num) or "its country"
        raise ValueError(f"{text!r} is not a valid number for {where}")
    return phonenumbers.format_number(num, phonenumbers.PhoneNumberFormat.E164)


class _UndecodableLine(Exception):
    def __init__(self, line: int, reason: str) -> None:
        self.line = line
        self.reason = reason


def _decoded_lines(stream: BinaryIO, encoding: str) -> Iterator[str]:
    """Yield the text lines of `stream`, raising `_UndecodableLine` with the physical line.

    Decoding line by line (rather than through a buffered text wrapper that decodes ahead)
    pins a bad byte to its own line. Lines end at a newline byte, which is right for every
    ASCII-compatible encoding (UTF-8, Latin-1, Windows-125x).
    """
    decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
    number = 0
    for number, raw in enumerate(stream, start=1):
        try:
            yield decoder.decode(raw)
        except UnicodeDecodeError as exc:
            raise _UndecodableLine(number, exc.reason) from None
    try:
        tail = decoder.decode(b"", final=True)
    except UnicodeDecodeError as exc:
        raise _UndecodableLine(max(number, 1), exc.reason) from None
    if tail:
        yield tail


def parse_contacts_csv(
    stream: BinaryIO,
    *,
    name: str,
    region: str | None,
    spelling: Spelling,
    encoding: str = "utf-8-sig",
    progress: Callable[[int], None] | None = None,
) -> ParsedCsv:
    """Read a CSV of recipients: a ``phone`` column, optional ``external_id`` and
    ``first_name``, any other column as an attribute.

    Rows with bad phones are collected in `rejected` with their line number. Raises
    `InvalidInput` for problems of the whole file: empty, no header, no ``phone`` column,
    undecodable bytes, malformed CSV. `progress` is called with the bytes read so far.
    """
    if region and region.upper() not in phonenumbers.SUPPORTED_REGIONS:
        raise InvalidInput(
            f"unknown region {region!r}: use an ISO country code like US", field="region"
        )
    try:
        codecs.lookup(encoding)
    except LookupError:
        raise InvalidInput(f"unknown encoding {encoding!r}", field="encoding") from None
    reader = csv.reader(_decoded_lines(stream, encoding))
    out = ParsedCsv()
    line = 0
    try:
        header = next(reader, None)
        line = reader.line_num
        if header is None:
            raise InvalidInput(
                f"{name} is empty: expected a header line with a 'phone' column", field=name
            )
        columns = [h.strip() for h in header]
        lowered = [h.lower() for h in columns]
        if "phone" not in lowered:
            shown = ", ".join(repr(c) for c in columns[:10])
            raise InvalidInput(
                f"{name} line 1: no 'phone' column in the header (found {shown}); the first line "
                "must name the columns, e.g. phone,external_id,first_name",
                field="line 1",
            )
        dupes = {c for c in lowered if c and lowered.count(c) > 1}
        if dupes:
            raise InvalidInput(
                f"{name} line 1: column(s) named twice: {', '.join(sorted(dupes))}", field="line 1"
            )
        empty = [i + 1 for i, c in enumerate(columns) if not c]
        if empty:
            raise InvalidInput(f"{name} line 1: column {empty[0]} has no name", field="line 1")
        out.columns = columns
        keys = [c if c.lower() not in STANDARD_COLUMNS else c.lower() for c in columns]
        for cells in reader:
            line = reader.line_num
            if progress is not None and line % 2000 == 0:
                progress(stream.tell() if stream.seekable() else 0)
            if not cells or all(not c.strip() for c in cells):
                continue
            out.rows += 1
            row = dict(zip(keys, (c.strip() for c in cells), strict=False))
            if len(cells) != len(keys):
                out.rejected.append(
                    Rejected(
                        line, f"{len(cells)} cells but the header has {len(keys)} columns", row
                    )
                )
                continue
            try:
                phone = normalize_phone(row["phone"], region)
            except ValueError as exc:
                out.rejected.append(Rejected(line, f"phone: {exc}", row))
                continue
            contact = ContactInput(
                phone=phone,
                external_id=row.get("external_id") or None,
                first_name=row.get("first_name") or None,
                attributes={k: v for k, v in row.items() if k not in STANDARD_COLUMNS},
                valid_under=PHONE_RULES,
            )
            known = out.contacts.get(phone)
            if known is not None:
                out.duplicates += 1
                contact = known.merged_with(contact)
            out.contacts[phone] = contact
    except _UndecodableLine as exc:
        raise InvalidInput(
            f"{name} line {exc.line}: bytes that are not {encoding} text ({exc.reason}); save "
            f"the file as UTF-8 or give its encoding ({spelling.encoding})",
            field=f"line {exc.line}",
        ) from None
    except csv.Error as exc:
        raise InvalidInput(
            f"{name} line {reader.line_num}: malformed CSV: {exc}", field=f"line {reader.line_num}"
        ) from None
    if progress is not None:
        progress(stream.tell() if stream.seekable() else 0)
    return out


def import_contacts(
    store: ContactStore,
    workspace: Workspace,
    parsed: ParsedCsv,
    *,
    name: str,
    skip_invalid: bool,
    list_name: str | None,
    now_us: int,
    spelling: Spelling,
    allow_empty: bool = False,
) -> ImportResult:
    """Store the parsed contacts.

    Without `skip_invalid`, any rejected row aborts the whole import: raises `InvalidInput`
    listing the bad lines, and nothing is written. With it, good rows are imported and the
    rejected ones returned. A file with a header and no data row raises `InvalidInput` unless
    `allow_empty` (an export that came out empty is a mistake more often than a wish).
    """
    if parsed.rows == 0 and not allow_empty:
        raise InvalidInput(
            f"{name}: a header and no data rows: no contact to import (pass "
            f"{spelling.allow_empty} to accept an empty file)",
            field=name,
        )
    if parsed.rejected and not skip_invalid:
        problems = [Problem(f"line {r.line}", r.reason) for r in parsed.rejected]
        shown = "\n".join(
            f"  line {r.line}: {r.reason}" for r in parsed.rejected[:MAX_PROBLEMS_SHOWN]
        )
        more = len(parsed.rejected) - MAX_PROBLEMS_SHOWN
        tail = f"\n  … and {more} more" if more > 0 else ""
        raise InvalidInput(
            f"{name}: {len(parsed.rejected)} of {parsed.rows} rows are invalid; nothing was "
            f"imported (use {spelling.skip_invalid} to import the good rows):\n{shown}{tail}",
            field=name,
            problems=problems,
        )
    created, updated = store.upsert_contacts(
        workspace.id, list(parsed.contacts.values()), list_name, now_us
    )
    return ImportResult(parsed.rows, created, updated, parsed.duplicates, parsed.rejected)
