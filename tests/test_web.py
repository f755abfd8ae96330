"""HTTP in process (httpx ASGI transport): the redirect, click recording and the JSON API."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from clicktrail.bootstrap import Container
from clicktrail.config import load_settings
from clicktrail.domain.models import Campaign, Workspace
from clicktrail.domain.tokens import new_token
from clicktrail.storage import tables
from factories import (
    Repos,
    make_api_key,
    make_campaign,
    make_contacts,
    make_domain,
    make_workspace,
    message_ids,
    send,
    tokens_of,
)

HOST = "sms.example.com"
TEMPLATE = (
    "Hi {first_name}: https://shop.example.com/sale?src=sms "
    "yours: https://shop.example.com/u/{external_id} "
    "bücher: https://bücher.example.com/straße?q=süß"
)
UA = "Mozilla/5.0 (test)"


@dataclass
class World:
    container: Container
    ws: Workspace
    campaign: Campaign
    links: list[tuple[str, str, str]]  # (token, phone, destination) by message, then link
    key: str

    def token(self, contact: int, link: int) -> str:
        return self.links[3 * contact + link][0]

    def clicks(self) -> list[Any]:
        with self.container.engine.connect() as conn:
            return list(conn.execute(sa.select(tables.clicks).order_by(tables.clicks.c.id)))


@pytest.fixture
def world(database_url: str, tmp_path: Path) -> Iterator[World]:
    settings = load_settings(
        env={"CLICKTRAIL_DATABASE_URL": database_url, "CLICKTRAIL_DATA_DIR": str(tmp_path)}
    )
    container = Container(settings)
    store = Repos.on(container.engine)
    ws = make_workspace(store)
    make_domain(store, ws, HOST)
    make_contacts(store, ws, 2)
    cp = make_campaign(store, ws, TEMPLATE)
    send(store, ws, cp, tmp_path / "outbox.jsonl")
    yield World(container, ws, cp, list(tokens_of(store, cp)), make_api_key(store, ws))
    container.dispose()


def utm(world: World) -> str:
    """The UTM parameters every destination gets by default."""
    return f"utm_source=sms&utm_medium=sms&utm_campaign={world.campaign.slug}"


def run(world: World, fn: Callable[[httpx.AsyncClient], Awaitable[Any]], host: str = HOST) -> Any:
    """Run the app's lifespan around `fn(client)` and return what it returns."""
    app = world.container.web_app()

    async def main() -> Any:
        to_app: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        from_app: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        scope = {"type": "lifespan", "asgi": {"version": "3.0"}}
        task = asyncio.create_task(app(scope, to_app.get, from_app.put))
        await to_app.put({"type": "lifespan.startup"})
        assert (await from_app.get())["type"] == "lifespan.startup.complete"
        try:
            transport = httpx.ASGITransport(app=app, client=("203.0.113.5", 4242))
            async with httpx.AsyncClient(transport=transport, base_url=f"http://{host}") as c:
                return await fn(c)
        finally:
            await to_app.put({"type": "lifespan.shutdown"})
            assert (await from_app.get())["type"] == "lifespan.shutdown.complete"
            await task

    return asyncio.run(main())


def without_click_id(location: str) -> tuple[str, str]:
    """Split a Location into the tagged destination and the click id appended last."""
    head, sep, cid = location.rpartition("&ct_cid=")
    assert sep, location
    return head, cid


def get(path: str, **kw: Any) -> Callable[[httpx.AsyncClient], Awaitable[httpx.Response]]:
    async def call(c: httpx.AsyncClient) -> httpx.Response:
        return await c.request(kw.pop("method", "GET"), path, **kw)

    return call


# -- the redirect -------------------------------------------------------------------------------


def test_get_redirects_and_records_the_click_with_allow_listed_headers(world: World) -> None:
    token = world.token(0, 0)
    headers = {
        "User-Agent": UA,
        "Accept": "text/html",
        "Accept-Language": "nb-NO,en;q=0.5",
        "Sec-Fetch-Site": "none",
        "Sec-Fetch-Mode": "navigate",
        "Purpose": "prefetch",
        "Referer": "https://mail.example.net/",
        "Cookie": "session=secret",
        "Authorization": "Bearer secret",
        "X-Custom": "nope",
    }
    r = run(world, get(f"/c/{token}", headers=headers))
    assert r.status_code == 302
    dest, cid = without_click_id(r.headers["location"])
    assert dest == f"https://shop.example.com/sale?src=sms&{utm(world)}"
    assert r.headers["cache-control"] == "private, no-store"
    assert "set-cookie" not in r.headers
    assert r.content == b""
    (row,) = world.clicks()
    assert (row.token, row.method, row.is_click, row.ip, row.user_agent) == (
        token, "GET", True, "203.0.113.5", UA,
    )  # fmt: skip
    assert row.click_id == cid  # the id the landing page gets is the stored click's
    stored = row.headers
    assert stored["accept"] == "text/html"
    assert stored["accept-language"] == "nb-NO,en;q=0.5"
    assert stored["sec-fetch-site"] == "none"
    assert stored["sec-fetch-mode"] == "navigate"
    assert stored["purpose"] == "prefetch"
    assert stored["referer"] == "https://mail.example.net/"
    for secret in ("cookie", "authorization", "x-custom", "host", "user-agent"):
        assert secret not in stored
    assert "secret" not in str(stored)
    msg = Repos.on(world.container.engine).messages.message_status(
        message_ids(Repos.on(world.container.engine), world.campaign)[0]
    )
    assert msg is not None and row.message_id == msg["id"]


