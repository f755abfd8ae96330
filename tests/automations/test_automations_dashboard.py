"""The dashboard's automations page, in process on SQLite and PostgreSQL: each rule of the
signed-in workspace with its trigger, conditions and action in a few words, escaped; another
workspace's rules never; the empty state."""

from __future__ import annotations

import httpx

from factories import Repos, make_api_key, make_campaign, make_workspace
from inprocess_api import HOST, Api, ok, sign_in
from served import in_process

RULE = {
    "name": "Nudge <b>", "trigger": {"kind": "not_clicked", "campaign": "sale", "within": "1d"},
    "conditions": {"frequency_cap": {"max": 2, "per": "week"}},
    "action": {"kind": "send", "template": "Last day: https://shop.example.com/sale"},
}  # fmt: skip


def _page(api: Api, key: str) -> str:
    async def use(c: httpx.AsyncClient) -> str:
        await sign_in(c, key)
        r = await c.get("/dashboard/automations")
        assert r.status_code == 200, r.text
        return r.text

    return in_process(api.container, HOST, use)


def test_the_page_lists_the_workspaces_rules(api: Api) -> None:
    store = Repos.on(api.container.engine)
    assert "No automations yet" in _page(api, api.key)
    make_campaign(store, api.ws, name="Sale", slug="sale")
    a = ok(api.call("POST", "/v1/automations", json=RULE), 201)
    page = _page(api, api.key)
    assert f'data-automation="{a["id"]}"' in page
    assert (
        "Nudge &lt;b&gt;" in page and "<b>" not in page.replace("<b>", "", 0).split("Nudge")[1][:5]
    )
    assert "not_clicked sale within 1d" in page and "at most 2/week" in page
    assert "send: Last day: https://shop.example.com/sale" in page
    other = make_api_key(store, make_workspace(store))
    assert a["id"] not in _page(api, other)
