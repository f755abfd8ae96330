"""Webhook delivery to a real HTTP receiver on 127.0.0.1, on SQLite and PostgreSQL: every
event type written in its fact's transaction and delivered signed (verified with the Standard
Webhooks library), the retry schedule on a fake clock, 410 and a run of failures disabling an
endpoint (with a `webhook.disabled` event), replay with the same webhook-id, a claim whose
worker died sent again after its lease, and SSRF refusals logged with nothing sent."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from receiver import Receiver

from clicktrail.domain import events as ev
from clicktrail.outbound import OutboundPolicy, WebhookPoster
from clicktrail.services import deliveries, webhooks
from clicktrail.services.clicks import ClickPipeline
from clicktrail.services.clock import now_us
from clicktrail.services.deliveries import Deliveries, DisablePolicy
from clicktrail.services.optouts import OptChange
from clicktrail.storage import tables as t
from factories import NOW_US, Repos, make_campaign, make_contacts, message_ids, send, tokens_of
from inprocess_api import Api, ok

SEC = 1_000_000
BROWSER = {
    "user-agent": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
    "accept-language": "en-US,en;q=0.9",
    "accept": "text/html,application/xhtml+xml",
}


class Clock:
    def __init__(self, at: int) -> None:
        self.at = at

    def __call__(self) -> int:
        return self.at


def _endpoint(api: Api, url: str, types: list[str], **kw: Any) -> webhooks.Endpoint:
    return webhooks.create_endpoint(
        api.container.webhooks, api.ws, url, types, NOW_US, api.container.outbound.check_url, **kw
    )


def _worker(api: Api, clock: Callable[[], int], **kw: Any) -> Deliveries:
    return Deliveries(api.container.deliveries, WebhookPoster(api.container.outbound),
                      timeout=2.0, clock=clock, **kw)  # fmt: skip


def _opt(api: Api, phone: str, out: bool, at_us: int) -> None:
    api.container.optout_queries.record_opt_changes(
        api.ws.id, [OptChange(phone, out, at_us, "api")], at_us
    )


def _unread(api: Api) -> int:
    """Events the dispatcher has not read yet."""
    e, c = t.events, t.event_cursors
    with api.container.engine.connect() as conn:
        cur = conn.execute(sa.select(c.c.txid, c.c.event_id)).first() or (0, 0)
        q = sa.select(sa.func.count()).where(
            sa.tuple_(e.c.txid, e.c.id) > sa.tuple_(sa.literal(cur[0]), sa.literal(cur[1]))
        )
        return int(conn.execute(q).scalar_one())


def _tick(api: Api, worker: Deliveries) -> None:
    """One pass of `worker` once the whole outbox is readable."""
    # The app's own jobs may have kicked this worker on a thread during the API calls: wait for
    # that run, or its claims would still be recording while the test reads the states.
    worker.close()
    _fan_out(api, worker)
    worker.tick()


def _fan_out(api: Api, worker: Deliveries) -> None:
    """Fan out until the whole outbox is read. On PostgreSQL the dispatcher reads only events
    older than every transaction still writing on the server (the tests of other sessions
    included), which can hold it back for a while."""
    deadline = time.monotonic() + 600
    worker.fan_out()
    while _unread(api) and time.monotonic() < deadline:
        time.sleep(0.05)
        worker.fan_out()
    assert not _unread(api), "the outbox stayed unreadable for 10 min"


def _deliveries(api: Api) -> list[Any]:
    with api.container.engine.connect() as conn:
        q = sa.select(t.webhook_deliveries).order_by(t.webhook_deliveries.c.id)
        return list(conn.execute(q))


def test_every_event_type_arrives_signed(hooks: Api, receiver: Receiver, tmp_path: Path) -> None:
    api = hooks
    created = ok(api.call("POST", "/v1/webhook-endpoints", json={
        "url": receiver.url, "events": list(ev.EVENT_TYPES), "provisional": True}), 201)  # fmt: skip
    secret = created["secret"]
    store = Repos.on(api.container.engine)
    make_contacts(store, api.ws, 3)
    cp = make_campaign(store, api.ws, "Hi: https://shop.example.com/sale")
    send(store, api.ws, cp, tmp_path / "outbox.jsonl")
    m0, m1, _ = message_ids(store, cp)
    token = tokens_of(store, cp)[0][0]
    at = "2026-12-07T10:00:00Z"
    click, receipts, conversion, out, back = api.calls([
        ("GET", f"/c/{token}", {"headers": BROWSER, "key": None}),
        ("POST", "/v1/messages/status", {"json": [
            {"message_id": m0, "status": "delivered", "at": at},
            {"message_id": m1, "status": "failed", "at": at, "error_code": "30003"}]}),
        ("POST", "/v1/conversions", {"json": {"contact": {"external_id": "ext-0"},
         "event": "purchase", "value": "12.50", "currency": "EUR", "txn": "o-1"}}),
        ("POST", "/v1/opt-outs", {"json": {"items": [{"contact": "ext-2", "opted_out": True}]}}),
        ("POST", "/v1/opt-outs", {"json": {"items": [{"contact": "ext-2", "opted_out": False}]}}),
    ])  # fmt: skip
    assert click.status_code == 302 and conversion.status_code == 201, conversion.text
    assert receipts.status_code < 300 and out.status_code < 300 and back.status_code < 300
    click_id = click.headers["location"].rsplit("ct_cid=", 1)[1]
    ClickPipeline(api.container.clicks, api.container.classifier).process_new()
    _tick(api, api.container.webhook_worker)
    got = receiver.wait_for(6)
    assert len(got) == 6, [r.event["type"] for r in got]
    bodies = {r.verify(secret)["type"]: r for r in got}  # every signature verifies
    assert set(bodies) == {
        "click.created", "message.delivered", "message.failed", "conversion.created",
        "contact.opted_out", "contact.opted_in",
    }  # fmt: skip
    ids = {r.headers["webhook-id"] for r in got}
    assert len(ids) == 6 and all(i.startswith("evt_") for i in ids)
    c = bodies["click.created"].event["data"]
    assert c["click_id"] == click_id and c["campaign"] == cp.slug
    assert c["verdict"]["final"] is False and c["verdict"]["verdict"] in ("human", "suspect")
    assert isinstance(c["verdict"]["reasons"], list) and c["verdict"]["score"] is not None
    assert c["link"]["url"] == "https://shop.example.com/sale"
    assert bodies["message.delivered"].event["data"]["message"] == m0
    failed = bodies["message.failed"].event["data"]
    assert (failed["message"], failed["status"]) == (m1, "failed")
    conv = bodies["conversion.created"].event["data"]
    assert (conv["event"], conv["value"], conv["currency"], conv["txn"]) == (
        "purchase",
        "12.5",
        "EUR",
        "o-1",
    )
    assert conv["contact"]["external_id"] == "ext-0"
    assert bodies["contact.opted_out"].event["data"]["contact"]["external_id"] == "ext-2"
    # All delivered once; the log has one 200 each.
    assert [d.state for d in _deliveries(api)] == ["succeeded"] * 6
    # A workspace with no endpoint writes no event (the outbox holds only this workspace's).
    with api.container.engine.connect() as conn:
        wss = set(conn.execute(sa.select(t.events.c.workspace_id).distinct()).scalars())
    assert wss == {api.ws.id}


def test_click_created_waits_for_the_final_verdict_and_humans_only_skips_bots(
    hooks: Api, receiver: Receiver, tmp_path: Path
) -> None:
    api = hooks
    final = _endpoint(api, receiver.url, ["click.created"], humans_only=True)
    store = Repos.on(api.container.engine)
    make_contacts(store, api.ws, 2)
    cp = make_campaign(store, api.ws, "Hi: https://shop.example.com/sale")
    send(store, api.ws, cp, tmp_path / "outbox.jsonl")
    (t0, _, _), (t1, _, _) = tokens_of(store, cp)[:2]
    bot = {"user-agent": "curl/8.5.0"}
    api.calls([("GET", f"/c/{t0}", {"headers": BROWSER, "key": None}),
               ("GET", f"/c/{t1}", {"headers": bot, "key": None})])  # fmt: skip
    pipeline = ClickPipeline(api.container.clicks, api.container.classifier, settle_us=0)
    pipeline.process_new()
    worker = _worker(api, Clock(NOW_US))
    _tick(api, worker)
    assert receiver.got == []  # provisional verdicts only so far: this endpoint waits
    pipeline.finalize()
    _tick(api, worker)
    (r,) = receiver.wait_for(1)
    data = r.verify(final.secret)["data"]
    assert data["verdict"]["final"] is True and data["verdict"]["verdict"] in ("human", "suspect")


def test_retries_follow_the_schedule_with_the_same_webhook_id(
    hooks: Api, receiver: Receiver
) -> None:
    api = hooks
    ep = _endpoint(api, receiver.url, ["contact.opted_out"])
    receiver.statuses = [500, 503]
    clock = Clock(NOW_US)
    worker = _worker(api, clock)
    _opt(api, "+14155550100", True, NOW_US)
    _tick(api, worker)
    (d,) = _deliveries(api)
    assert (d.state, d.attempts, d.last_status) == ("pending", 1, 500)
    assert NOW_US + 5 * SEC <= d.next_attempt_us <= NOW_US + 6 * SEC  # 5 s, jittered up to 20 %
    clock.at = NOW_US + 4 * SEC
    _tick(api, worker)
    assert len(receiver.got) == 1  # not due yet
    clock.at = d.next_attempt_us
    _tick(api, worker)
    (d,) = _deliveries(api)
    assert (d.attempts, d.last_status) == (2, 503)
    assert d.next_attempt_us - clock.at >= 300 * SEC
    clock.at = d.next_attempt_us
    _tick(api, worker)
    got = receiver.wait_for(3)
    assert len({r.headers["webhook-id"] for r in got}) == 1
    for r in got:
        r.verify(ep.secret)
    (d,) = _deliveries(api)
    assert (d.state, d.attempts, d.last_status) == ("succeeded", 3, 200)
    _delivery, attempts = deliveries.get_delivery(api.container.deliveries, api.ws, d.public_id)
    assert [a.status for a in attempts] == [500, 503, 200]
    stored = api.container.webhooks.endpoint(api.ws.id, ep.public_id)
    assert stored is not None and stored.failures == 0 and stored.failing_since_us is None


def test_the_schedule_spans_72_hours_then_the_delivery_fails() -> None:
    delays = [ev.retry_delay_us(i, lambda: 0.0) for i in range(ev.MAX_ATTEMPTS)]
    assert delays[0] == 0 and ev.retry_delay_us(ev.MAX_ATTEMPTS) is None
    assert sum(d or 0 for d in delays[1:]) >= 72 * 3600 * SEC
    assert ev.retry_delay_us(1, lambda: 0.999) < 6 * SEC


def test_410_disables_the_endpoint_and_tells_the_others(hooks: Api, receiver: Receiver) -> None:
    api = hooks
    gone = _endpoint(api, receiver.url + "?gone", ["contact.opted_out"])
    watcher = _endpoint(api, receiver.url + "?watch", ["webhook.disabled"])
    receiver.statuses = [410]
    worker = _worker(api, Clock(NOW_US))
    _opt(api, "+14155550100", True, NOW_US)
    _tick(api, worker)
    _tick(api, worker)
    got = receiver.wait_for(2)
    assert [r.path for r in got] == ["/hook?gone", "/hook?watch"]
    told = got[1].verify(watcher.secret)
    assert told["type"] == "webhook.disabled" and told["data"]["endpoint"] == gone.public_id
    stored = api.container.webhooks.endpoint(api.ws.id, gone.public_id)
    assert stored is not None and not stored.enabled and "410" in (stored.disabled_reason or "")
    # Disabled: a new event is not sent to it.
    _opt(api, "+14155550101", True, NOW_US + 1)
    _tick(api, worker)
    assert len(receiver.got) == 2


def test_a_run_of_failures_disables_the_endpoint(hooks: Api, receiver: Receiver) -> None:
    api = hooks
    ep = _endpoint(api, receiver.url, ["contact.opted_out"])
    receiver.statuses = [500] * 10
    clock = Clock(NOW_US)
    worker = _worker(api, clock, policy=DisablePolicy(failures=3, after_us=10 * SEC))
    for i in range(3):
        _opt(api, f"+1415555010{i}", True, NOW_US + i)
    _tick(api, worker)  # three failures in a row, but not yet over 10 s
    stored = api.container.webhooks.endpoint(api.ws.id, ep.public_id)
    assert stored is not None and stored.enabled and stored.failures == 3
    clock.at = NOW_US + 11 * SEC
    _tick(api, worker)  # the three retries fail too: six in a row over 11 s
    stored = api.container.webhooks.endpoint(api.ws.id, ep.public_id)
    assert stored is not None and not stored.enabled
    assert "failed attempts in a row" in (stored.disabled_reason or "")
    with api.container.engine.connect() as conn:
        types = list(conn.execute(sa.select(t.events.c.type)).scalars())
    assert types.count("webhook.disabled") == 1
    # Enabled again: the run starts over and the pending deliveries are sent.
    receiver.statuses = []
    webhooks.update_endpoint(api.container.webhooks, api.ws, ep.public_id,
                             webhooks.EndpointChange(enabled=True), clock.at,
                             api.container.outbound.check_url)  # fmt: skip
    clock.at += 3600 * SEC
    _tick(api, worker)
    assert {d.state for d in _deliveries(api)} == {"succeeded"}


def test_replay_sends_again_with_the_same_webhook_id(hooks: Api, receiver: Receiver) -> None:
    api = hooks
    ep = _endpoint(api, receiver.url, ["contact.opted_out", "contact.opted_in"])
    start = now_us()  # replays are due at the wall clock's now
    clock = Clock(start)
    worker = _worker(api, clock)
    _opt(api, "+14155550100", True, NOW_US)
    _tick(api, worker)
    (d,) = _deliveries(api)
    again = ok(api.call("POST", f"/v1/webhook-deliveries/{d.public_id}/replay"))
    assert again["state"] == "pending" and again["attempts"] == 0
    clock.at = start + 10 * SEC
    _tick(api, worker)
    # (The app's own jobs thread may have sent it already while answering the replay.)
    first, second = receiver.wait_for(2)
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    assert first.body == second.body
    second.verify(ep.secret)
    # Replay since a time: events that happened while it was disabled reach it too.
    webhooks.update_endpoint(api.container.webhooks, api.ws, ep.public_id,
                             webhooks.EndpointChange(enabled=False), clock.at,
                             api.container.outbound.check_url)  # fmt: skip
    _opt(api, "+14155550100", False, NOW_US + 20 * SEC)
    clock.at = start + 30 * SEC
    _tick(api, worker)
    assert len(receiver.got) == 2
    webhooks.update_endpoint(api.container.webhooks, api.ws, ep.public_id,
                             webhooks.EndpointChange(enabled=True), clock.at,
                             api.container.outbound.check_url)  # fmt: skip
    since = ok(api.call("POST", f"/v1/webhook-endpoints/{ep.public_id}/replay",
                        json={"since": "2020-01-01T00:00:00Z"}))  # fmt: skip
    assert since["deliveries"] == 2
    _tick(api, worker)
    types = [r.event["type"] for r in receiver.wait_for(4)]
    assert sorted(types[2:]) == ["contact.opted_in", "contact.opted_out"]


def test_a_claim_whose_worker_died_is_sent_after_its_lease(hooks: Api, receiver: Receiver) -> None:
    api = hooks
    ep = _endpoint(api, receiver.url, ["contact.opted_out"])
    clock = Clock(NOW_US)
    worker = _worker(api, clock)
    _opt(api, "+14155550100", True, NOW_US)
    _fan_out(api, worker)
    # A worker claims the delivery and dies before sending or recording anything.
    (claimed,) = api.container.deliveries.claim(10, NOW_US, NOW_US + 40 * SEC)
    _tick(api, worker)
    assert receiver.got == []  # leased to the dead worker
    clock.at = NOW_US + 41 * SEC
    _tick(api, worker)
    (r,) = receiver.wait_for(1)
    assert r.headers["webhook-id"] == claimed.event_id
    r.verify(ep.secret)
    (d,) = _deliveries(api)
    assert (d.state, d.attempts) == ("succeeded", 2)


@pytest.mark.parametrize("where", ["loopback-name", "plain-http"])
def test_ssrf_refused_at_connection_time(hooks: Api, receiver: Receiver, where: str) -> None:
    api = hooks
    if where == "loopback-name":
        # A public-looking name that resolves to loopback, without the operator's allowance.
        policy = OutboundPolicy(allow_http=True, resolver=lambda _h, _p: ["127.0.0.1"])
        url = f"http://hooks.example.com:{receiver.port}/hook"
    else:
        policy = replace(api.container.outbound, allow_http=False)
        url = receiver.url
    api.container.__dict__["outbound"] = replace(api.container.outbound, allow_http=True)
    _endpoint(api, url, ["contact.opted_out"])
    worker = Deliveries(api.container.deliveries, WebhookPoster(policy), timeout=2.0,
                        clock=Clock(NOW_US))  # fmt: skip
    _opt(api, "+14155550100", True, NOW_US)
    _tick(api, worker)
    assert receiver.got == []
    (d,) = _deliveries(api)
    assert d.state == "pending" and d.last_status is None
    assert "refused" in (d.last_error or ""), d.last_error
