"""Opt-outs: CTIA keywords from inbound SMS, manual opt-outs and opt-ins, and their history.

A contact's current state is its opt-out time (`Contact.opted_out`); every change is also kept
in an opt-out history with when it happened and where it came from (the `source`:
``keyword:STOP via twilio inbound``, ``keyword:START via inbound api``, ``api``, ``cli``,
``import``). Events may arrive out of order (a delayed webhook): the latest by time wins, an
older one is kept in the history but not applied.

An opt-out from a phone clicktrail does not know yet creates an opted-out contact, so that a
later import or wrap never messages it. Opted-out contacts are left out of every send's
audience and refused by the wrap API; their past messages and clicks stay in reports.
"""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from clicktrail.domain.errors import InvalidInput, NotFound, Problem
from clicktrail.domain.models import Workspace
from clicktrail.domain.optout import Keyword, KeywordAction, describe_source, parse_keyword
from clicktrail.services.contacts import ContactStore, normalize_phone
from clicktrail.services.providers import ProviderStore, resolve_secrets
from clicktrail.services.workspaces import WorkspaceStore

log = logging.getLogger("clicktrail.optouts")

MAX_HISTORY = 1000
MAX_BATCH = 10_000
MAX_REPLY = 1600  # ten concatenated GSM-7 segments; longer replies are a mistake
MAX_NOTE = 500


@dataclass(frozen=True, slots=True)
class OptChange:
    """An opt-out (or opt-in) to record for the contact with `phone` (E.164).

    With `create_contact`, an unknown phone becomes a contact (opted out when `opted_out`).
    """

    phone: str
    opted_out: bool
    at_us: int
    source: str
    keyword: str | None = None
    to_number: str | None = None
    note: str | None = None
    create_contact: bool = True


@dataclass(frozen=True, slots=True)
class OptResult:
    """What one change did: `known` is false for a phone with no contact (nothing recorded);
    `applied` when it changed the contact's state; `opted_out` is the state afterwards."""

    phone: str
    known: bool
    applied: bool
    opted_out: bool
    created: bool = False


@dataclass(frozen=True, slots=True)
class OptOutEvent:
    """One entry of a contact's opt-out history."""

    opted_out: bool
    at_us: int
    source: str
    keyword: str | None
    to_number: str | None
    note: str | None
    applied: bool
    recorded_us: int


@dataclass(frozen=True, slots=True)
class KeywordReplies:
    """What a workspace answers to HELP and to opt-out and opt-in keywords (None: nothing)."""

    help: str | None = None
    opt_out: str | None = None
    opt_in: str | None = None

    def for_action(self, action: KeywordAction) -> str | None:
        """Return the reply to a keyword with this action."""
        if action == KeywordAction.HELP:
            return self.help
        return self.opt_out if action == KeywordAction.OPT_OUT else self.opt_in


class OptOutStore(Protocol):
    """Persistence of opt-outs (implemented by `storage.optouts.OptOutQueries`)."""

    def record_opt_changes(
        self, workspace_id: int, changes: Sequence[OptChange], now_us: int
    ) -> list[OptResult]:
        """Apply and record `changes` in one transaction; one result per change, in order."""
        ...

    def opt_out_history(self, workspace_id: int, contact_id: int, limit: int) -> list[OptOutEvent]:
        """Return the contact's newest `limit` events, newest first."""
        ...

    def keyword_replies(self, workspace_id: int) -> KeywordReplies:
        """Return the workspace's keyword replies."""
        ...

    def set_keyword_replies(self, workspace_id: int, replies: KeywordReplies, now_us: int) -> None:
        """Store the workspace's keyword replies."""
        ...


# -- inbound messages ---------------------------------------------------------------------------


@dataclass(frozen=True)
class InboundOutcome:
    """What an inbound message did: the keyword it is (None: not a keyword, nothing done),
    whether it changed the sender's state, and the reply to send back (None: no reply)."""

    keyword: Keyword | None
    applied: bool = False
    opted_out: bool | None = None
    reply: str | None = None


