"""A workspace whose campaign was sent, and real clicks on its links through the redirect: the
click ids (``ct_cid``) conversions name, as a landing page would get them."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit

import httpx

from clicktrail.domain.models import Campaign, Workspace
from clicktrail.storage.conversions import ConversionQueries
from factories import (
    Repos,
    make_api_key,
    make_campaign,
    make_contacts,
    make_domain,
    make_workspace,
    send,
    tokens_of,
)
from inprocess_api import HOST, Api
from served import in_process

T = TypeVar("T")
BROWSER = {
    "User-Agent": "Mozilla/5.0 (iPhone; CPU iPhone OS 18_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/18.5 Mobile/15E148 Safari/604.1",
    "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    "Accept-Language": "en-US,en;q=0.9",
}


@dataclass
class World:
    api: Api
    campaign: Campaign
    tokens: list[str]  # one per contact (the campaign's first link)
    host: str = HOST

    def run(self, use: Callable[[httpx.AsyncClient], Awaitable[T]]) -> T:
        """Run `use(client)` against one app run (lifespan around it)."""
        return in_process(self.api.container, HOST, use)

    def clicks(self, n: int = 1) -> list[str]:
        """Click the first `n` contacts' links in one app run; return the click ids, stored
        in `clicks` by the final pass at shutdown."""

        async def use(c: httpx.AsyncClient) -> list[str]:
            return [await click(c, t, self.host) for t in self.tokens[:n]]

        return self.run(use)


async def click(c: httpx.AsyncClient, token: str, host: str = HOST) -> str:
    """Click a short link as a phone's browser; return the click id the redirect added."""
    r = await c.get(f"/c/{token}", headers={**BROWSER, "Host": host})
    assert r.status_code == 302, r.text
    (cid,) = parse_qs(urlsplit(r.headers["location"]).query)["ct_cid"]
    return cid


async def post(c: httpx.AsyncClient, key: str, body: Any) -> httpx.Response:
    """POST /v1/conversions with `key`."""
    return await c.post("/v1/conversions", json=body, headers={"Authorization": f"Bearer {key}"})


def make_world(api: Api, tmp_path: Path, contacts: int = 3) -> World:
    """Send a campaign to `contacts` contacts of the api's workspace."""
    store = Repos.on(api.container.engine)
    make_contacts(store, api.ws, contacts, list_name="all")
    cp = make_campaign(
        store, api.ws, "Hi {first_name}: https://shop.example.com/sale?x=1", list_name="all"
    )
    send(store, api.ws, cp, tmp_path / "outbox.jsonl")
    by_phone = {phone: token for token, phone, _dest in tokens_of(store, cp)}
    return World(api, cp, [by_phone[p] for p in sorted(by_phone)])


def other_workspace(api: Api, tmp_path: Path) -> tuple[Workspace, str, World]:
    """A second workspace with its own key, domain and sent campaign."""
    store = Repos.on(api.container.engine)
    ws = make_workspace(store)
    make_domain(store, ws, "other.example.com")
    key = make_api_key(store, ws)
    make_contacts(store, ws, 1, start=50, list_name="all")
    cp = make_campaign(store, ws, "Yo https://other-shop.example.com/", list_name="all")
    send(store, ws, cp, tmp_path / "outbox-b.jsonl")
    tokens = [t for t, _p, _d in tokens_of(store, cp)]
    return ws, key, World(Api(api.container, ws, key), cp, tokens, "other.example.com")


async def settle(api: Api, cid: str) -> None:
    """Wait until the click log wrote click `cid` to the inbox (every 50 ms; longer on a busy
    machine), at most 10 s. The jobs thread may move it on to `clicks` meanwhile: either
    place is where a conversion looks."""
    queries = ConversionQueries(api.container.engine)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        found = queries.clicks_in_inbox(api.ws.id, [cid]) or queries.clicks_by_id(api.ws.id, [cid])
        if found:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"click {cid} was not written within 10 s")
