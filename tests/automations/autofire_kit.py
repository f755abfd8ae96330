"""Helpers of the automation run tests: a workspace with contacts and a sent campaign, clicks
through the app, a worker on a clock the test moves, and what it sent (the outbox file)."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from clicktrail.domain.automations import Rule
from clicktrail.domain.models import Campaign
from clicktrail.services import automations
from clicktrail.services.automation_fire import AutomationWorker
from clicktrail.services.automation_runs import CONSUMER
from clicktrail.services.automations import Automation
from clicktrail.services.clicks import ClickPipeline
from clicktrail.services.clock import now_us
from clicktrail.storage import tables as t
from factories import Repos, make_campaign, make_contacts, send, tokens_of
from inprocess_api import Api

BROWSER = {
    "user-agent": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
    "accept-language": "en-US,en;q=0.9",
}
BOT = {"user-agent": "curl/8.5.0"}
S = 1_000_000
MIN = 60 * S
HOUR = 3600 * S


@dataclass
class Clock:
    """A clock the test moves; `None`: real time."""

    at: int | None = None

    def __call__(self) -> int:
        return self.at if self.at is not None else now_us()


@dataclass
class World:
    api: Api
    campaign: Campaign
    outbox: Path
    clock: Clock = field(default_factory=Clock)
    worker: AutomationWorker | None = None

    @property
    def store(self) -> Repos:
        return Repos.on(self.api.container.engine)

    def rule(self, name: str, rule: Rule, *, enabled: bool = True) -> Automation:
        c = self.api.container
        return automations.create_automation(c, self.api.ws, name, rule, now_us(), enabled=enabled)

    def tokens(self) -> dict[str, str]:
        """phone → the token of its first link."""
        out: dict[str, str] = {}
        for tok, phone, _ in tokens_of(self.store, self.campaign):
            out.setdefault(phone, tok)
        return out

    def click(self, phone: str, headers: dict[str, str] | None = None) -> str:
        """Click `phone`'s link, give it its provisional verdict; return the click id."""
        tok = self.tokens()[phone]
        (r,) = self.api.calls([("GET", f"/c/{tok}", {"headers": headers or BROWSER, "key": None})])
        assert r.status_code == 302, r.text
        ClickPipeline(self.api.container.clicks, self.api.container.classifier).process_new()
        return r.headers["location"].rsplit("ct_cid=", 1)[1]

    def make_worker(self) -> AutomationWorker:
        c = self.api.container
        return AutomationWorker(
            c, c.automations.runs, c.automations.runs.fire, c.sending.provider_for, self.clock
        )

    def tick(self) -> int:
        """Schedule every event (waiting for PostgreSQL's horizon), then fire what is due."""
        if self.worker is None:
            self.worker = self.make_worker()
        drain(self.api, self.worker)
        return self.worker.firer.tick()

    def runs(self) -> list[Any]:
        with self.api.container.engine.connect() as conn:
            q = sa.select(t.automation_runs).order_by(t.automation_runs.c.id)
            return list(conn.execute(q))

    def follow_ups(self) -> list[dict[str, Any]]:
        """Lines of the outbox written for automation messages."""
        with self.api.container.engine.connect() as conn:
            ids = set(
                conn.execute(
                    sa.select(t.messages.c.public_id).where(
                        t.messages.c.client_ref.like("automation:%")
                    )
                ).scalars()
            )
        lines = [json.loads(x) for x in self.outbox.read_text().splitlines() if x]
        return [x for x in lines if x["message_id"] in ids]


def unread(api: Api) -> int:
    """Events the automations consumer has not read yet."""
    e, c = t.events, t.event_cursors
    with api.container.engine.connect() as conn:
        cur = conn.execute(
            sa.select(c.c.txid, c.c.event_id).where(c.c.consumer == CONSUMER)
        ).first() or (0, 0)
        q = sa.select(sa.func.count()).where(
            sa.tuple_(e.c.txid, e.c.id) > sa.tuple_(sa.literal(cur[0]), sa.literal(cur[1]))
        )
        return int(conn.execute(q).scalar_one())


def drain(api: Api, worker: AutomationWorker) -> None:
    """Schedule until the whole outbox is read (on PostgreSQL the consumer reads only events
    older than every transaction still writing on the server, other sessions' included)."""
    deadline = time.monotonic() + 600
    worker.scheduler.tick()
    while unread(api) and time.monotonic() < deadline:
        time.sleep(0.05)
        worker.scheduler.tick()
    assert not unread(api), "the outbox stayed unreadable for 10 min"


def world(api: Api, tmp_path: Path, n: int = 3, template: str | None = None) -> World:
    """`n` contacts and the campaign `sale` sent to them through the outbox."""
    store = Repos.on(api.container.engine)
    make_contacts(store, api.ws, n)
    cp = make_campaign(
        store, api.ws, template or "Hi: https://shop.example.com/sale", name="Sale", slug="sale"
    )
    outbox = tmp_path / "outbox.jsonl"
    send(store, api.ws, cp, outbox)
    return World(api, cp, outbox)