def handle_inbound(
    optouts: OptOutStore,
    workspace: Workspace,
    *,
    from_number: str,
    to_number: str | None,
    text: str,
    received_us: int,
    channel: str,
    now_us: int,
    region: str | None = None,
) -> InboundOutcome:
    """Act on an inbound SMS: opt the sender out or back in when the whole message is a CTIA
    keyword (`clicktrail.domain.optout`), and pick the workspace's reply.

    `channel` names where it came from in the history (``twilio inbound``). A message that is
    not a keyword changes nothing. Raises `InvalidInput` (field ``from``) when the sender is
    not a phone number.
    """
    keyword = parse_keyword(text)
    if keyword is None:
        return InboundOutcome(None)
    try:
        phone = normalize_phone(from_number, region)
    except ValueError as exc:
        raise InvalidInput(f"from: {exc}", field="from") from None
    replies = optouts.keyword_replies(workspace.id)
    reply = replies.for_action(keyword.action)
    if keyword.action == KeywordAction.HELP:
        return InboundOutcome(keyword, reply=reply)
    opted_out = keyword.action == KeywordAction.OPT_OUT
    (result,) = optouts.record_opt_changes(
        workspace.id,
        [
            OptChange(
                phone=phone,
                opted_out=opted_out,
                at_us=received_us,
                source=describe_source(keyword, channel),
                keyword=keyword.word,
                to_number=(to_number or None) and to_number[:32],
                # START from a number clicktrail never knew has nothing to opt back in.
                create_contact=opted_out,
            )
        ],
        now_us,
    )
    if result.applied:
        log.info("%s %s (%s)", phone, "opted out" if opted_out else "opted in", keyword.word)
    return InboundOutcome(
        keyword, result.applied, result.opted_out if result.known else None, reply
    )


# -- manual changes -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ManualChange:
    """An opt-out or opt-in asked for by an operator: `contact` is a phone (E.164, or national
    with `region`) or an external id."""

    contact: str
    opted_out: bool
    at_us: int | None = None
    note: str | None = None


def set_opt_outs(
    store: ContactStore,
    optouts: OptOutStore,
    workspace: Workspace,
    changes: Sequence[ManualChange],
    *,
    where: Sequence[str],
    source: str,
    now_us: int,
    region: str | None = None,
) -> list[OptResult]:
    """Opt contacts out or back in, all or nothing; `where[i]` names change i in errors.

    A phone that is no contact yet becomes an opted-out contact on opt-out. Raises
    `InvalidInput` listing each change whose contact is neither a phone nor a known external
    id (or that opts in an unknown phone, or has a note over 500 characters); nothing is
    written then.
    """
    if len(changes) > MAX_BATCH:
        raise InvalidInput(f"at most {MAX_BATCH} changes at once, got {len(changes)}", field="body")
    problems: list[Problem] = []
    resolved: list[OptChange] = []
    for change, loc in zip(changes, where, strict=True):
        ref = change.contact.strip()
        if change.note is not None and len(change.note) > MAX_NOTE:
            problems.append(Problem(_at(loc, "note"), f"over {MAX_NOTE} characters"))
            continue
        phone = _phone_of(store, workspace, ref, region)
        if phone is None:
            problems.append(
                Problem(
                    _at(loc, "contact"),
                    f"{ref!r} is neither a phone number nor the external id of a contact",
                )
            )
            continue
        if not change.opted_out and store.find_contact(workspace.id, phone) is None:
            problems.append(Problem(_at(loc, "contact"), f"no contact has the phone {phone}"))
            continue
        resolved.append(
            OptChange(
                phone=phone,
                opted_out=change.opted_out,
                at_us=now_us if change.at_us is None else change.at_us,
                source=source,
                note=change.note or None,
            )
        )
    if problems:
        detail = "; ".join(f"{p.field}: {p.message}" for p in problems[:10])
        raise InvalidInput(
            f"{len(problems)} invalid opt-out change(s), nothing was recorded: {detail}",
            field=problems[0].field,
            problems=problems,
        )
    return optouts.record_opt_changes(workspace.id, resolved, now_us)


def import_opt_outs(
    optouts: OptOutStore,
    workspace: Workspace,
    phones: Sequence[str],
    *,
    source: str,
    now_us: int,
) -> list[OptResult]:
    """Opt out every phone of `phones` (E.164, from `parse_opt_out_list`), creating opted-out
    contacts for unknown ones, in one transaction. Raises `InvalidInput` for an empty list."""
    if not phones:
        raise InvalidInput("no phone number to opt out", field="file")
    changes = [OptChange(phone=p, opted_out=True, at_us=now_us, source=source) for p in phones]
    return optouts.record_opt_changes(workspace.id, changes, now_us)


def _at(loc: str, name: str) -> str:
    return f"{loc}/{name}" if loc.startswith("/") else f"{loc}: {name}"


def _phone_of(
    store: ContactStore, workspace: Workspace, ref: str, region: str | None
) -> str | None:
    """Return the E.164 phone `ref` names: a number, or a contact's external id."""
    if not ref:
        return None
    known = store.find_contact(workspace.id, ref)
    if known is not None:
        return known.phone
    try:
        return normalize_phone(ref, region)
    except ValueError:
        return None


@dataclass(frozen=True)
class History:
    """A contact's phone, whether it is opted out now, and its events, newest first."""

    phone: str
    opted_out: bool
    events: list[OptOutEvent]


