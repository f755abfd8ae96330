"""Automation runs end to end in process, on SQLite and PostgreSQL: scheduled from the event
outbox, cancelled when their condition stops holding, fired once when due (a follow-up message
in the outbox provider, a webhook delivery, a segment's membership)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from autofire_kit import BOT, HOUR, MIN, S, world

from clicktrail.domain import events as ev
from clicktrail.domain.automations import (
    Action,
    Cap,
    Conditions,
    Trigger,
    check_rule,
)
from clicktrail.domain.sending import QuietHours
from clicktrail.services.bots import reclassify
from clicktrail.services.clock import now_us
from clicktrail.services.optouts import OptChange
from clicktrail.storage import tables as t
from factories import phone
from inprocess_api import Api

SEND = Action("send", template="Still thinking, {first_name|there}? https://shop.example.com/cart")


def _rule(kind: str = "clicked", delay_us: int = 0, within_us: int | None = None,
          conditions: Conditions | None = None, action: Action = SEND):  # type: ignore[no-untyped-def]  # fmt: skip
    return check_rule(
        Trigger(kind, "sale", None, within_us), delay_us, conditions or Conditions(), action
    )


def _fired_events(api: Api) -> list[str]:
    with api.container.engine.connect() as conn:
        q = sa.select(t.events.c.payload).where(t.events.c.type == ev.AUTOMATION_FIRED)
        return list(conn.execute(q).scalars())


def test_a_click_fires_a_follow_up_after_its_delay(api: Api, tmp_path: Path) -> None:
    w = world(api, tmp_path)
    w.rule("Follow up", _rule(delay_us=HOUR))
    w.click(phone(0))
    w.clock.at = now_us()
    w.tick()
    (run,) = w.runs()
    assert run.state == "pending" and run.phone == phone(0) and run.trigger_key.startswith("click/")
    assert w.follow_ups() == []  # not due yet
    w.clock.at = run.due_us
    assert w.tick() == 1
    (run,) = w.runs()
    assert run.state == "fired" and run.result.startswith("msg_")
    (line,) = w.follow_ups()
    assert line["to"] == phone(0) and line["body"].startswith("Still thinking, Name0? https://")
    assert "shop.example.com" not in line["body"]  # its own tracked link
    with api.container.engine.connect() as conn:
        m = conn.execute(sa.select(t.messages).where(t.messages.c.public_id == run.result)).one()
        tok = conn.execute(sa.select(t.tokens).where(t.tokens.c.message_id == m.id)).one()
        link = conn.execute(sa.select(t.links).where(t.links.c.id == tok.link_id)).one()
    assert m.status == "sent" and link.url == "https://shop.example.com/cart"
    assert tok.token in line["body"]
    (event,) = _fired_events(api)
    assert run.public_id in event and m.public_id in event
    # Again: nothing more.
    w.clock.at += HOUR
    assert w.tick() == 0 and len(w.follow_ups()) == 1


def test_a_bot_click_never_starts_a_run(api: Api, tmp_path: Path) -> None:
    w = world(api, tmp_path)
    w.rule("Follow up", _rule())
    w.click(phone(0), BOT)
    w.tick()
    assert w.runs() == [] and w.follow_ups() == []


def test_a_click_reclassified_as_a_bot_cancels_its_pending_run(api: Api, tmp_path: Path) -> None:
    w = world(api, tmp_path)
    w.rule("Follow up", _rule(delay_us=HOUR))
    w.click(phone(0))
    w.tick()
    assert [r.state for r in w.runs()] == ["pending"]

    class Scanner:
        def ip_kind(self, ip: str | None, campaign_id: int | None = None) -> str | None:
            return None

        def classify(self, request: object) -> object:
            from clicktrail.domain.bots.model import Verdict

            return Verdict("scanner", 100, ("UA_SCANNER_TEST",), "t")

    reclassify(api.container.clicks, Scanner(), now_us(), settle_us=0)  # type: ignore[arg-type]
    w.clock.at = now_us() + 2 * HOUR
    w.tick()
    (run,) = w.runs()
    assert run.state == "cancelled" and "bot" in run.reason
    assert w.follow_ups() == []


def test_not_clicked_fires_only_for_contacts_who_did_not_click(api: Api, tmp_path: Path) -> None:
    w = world(api, tmp_path, n=2)
    w.rule("Nudge", _rule("not_clicked", within_us=MIN))
    m0, m1 = sorted(w.store.messages.queued_or_sent_ids(w.campaign.id, 10))
    # Delivered 10 s ago: a tap within 2 s of delivery would be a link preview's.
    at = (datetime.now(UTC) - timedelta(seconds=10)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    (r,) = api.calls([("POST", "/v1/messages/status", {"json": [
        {"message_id": m0, "status": "delivered", "at": at},
        {"message_id": m1, "status": "delivered", "at": at}]})])  # fmt: skip
    assert r.status_code < 300, r.text
    w.tick()
    assert [r.state for r in w.runs()] == ["pending", "pending"]
    clicker = w.click(phone(0))
    assert clicker
    w.clock.at = now_us() + 2 * MIN
    w.tick()
    states = {r.phone: (r.state, r.reason) for r in w.runs()}
    assert states[phone(0)] == ("cancelled", "the contact clicked")
    assert states[phone(1)] == ("fired", None)
    assert [x["to"] for x in w.follow_ups()] == [phone(1)]


def test_clicked_no_conversion_is_cancelled_by_a_conversion(api: Api, tmp_path: Path) -> None:
    w = world(api, tmp_path, n=2)
    w.rule("No order", _rule("clicked_no_conversion", within_us=MIN))
    w.click(phone(0))
    w.click(phone(1))
    (r,) = api.calls([("POST", "/v1/conversions", {"json": {
        "contact": {"external_id": "ext-0"}, "event": "purchase", "value": "12.50",
        "currency": "EUR", "txn": "o-1"}})])  # fmt: skip
    assert r.status_code == 201, r.text
    w.clock.at = now_us() + 2 * MIN
    w.tick()
    states = {r.phone: (r.state, r.reason) for r in w.runs()}
    assert states[phone(0)] == ("cancelled", "the contact converted")
    assert states[phone(1)] == ("fired", None)
    assert [x["to"] for x in w.follow_ups()] == [phone(1)]


def test_an_opted_out_contact_never_gets_a_message(api: Api, tmp_path: Path) -> None:
    w = world(api, tmp_path, n=2)
    w.rule("Follow up", _rule(delay_us=HOUR))
    w.click(phone(0))
    w.click(phone(1))
    w.tick()
    at = now_us()
    api.container.optout_queries.record_opt_changes(
        api.ws.id, [OptChange(phone(0), True, at, "api")], at
    )
    w.clock.at = at + 2 * HOUR
    w.tick()
    states = {r.phone: (r.state, r.reason) for r in w.runs()}
    assert states[phone(0)] == ("cancelled", "the contact opted out")
    assert states[phone(1)][0] == "fired"
    assert [x["to"] for x in w.follow_ups()] == [phone(1)]


def test_quiet_hours_wait_until_they_end(api: Api, tmp_path: Path) -> None:
    w = world(api, tmp_path)
    # The contact's number is Californian: quiet from an hour ago to an hour from now there.
    local = datetime.now(ZoneInfo("America/Los_Angeles"))
    start, end = local - timedelta(hours=1), local + timedelta(hours=1)
    quiet = QuietHours.parse(f"{start:%H:%M}-{end:%H:%M}")
    w.rule("Polite", _rule(conditions=Conditions(quiet_hours=quiet)))
    w.click(phone(0))
    w.clock.at = now_us()
    w.tick()
    (run,) = w.runs()
    assert run.state == "pending" and run.reason == "quiet hours"
    assert w.clock.at + 50 * MIN < run.due_us <= w.clock.at + 61 * MIN
    assert w.follow_ups() == []
    w.clock.at = run.due_us
    w.tick()
    assert [r.state for r in w.runs()] == ["fired"] and len(w.follow_ups()) == 1


def test_the_frequency_cap_skips_a_second_message(api: Api, tmp_path: Path) -> None:
    w = world(api, tmp_path)
    w.rule("Capped", _rule(conditions=Conditions(cap=Cap(1, "day"))))
    w.click(phone(0))
    w.tick()
    w.click(phone(0))  # a second click: a second run
    w.tick()
    states = [(r.state, r.reason) for r in w.runs()]
    assert states == [("fired", None), ("skipped", "frequency cap: 1 per day reached")]
    assert len(w.follow_ups()) == 1


def test_webhook_and_segment_actions(api: Api, tmp_path: Path) -> None:
    from clicktrail.services import webhooks

    w = world(api, tmp_path)
    ep = webhooks.create_endpoint(
        api.container.webhooks, api.ws, "https://crm.example.com/hook", ["contact.opted_out"],
        now_us(), lambda url, _field: url,
    )  # fmt: skip
    (r,) = api.calls([("POST", "/v1/segments", {"json": {"name": "Hot", "kind": "static"}})])
    assert r.status_code == 201, r.text
    w.rule("CRM", _rule(action=Action("webhook", endpoint=ep.public_id)))
    w.rule("Hot", _rule(action=Action("add_to_segment", segment="hot")))
    w.click(phone(0))
    w.tick()
    assert sorted(r.state for r in w.runs()) == ["fired", "fired"]
    with api.container.engine.connect() as conn:
        d = conn.execute(sa.select(t.webhook_deliveries)).one()
        etype = conn.execute(sa.select(t.events.c.type).where(t.events.c.id == d.event_id)).scalar()
        members = conn.execute(sa.select(t.segment_members.c.contact_id)).scalars().all()
    assert etype == ev.AUTOMATION_FIRED and d.state == "pending"
    assert len(members) == 1
    assert w.follow_ups() == []


def test_a_disabled_rule_starts_nothing_and_its_pending_runs_are_cancelled(
    api: Api, tmp_path: Path
) -> None:
    from clicktrail.services.automations import AutomationChange, update_automation

    w = world(api, tmp_path)
    a = w.rule("Follow up", _rule(delay_us=HOUR))
    w.click(phone(0))
    w.tick()
    update_automation(api.container, api.ws, a.public_id, AutomationChange(enabled=False), now_us())
    w.clock.at = now_us() + 2 * HOUR
    w.tick()
    (run,) = w.runs()
    assert (run.state, run.reason) == ("cancelled", "the automation is disabled")
    assert S and w.follow_ups() == []
