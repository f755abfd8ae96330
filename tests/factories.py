"""Factories for tests: build workspaces, domains, contacts and campaigns through the services.

Plain functions, no fixture files: each takes the repositories (`Repos`, the `store` fixture)
first and keyword overrides after, so a test states only what matters to it.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from clicktrail.domain.models import Campaign, Contact, ContactInput, Domain, Workspace
from clicktrail.services import campaigns, keys, workspaces
from clicktrail.services.ports import SmsProvider
from clicktrail.services.sending import SendSummary, send_campaign
from clicktrail.sms.outbox import OutboxProvider
from clicktrail.storage.campaigns import CampaignQueries
from clicktrail.storage.clicks import ClickQueries
from clicktrail.storage.contacts import ContactQueries
from clicktrail.storage.holdouts import HoldoutQueries
from clicktrail.storage.keys import KeyQueries
from clicktrail.storage.messages import MessageQueries
from clicktrail.storage.networks import NetworkListQueries
from clicktrail.storage.reports import ReportQueries
from clicktrail.storage.sending import SqlSendJobs
from clicktrail.storage.workspaces import WorkspaceQueries

# For a `clicktrail` started as a subprocess: this checkout's code (a worktree's `src` on
# PYTHONPATH), not the one the venv's script was installed from.
PYTHONPATH = {"PYTHONPATH": os.environ["PYTHONPATH"]} if os.environ.get("PYTHONPATH") else {}
NOW_US = 1_780_000_000_000_000  # a fixed "now" (2026-05-28) so stored times are predictable
_seq = itertools.count(1)


@dataclass(frozen=True)
class Repos:
    """The area repositories on one engine, named as `bootstrap.Container` names them: what
    the tests' `store` fixture gives and the factories take."""

    engine: sa.Engine
    workspaces: WorkspaceQueries
    contacts: ContactQueries
    campaigns: CampaignQueries
    messages: MessageQueries
    clicks: ClickQueries
    keys: KeyQueries
    network_lists: NetworkListQueries
    reports: ReportQueries
    send_jobs: SqlSendJobs

    @classmethod
    def on(cls, engine: sa.Engine) -> Repos:
        """Return every area's repository on `engine`."""
        return cls(
            engine, WorkspaceQueries(engine), ContactQueries(engine), CampaignQueries(engine),
            MessageQueries(engine), ClickQueries(engine), KeyQueries(engine),
            NetworkListQueries(engine), ReportQueries(engine), SqlSendJobs(engine),
        )  # fmt: skip


def fixed_clock(start: int = NOW_US) -> Any:
    """Return a clock that ticks one second per call from `start`."""
    ticks = itertools.count()
    return lambda: start + next(ticks) * 1_000_000


def make_workspace(store: Repos, **overrides: Any) -> Workspace:
    """Create a workspace (unique name unless given)."""
    n = next(_seq)
    kwargs: dict[str, Any] = {"name": f"Workspace {n}", "now_us": NOW_US}
    kwargs.update(overrides)
    return workspaces.create_workspace(store.workspaces, **kwargs)


def make_domain(
    store: Repos, ws: Workspace, host: str = "sms.example.com", **overrides: Any
) -> Domain:
    """Register a short domain for `ws`."""
    return workspaces.add_domain(store.workspaces, ws, host, NOW_US, **overrides)


def make_api_key(store: Repos, ws: Workspace, name: str = "test") -> str:
    """Create an API key for `ws` and return it."""
    return keys.create_key(store.keys, ws, name, NOW_US).secret


def phone(i: int) -> str:
    """Return a valid, distinct US number (E.164) for index `i` (0 ≤ i < 10000)."""
    return f"+1415555{i:04d}"


def make_contacts(
    store: Repos,
    ws: Workspace,
    n: int,
    *,
    start: int = 0,
    list_name: str | None = None,
    attributes: dict[str, str] | None = None,
) -> list[Contact]:
    """Store `n` contacts (phones from `phone(start)`, external ids ``ext-<i>``); return them."""
    inputs = [
        ContactInput(
            phone=phone(i),
            external_id=f"ext-{i}",
            first_name=f"Name{i}",
            attributes=dict(attributes or {}),
        )
        for i in range(start, start + n)
    ]
    store.contacts.upsert_contacts(ws.id, inputs, list_name, NOW_US)
    found = [store.contacts.find_contact(ws.id, x.phone) for x in inputs]
    assert all(c is not None for c in found)
    return [c for c in found if c is not None]


def make_campaign(
    store: Repos,
    ws: Workspace,
    template: str = "Hi {first_name|there}, sale: https://shop.example.com/sale",
    **overrides: Any,
) -> Campaign:
    """Create a draft campaign in `ws` (a unique name unless given)."""
    kwargs: dict[str, Any] = {"name": f"Campaign {next(_seq)}", "now_us": NOW_US}
    kwargs.update(overrides)
    return campaigns.create_campaign(store, ws, template=template, **kwargs)


def send(
    store: Repos,
    ws: Workspace,
    campaign: Campaign,
    outbox_path: Path,
    *,
    provider: SmsProvider | None = None,
    batch_size: int = 1000,
) -> SendSummary:
    """Send `campaign` through the outbox at `outbox_path` (or `provider`)."""
    return send_campaign(
        store,
        ws,
        campaign,
        provider or OutboxProvider(outbox_path),
        clock=fixed_clock(),
        batch_size=batch_size,
        holdouts=HoldoutQueries(store.engine),
    )


def message_ids(store: Repos, campaign: Campaign) -> list[str]:
    """Return the public ids of the campaign's messages, oldest first."""
    return store.messages.queued_or_sent_ids(campaign.id, 100_000)


def tokens_of(store: Repos, campaign: Campaign) -> Sequence[tuple[str, str, str]]:
    """Return (token, phone, destination) of every link of the campaign."""
    return store.messages.sample_links(campaign.id, 100_000)