def contact_history(
    store: ContactStore, optouts: OptOutStore, workspace: Workspace, contact_ref: str
) -> History:
    """Return the contact's opt-out state and history (at most `MAX_HISTORY` events, newest
    first). `contact_ref` is a phone (E.164) or an external id. Raises `NotFound`."""
    contact = store.find_contact(workspace.id, contact_ref)
    if contact is None:
        raise NotFound(f"contact {contact_ref!r} not found", field="contact")
    events = optouts.opt_out_history(workspace.id, contact.id, MAX_HISTORY)
    return History(contact.phone, contact.opted_out, events)


def parse_opt_out_list(data: bytes, name: str, region: str | None) -> tuple[list[str], list[str]]:
    """Read phones to opt out from a file: one per line, or CSV with a ``phone`` column.

    Returns the E.164 phones and where each came from (``line N``). Raises `InvalidInput`
    listing every line that is not a phone number (nothing is then imported).
    """
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise InvalidInput(f"{name} line {line}: not UTF-8 text", field=f"line {line}") from None
    lines = text.splitlines()
    first = next((ln for ln in lines if ln.strip()), "")
    rows: list[tuple[int, str]] = []
    if "phone" in [c.strip().lower() for c in next(csv.reader([first]), [])]:
        reader = csv.DictReader(io.StringIO(text, newline=""))
        assert reader.fieldnames is not None
        column = next(f for f in reader.fieldnames if f.strip().lower() == "phone")
        for row in reader:
            value = (row.get(column) or "").strip()
            if value:
                rows.append((reader.line_num, value))
    else:
        rows = [(no, ln.strip()) for no, ln in enumerate(lines, start=1) if ln.strip()]
    if not rows:
        raise InvalidInput(f"{name} holds no phone number", field=name)
    phones: list[str] = []
    where: list[str] = []
    problems: list[Problem] = []
    for no, value in rows:
        try:
            phones.append(normalize_phone(value, region))
            where.append(f"line {no}")
        except ValueError as exc:
            problems.append(Problem(f"line {no}", str(exc)))
    if problems:
        shown = "\n".join(f"  {p.field}: {p.message}" for p in problems[:20])
        raise InvalidInput(
            f"{name}: {len(problems)} line(s) are not phone numbers; nothing was imported:\n"
            f"{shown}",
            field=problems[0].field,
            problems=problems,
        )
    return phones, where


# -- keyword replies ----------------------------------------------------------------------------


def get_replies(optouts: OptOutStore, workspace: Workspace) -> KeywordReplies:
    """Return the workspace's keyword replies (None each when never set)."""
    return optouts.keyword_replies(workspace.id)


def set_replies(
    optouts: OptOutStore, workspace: Workspace, replies: KeywordReplies, now_us: int
) -> KeywordReplies:
    """Store the workspace's keyword replies ('' or None: no reply) and return them.

    Raises `InvalidInput` naming a reply over 1,600 characters.
    """
    cleaned: dict[str, str | None] = {}
    for name in ("help", "opt_out", "opt_in"):
        value = getattr(replies, name)
        value = value.strip() if isinstance(value, str) else None
        if value and len(value) > MAX_REPLY:
            raise InvalidInput(f"{name} reply is over {MAX_REPLY} characters", field=name)
        cleaned[name] = value or None
    out = KeywordReplies(**cleaned)
    optouts.set_keyword_replies(workspace.id, out, now_us)
    return out


# -- Twilio accounts that may sign inbound webhooks ---------------------------------------------


@dataclass(frozen=True)
class TwilioSigner:
    """A Twilio account configured in a workspace: the auth token its webhooks are signed with."""

    workspace: Workspace
    provider: str
    auth_token: str


def twilio_signers(
    store: WorkspaceStore, providers: ProviderStore, env: Mapping[str, str]
) -> list[TwilioSigner]:
    """Return the Twilio provider accounts of every workspace with their auth tokens
    (``${ENV}`` references resolved from `env`); an account whose token cannot be resolved is
    skipped with a warning."""
    out: list[TwilioSigner] = []
    workspaces: dict[str, Workspace | None] = {}
    for config in providers.providers_of_kind("twilio"):
        try:
            token = resolve_secrets(config, env).secrets.get("auth_token", "")
        except InvalidInput as exc:
            log.warning("cannot check Twilio webhooks against %s: %s", config.name, exc)
            continue
        if config.workspace_ref not in workspaces:
            workspaces[config.workspace_ref] = store.find_workspace(config.workspace_ref)
        ws = workspaces[config.workspace_ref]
        if token and ws is not None:
            out.append(TwilioSigner(ws, config.name, token))
    return out
