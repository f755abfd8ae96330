"""The demo workspace that `make run` seeds into an empty database, clearly labelled."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from clicktrail.domain.errors import Unauthorized
from clicktrail.domain.models import ContactInput, Receipt, Workspace
from clicktrail.services import campaigns, workspaces
from clicktrail.services.keys import KeyAuthStore
from clicktrail.services.ports import SmsProvider
from clicktrail.services.receipts import ReceiptStore
from clicktrail.services.sending import SendingReposWithJobs, send_campaign
from clicktrail.services.workspaces import WorkspaceStore

DEMO_SLUG = "demo"
DEMO_NAMES = ["Ada", "Grace", "Alan", "Edsger", "Barbara", "Ken", "Margaret", "Dennis", "Radia",
              "Linus", "Frances", "Donald", "Hedy", "John", "Katherine", "Tim", "Sophie", "Guido",
              "Anita", "Vint"]  # fmt: skip
DEMO_TEMPLATE = (
    "Hi {first_name|there}! Our autumn sale starts today: https://example.com/sale "
    "Details: https://example.com/faq?src=sms Reply STOP to opt out"
)


class DemoMessages(ReceiptStore, Protocol):
    """The demo's messages: receipts applied, and the ids of those sent."""

    def queued_or_sent_ids(self, campaign_id: int, limit: int) -> list[str]:
        """Return public ids of up to `limit` of the campaign's queued or sent messages."""
        ...


class DemoRepos(SendingReposWithJobs, Protocol):
    """What seeding the demo writes, one repository per area (`bootstrap.Container`)."""

    @property
    def workspaces(self) -> WorkspaceStore:
        """Workspaces and their short domains."""
        ...

    @property
    def messages(self) -> DemoMessages:
        """Messages: the demo's receipts."""
        ...


@dataclass(frozen=True)
class DemoInfo:
    """What the demo seeded."""

    workspace: Workspace
    campaign_slug: str
    created: bool


def seed_demo(
    repos: DemoRepos,
    provider: SmsProvider,
    *,
    host: str,
    port: int,
    clock: Callable[[], int],
    scheme: str = "http",
) -> DemoInfo:
    """Seed the demo workspace when the database has no workspace at all; else find it.

    20 fictional contacts (+1 202 555 01xx, reserved for fiction), one campaign with two
    links sent through the outbox, and delivery receipts for 16 of the messages.
    """
    existing = repos.workspaces.find_workspace(DEMO_SLUG)
    if existing is not None or repos.workspaces.list_workspaces():
        ws = existing or repos.workspaces.list_workspaces()[0]
        return DemoInfo(ws, "autumn-sale-demo", False)
    now = clock()
    ws = workspaces.create_workspace(
        repos.workspaces, "Demo workspace (sample data)", now, slug=DEMO_SLUG, is_demo=True
    )
    workspaces.add_domain(repos.workspaces, ws, f"{host}:{port}", now, scheme=scheme)
    contacts = [
        ContactInput(f"+1202555{100 + i:04d}", f"demo-{i + 1:03d}", name, {"city": "Springfield"})
        for i, name in enumerate(DEMO_NAMES)
    ]
    repos.contacts.upsert_contacts(ws.id, contacts, "demo list", now)
    campaign = campaigns.create_campaign(
        repos,
        ws,
        name="Autumn sale (demo)",
        slug="autumn-sale-demo",
        template=DEMO_TEMPLATE,
        now_us=now,
    )
    send_campaign(repos, ws, campaign, provider, clock=clock)
    sent = repos.messages.queued_or_sent_ids(campaign.id, 16)
    receipts = [Receipt(mid, "delivered", clock()) for mid in sent]
    repos.messages.apply_receipts(
        ws.id, receipts, skip_unknown=False, source="demo", now_us=clock()
    )
    return DemoInfo(ws, campaign.slug, True)


def demo_api_key(
    keys: KeyAuthStore, workspace: Workspace, saved: str | None, *, mint: Callable[[], str]
) -> tuple[str, bool]:
    """Return (an API key of the demo `workspace`, whether it is new): `saved` while it is an
    active key of that workspace, else the key `mint` creates (first start, a new database, a
    revoked or expired key), so each start does not add one more key."""
    if saved:
        try:
            if workspaces.authenticate(keys, f"Bearer {saved}").id == workspace.id:
                return saved, False
        except Unauthorized:
            pass
    return mint(), True