def test_head_gets_the_same_redirect_but_is_not_a_click(world: World) -> None:
    token = world.token(1, 0)

    async def both(c: httpx.AsyncClient) -> tuple[httpx.Response, httpx.Response]:
        return await c.head(f"/c/{token}"), await c.get(f"/c/{token}")

    head, got = run(world, both)
    assert head.status_code == got.status_code == 302
    assert (
        without_click_id(head.headers["location"])[0]
        == without_click_id(got.headers["location"])[0]
    )
    assert head.headers["cache-control"] == "private, no-store"
    assert [(r.method, r.is_click) for r in world.clicks()] == [("HEAD", False), ("GET", True)]
    report = Repos.on(world.container.engine).reports.campaign_report(world.campaign)
    # (The test client sends no browser headers, so the bot rules filter it: raw counts.)
    assert (report.raw_total_clicks, report.requests) == (1, 2)
    assert report.by_verdict["probe"] == 1


def test_personalized_destination(world: World) -> None:
    r0 = run(world, get(f"/c/{world.token(0, 1)}"))
    r1 = run(world, get(f"/c/{world.token(1, 1)}"))
    assert without_click_id(r0.headers["location"])[0] == (
        f"https://shop.example.com/u/ext-0?{utm(world)}"
    )
    assert without_click_id(r1.headers["location"])[0] == (
        f"https://shop.example.com/u/ext-1?{utm(world)}"
    )


def test_non_ascii_destination_goes_out_as_ascii(world: World) -> None:
    r = run(world, get(f"/c/{world.token(0, 2)}"))
    assert r.status_code == 302
    location = r.headers["location"]
    assert without_click_id(location)[0] == (
        f"https://xn--bcher-kva.example.com/stra%C3%9Fe?q=s%C3%BC%C3%9F&{utm(world)}"
    )
    assert location.isascii()


def assert_not_found_page(r: httpx.Response) -> None:
    assert r.status_code == 404
    assert r.headers["content-type"].startswith("text/html")
    assert b"Link not found" in r.content
    assert len(r.content) < 1000
    assert b"Traceback" not in r.content
    assert "location" not in r.headers


def test_token_on_another_host_is_not_found(world: World) -> None:
    r = run(world, get(f"/c/{world.token(0, 0)}"), host="evil.example.org")
    assert_not_found_page(r)
    assert world.clicks() == []


@pytest.mark.parametrize(
    "path",
    [
        "/c/"
        + new_token(
            lambda n: b"\x07" * n
        ),  # well-formed, unknown (fixed: same id on every xdist worker)
        "/c/AAAAAAAA!",  # malformed
        "/c/short",
        "/c/" + "A" * 30,
    ],
)
def test_unknown_or_malformed_token_gets_the_small_404_page(world: World, path: str) -> None:
    assert_not_found_page(run(world, get(path)))
    assert world.clicks() == []


def test_wrong_path_prefix_is_not_found(world: World) -> None:
    token = world.token(0, 0)
    for path in (f"/x/{token}", f"/{token}", f"/c/c/{token}"):
        assert_not_found_page(run(world, get(path)))
    assert world.clicks() == []


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE"])
def test_other_methods_on_a_token_record_nothing(world: World, method: str) -> None:
    r = run(world, get(f"/c/{world.token(0, 0)}", method=method, content=b"x=1"))
    assert r.status_code in (404, 405)
    assert "location" not in r.headers
    assert world.clicks() == []


# -- the API ------------------------------------------------------------------------------------


def post_status(world: World, body: Any, key: str | None = "", query: str = "") -> httpx.Response:
    headers = {} if key is None else {"Authorization": f"Bearer {key or world.key}"}
    kw: dict[str, Any] = {"headers": headers}
    if isinstance(body, bytes):
        kw["content"] = body
    else:
        kw["json"] = body
    return run(world, get(f"/v1/messages/status{query}", method="POST", **kw))


def statuses(world: World) -> list[str]:
    store = Repos.on(world.container.engine)
    return [store.messages.message_status(m)["status"] for m in message_ids(store, world.campaign)]  # type: ignore[index]


def assert_problem(r: httpx.Response, status: int) -> dict[str, Any]:
    assert r.status_code == status
    assert r.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = r.json()
    assert body["status"] == status
    assert "Traceback" not in r.text
    return body


