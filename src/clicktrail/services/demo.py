"""The demo workspace that `make run` seeds into an empty database, clearly labelled."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from clicktrail.domain.errors import Unauthorized
from clicktrail.domain.models import ContactInput, Receipt, Workspace
from clicktrail.services import campaigns, workspaces
from clicktrail.services.ports import SmsProvider, Store
from clicktrail.services.sending import StoreWithJobs, send_campaign

DEMO_SLUG = "demo"
DEMO_NAMES = ["Ada", "Grace", "Alan", "Edsger", "Barbara", "Ken", "Margaret", "Dennis", "Radia",
              "Linus", "Frances", "Donald", "Hedy", "John", "Katherine", "Tim", "Sophie", "Guido",
              "Anita", "Vint"]  # fmt: skip
DEMO_TEMPLATE = (
    "Hi {first_name|there}! Our autumn sale starts today: https://example.com/sale "
    "Details: https://example.com/faq?src=sms Reply STOP to opt out"
)


@dataclass(frozen=True)
class DemoInfo:
    """What the demo seeded."""

    workspace: Workspace
    campaign_slug: str
    created: bool


def seed_demo(
    store: StoreWithJobs,
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
    existing = store.find_workspace(DEMO_SLUG)
    if existing is not None or store.list_workspaces():
        ws = existing or store.list_workspaces()[0]
        return DemoInfo(ws, "autumn-sale-demo", False)
    now = clock()
    ws = workspaces.create_workspace(
        store, "Demo workspace (sample data)", now, slug=DEMO_SLUG, is_demo=True
    )
    workspaces.add_domain(store, ws, f"{host}:{port}", now, scheme=scheme)
    contacts = [
        ContactInput(f"+1202555{100 + i:04d}", f"demo-{i + 1:03d}", name, {"city": "Springfield"})
        for i, name in enumerate(DEMO_NAMES)
    ]
    store.upsert_contacts(ws.id, contacts, "demo list", now)
    campaign = campaigns.create_campaign(
        store,
        ws,
        name="Autumn sale (demo)",
        slug="autumn-sale-demo",
        template=DEMO_TEMPLATE,
        now_us=now,
    )
    send_campaign(store, ws, campaign, provider, clock=clock)
    sent = store.queued_or_sent_ids(campaign.id, 16)
    receipts = [Receipt(mid, "delivered", clock()) for mid in sent]
    store.apply_receipts(ws.id, receipts, skip_unknown=False, source="demo", now_us=clock())
    return DemoInfo(ws, campaign.slug, True)


def demo_api_key(
    store: Store, workspace: Workspace, saved: str | None, *, mint: Callable[[], str]
) -> tuple[str, bool]:
    """Return (an API key of the demo `workspace`, whether it is new): `saved` while it is an
    active key of that workspace, else the key `mint` creates (first start, a new database, a
    revoked or expired key), so each start does not add one more key."""
    if saved:
        try:
            if workspaces.authenticate(store, f"Bearer {saved}").id == workspace.id:
                return saved, False
        except Unauthorized:
            pass
    return mint(), True
