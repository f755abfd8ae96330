"""Idempotency under concurrency: the same postback sent 100 times at once to a real server
(uvicorn on 127.0.0.1, its thread pool running the requests side by side) counts once, on
SQLite and PostgreSQL; so does the same batch sent by several clients at once."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path
from urllib.parse import urlencode

import httpx
from conversion_world import make_world

from inprocess_api import Api, ok
from served import ThreadServer


def test_the_same_postback_100_times_at_once_counts_once(api: Api, tmp_path: Path) -> None:
    w = make_world(api, tmp_path)
    (cid,) = w.clicks(1)
    made = ok(api.call("POST", "/v1/postback-secrets", json={"name": "tune"}), 201)
    query = urlencode({"cid": cid, "payout": "7.25", "currency": "USD", "event": "sale",
                       "txn": "order-77", "secret": made["secret"]})  # fmt: skip
    batch = {
        "conversions": [{"click_id": cid, "event": "lead", "txn": f"l-{i}"} for i in range(20)]
    }

    async def hammer(base: str) -> tuple[list[httpx.Response], list[httpx.Response]]:
        limits = httpx.Limits(max_connections=100)
        async with httpx.AsyncClient(base_url=base, limits=limits, timeout=60) as c:
            postbacks = await asyncio.gather(*(c.get(f"/postback?{query}") for _ in range(100)))
            auth = {"Authorization": f"Bearer {api.key}"}
            batches = await asyncio.gather(
                *(c.post("/v1/conversions", json=batch, headers=auth) for _ in range(10))
            )
        return list(postbacks), list(batches)

    with ThreadServer(api.container) as server:
        postbacks, batches = asyncio.run(hammer(server.url))
    assert all(r.status_code == 200 for r in postbacks), {r.status_code for r in postbacks}
    outcomes = Counter(r.json()["outcome"] for r in postbacks)
    assert outcomes == {"accepted": 1, "duplicate": 99}
    assert len({r.json()["id"] for r in postbacks}) == 1
    per_item = Counter(x["outcome"] for r in batches for x in ok(r)["results"])
    assert per_item == {"accepted": 20, "duplicate": 180}
    stored = ok(api.call("GET", "/v1/conversions", params={"limit": 500}))["items"]
    assert Counter(x["event"] for x in stored) == {"sale": 1, "lead": 20}