@pytest.mark.parametrize("key", [None, "ct_not_a_key"])
def test_status_without_or_with_a_bad_key_is_401(world: World, key: str | None) -> None:
    ids = message_ids(Repos.on(world.container.engine), world.campaign)
    r = post_status(world, [{"message_id": ids[0], "status": "delivered"}], key=key)
    body = assert_problem(r, 401)
    assert body["code"] == "unauthorized"
    assert r.headers["www-authenticate"] == "Bearer"
    assert statuses(world) == ["sent", "sent"]


def test_status_batch_is_applied(world: World) -> None:
    ids = message_ids(Repos.on(world.container.engine), world.campaign)
    r = post_status(
        world,
        {
            "receipts": [
                {"message_id": ids[0], "status": "delivered", "at": "2026-11-22T10:00:00Z"},
                {"message_id": ids[1], "status": "FAILED", "at": 1_790_000_000},
                {"message_id": ids[0], "status": "sent"},
            ]
        },
    )
    assert r.status_code == 200
    assert r.json() == {"applied": 2, "unchanged": 1, "unknown": []}
    assert statuses(world) == ["delivered", "failed"]
    st = Repos.on(world.container.engine).messages.message_status(ids[0])
    assert st is not None and st["delivered_us"] == int(
        datetime(2026, 11, 22, 10, tzinfo=UTC).timestamp() * 1_000_000
    )


def test_unknown_message_id_is_422_naming_the_item_and_nothing_is_applied(world: World) -> None:
    ids = message_ids(Repos.on(world.container.engine), world.campaign)
    r = post_status(
        world,
        [{"message_id": ids[0], "status": "delivered"}, {"message_id": "msg_x", "status": "sent"}],
    )
    body = assert_problem(r, 422)
    assert [e["field"] for e in body["errors"]] == ["/1/message_id"]
    assert "msg_x" in body["detail"]
    assert statuses(world) == ["sent", "sent"]


def test_skip_unknown_applies_the_rest(world: World) -> None:
    ids = message_ids(Repos.on(world.container.engine), world.campaign)
    r = post_status(
        world,
        [{"message_id": ids[0], "status": "delivered"}, {"message_id": "msg_x", "status": "sent"}],
        query="?skip_unknown=true",
    )
    assert r.status_code == 200
    assert r.json() == {"applied": 1, "unchanged": 0, "unknown": ["msg_x"]}
    assert statuses(world) == ["delivered", "sent"]


@pytest.mark.parametrize(
    ("item", "field"),
    [
        ({"status": "delivered"}, "/0/message_id"),
        ({"status": "read"}, "/0/status"),
        ({"status": "queued"}, "/0/status"),
        ({"status": "delivered", "at": "yesterday"}, "/0/at"),
        ({"status": "delivered", "at": True}, "/0/at"),
    ],
)
def test_invalid_receipt_fields_are_422_naming_the_field(
    world: World, item: dict[str, Any], field: str
) -> None:
    ids = message_ids(Repos.on(world.container.engine), world.campaign)
    if field != "/0/message_id":
        item = {"message_id": ids[0], **item}
    body = assert_problem(post_status(world, [item]), 422)
    assert [e["field"] for e in body["errors"]] == [field]
    assert statuses(world) == ["sent", "sent"]


@pytest.mark.parametrize("raw", [b"not json", b"", b"\xff\xfe", b"{}", b"[]", b'"x"'])
def test_body_that_is_not_a_receipt_list_is_422(world: World, raw: bytes) -> None:
    body = assert_problem(post_status(world, raw), 422)
    assert body["field"] == "body"


def test_report_is_readable_by_its_workspace_only(world: World) -> None:
    store = Repos.on(world.container.engine)
    other = make_workspace(store)
    make_domain(store, other, "other.example.com")
    other_key = make_api_key(store, other)
    run(world, get(f"/c/{world.token(0, 0)}"))
    path = f"/v1/campaigns/{world.campaign.slug}/report"

    async def both(c: httpx.AsyncClient) -> tuple[httpx.Response, ...]:
        return (
            await c.get(path, headers={"Authorization": f"Bearer {world.key}"}),
            await c.get(path, headers={"Authorization": f"Bearer {other_key}"}),
            await c.get(
                f"/v1/campaigns/{world.campaign.public_id}/report",
                headers={"Authorization": f"Bearer {world.key}"},
            ),
        )

    mine, theirs, by_id = run(world, both)
    assert mine.status_code == 200
    report = mine.json()
    assert report["campaign"] == world.campaign.public_id
    assert (report["messages"], report["sent"], report["raw_total_clicks"]) == (2, 2, 1)
    assert report["ctr"] is None
    assert [lk["raw_total_clicks"] for lk in report["links"]] == [1, 0, 0]
    assert by_id.json() == report
    body = assert_problem(theirs, 404)
    assert body["code"] == "not_found"
    assert world.campaign.name not in theirs.text
