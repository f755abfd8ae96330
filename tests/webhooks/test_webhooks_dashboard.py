"""The dashboard's webhooks page (SQLite and PostgreSQL, the whole app in process): each
endpoint with its state — a line saying why when it was disabled (here by a 410) — and its
latest deliveries with their last answer; another workspace's endpoints are never listed."""

from __future__ import annotations

import time

import httpx
from receiver import Receiver

from clicktrail.services import webhooks
from clicktrail.services.clock import now_us
from clicktrail.services.optouts import OptChange
from factories import Repos, make_api_key, make_workspace
from inprocess_api import HOST, Api, sign_in
from served import in_process


def test_the_webhooks_page_shows_a_disabled_endpoint_and_its_deliveries(
    hooks: Api, receiver: Receiver
) -> None:
    api = hooks
    ep = webhooks.create_endpoint(api.container.webhooks, api.ws, receiver.url,
                                  ["contact.opted_out"], now_us(), api.container.outbound.check_url)  # fmt: skip
    store = Repos.on(api.container.engine)
    other = make_workspace(store)
    theirs = webhooks.create_endpoint(api.container.webhooks, other, "https://b.example.com/h",
                                      ["click.created"], now_us(), api.container.outbound.check_url)  # fmt: skip
    receiver.statuses = [410]
    at = now_us()
    api.container.optout_queries.record_opt_changes(
        api.ws.id, [OptChange("+14155550100", True, at, "api")], at
    )
    worker = api.container.webhook_worker
    deadline = time.monotonic() + 600  # PostgreSQL: until no older transaction holds it back
    while not receiver.got and time.monotonic() < deadline:
        worker.tick()
        time.sleep(0.05)
    assert len(receiver.wait_for(1)) == 1
    (d,) = api.container.deliveries.deliveries_page(api.ws.id, ep.id, None, 5, None)

    async def use(c: httpx.AsyncClient) -> str:
        await sign_in(c, make_api_key(store, api.ws, "browser"))
        r = await c.get("/dashboard/webhooks")
        assert r.status_code == 200, r.text
        return r.text

    page = in_process(api.container, HOST, use)
    assert receiver.url in page and ep.public_id in page
    assert "disabled" in page and "the endpoint answered 410 Gone" in page
    assert d.public_id in page and "410" in page
    assert theirs.public_id not in page and "b.example.com" not in page
