"""The resources API in process (httpx ASGI transport) on SQLite and PostgreSQL: what the CLI
does, over HTTP; pagination by cursor; problem+json errors naming the field; and a workspace
that never sees another's data."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from clicktrail.bootstrap import Container
from clicktrail.config import load_settings
from clicktrail.domain.models import Campaign, Workspace
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
from served import requests_in_process

HOST = "sms.example.com"


@dataclass
class World:
    container: Container
    ws: Workspace
    key: str
    campaign: Campaign
    other: Workspace
    other_key: str

    def call(self, method: str, path: str, key: str | None = "", **kw: Any) -> httpx.Response:
        """One request through the whole app (lifespan included); `key` '' means ours."""
        (r,) = self.calls([(method, path, key, kw)])
        return r

    def calls(self, requests: list[tuple[str, str, str | None, dict[str, Any]]]) -> list[Any]:
        ours = [(m, p, self.key if key == "" else key, kw) for m, p, key, kw in requests]
        return requests_in_process(self.container, HOST, ours)


@pytest.fixture
def world(database_url: str, tmp_path: Path) -> Iterator[World]:
    settings = load_settings(
        env={"CLICKTRAIL_DATABASE_URL": database_url, "CLICKTRAIL_DATA_DIR": str(tmp_path)}
    )
    container = Container(settings)
    store = Repos.on(container.engine)
    ws = make_workspace(store)
    make_domain(store, ws, HOST)
    make_contacts(store, ws, 3, list_name="vip")
    cp = make_campaign(
        store, ws, "Hi {first_name}: https://shop.example.com/sale stop: https://x.example.com/o"
    )
    send(store, ws, cp, tmp_path / "outbox.jsonl")
    other = make_workspace(store)
    make_domain(store, other, "other.example.com")
    make_contacts(store, other, 2, start=100)
    make_campaign(store, other)
    yield World(container, ws, make_api_key(store, ws), cp, other, make_api_key(store, other))
    container.dispose()


def problem(r: httpx.Response, status: int, field: str | None = None) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = r.json()
    assert body["status"] == status
    if field is not None:
        assert body["field"] == field, body
    return body


def ok(r: httpx.Response, status: int = 200) -> Any:
    assert r.status_code == status, r.text
    return r.json()


# -- authentication and the workspace ----------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/v1/workspace", "/v1/domains", "/v1/contacts", "/v1/campaigns", "/v1/clicks",
             "/v1/messages", "/v1/lists", "/v1/exports/clicks"],
)  # fmt: skip
def test_every_resource_needs_a_key(world: World, path: str) -> None:
    problem(world.call("GET", path, key=None), 401)
    problem(world.call("GET", path, key="ct_nope"), 401)


def test_workspace_is_the_keys_own(world: World) -> None:
    body = ok(world.call("GET", "/v1/workspace"))
    assert body == {"id": world.ws.public_id, "slug": world.ws.slug, "name": world.ws.name,
                    "demo": False}  # fmt: skip
    assert ok(world.call("GET", "/v1/workspace", key=world.other_key))["id"] == (
        world.other.public_id
    )


# -- domains ------------------------------------------------------------------------------------


def test_domains_create_list_get(world: World) -> None:
    r = world.call(
        "POST", "/v1/domains",
        json={"host": "Go.Example.COM", "fallback_url": "https://example.com/"},
    )  # fmt: skip
    body = ok(r, 201)
    assert body == {
        "host": "go.example.com", "scheme": "https", "port": None, "path_prefix": "/c/",
        "base_url": "https://go.example.com/c/", "fallback_url": "https://example.com/",
    }  # fmt: skip
    assert r.headers["location"] == "/v1/domains/go.example.com"
    hosts = [d["host"] for d in ok(world.call("GET", "/v1/domains"))["items"]]
    assert hosts == ["go.example.com", HOST]
    assert ok(world.call("GET", "/v1/domains/go.example.com"))["host"] == "go.example.com"
    problem(world.call("GET", "/v1/domains/go.example.com", key=world.other_key), 404)
    problem(world.call("POST", "/v1/domains", json={"host": HOST}), 409, "host")
    problem(world.call("POST", "/v1/domains", key=world.other_key, json={"host": HOST}), 409)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "/host"),
        ({"host": 5}, "/host"),
        ({"host": "a.example.com", "color": "red"}, "/color"),
        ({"host": "a.example.com", "scheme": "ftp"}, "/scheme"),
        ({"host": "a.example.com", "prefix": "/v1/"}, "prefix"),
        ({"host": "not a host"}, "host"),
        ({"host": "a\x00.example.com"}, "/host"),
        ([1, 2], "body"),
    ],
)
def test_domain_body_errors_name_the_field(world: World, body: Any, field: str) -> None:
    problem(world.call("POST", "/v1/domains", json=body), 422, field)


def test_domain_errors_speak_the_apis_language(world: World) -> None:
    body = problem(world.call("POST", "/v1/domains", json={"host": "https://a.example.com/x"}), 422)
    assert "give the host only" in body["detail"] and "--" not in body["detail"]


def test_malformed_json_is_422_on_body(world: World) -> None:
    problem(world.call("POST", "/v1/domains", content=b"{nope"), 422, "body")


# -- contacts -----------------------------------------------------------------------------------

CSV = b"phone,external_id,first_name,tier\n+14155550200,crm-1,Ana,gold\n(415) 555-0201,crm-2,Bo,\n"


def test_contacts_import_then_page_through_them(world: World) -> None:
    r = world.call(
        "POST", "/v1/contacts/import?region=US&list=new", content=CSV,
        headers={"Content-Type": "text/csv"},
    )  # fmt: skip
    assert ok(r) == {"rows": 2, "created": 2, "updated": 0, "duplicates": 0, "rejected": []}
    seen: list[str] = []
    cursor = None
    for _ in range(5):
        q = "?limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = ok(world.call("GET", "/v1/contacts" + q))
        assert len(page["items"]) <= 2
        seen += [c["phone"] for c in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == sorted(seen) and len(seen) == len(set(seen)) == 5
    ana = ok(world.call("GET", "/v1/contacts/crm-1"))
    assert ana["phone"] == "+14155550200"
    assert ana["attributes"] == {"tier": "gold"}
    assert ana["created_at"].endswith("Z")
    assert ok(world.call("GET", "/v1/contacts/%2B14155550201"))["external_id"] == "crm-2"
    new = ok(world.call("GET", "/v1/contacts?list=new"))["items"]
    assert [c["external_id"] for c in new] == ["crm-1", "crm-2"]
    lists = ok(world.call("GET", "/v1/lists"))
    assert [(x["name"], x["members"]) for x in lists["items"]] == [("new", 2), ("vip", 3)]
    problem(world.call("GET", "/v1/contacts?list=nope"), 404, "list")


def test_contacts_import_is_all_or_nothing_unless_skip_invalid(world: World) -> None:
    bad = b"phone,external_id\n+14155550300,a\nnot-a-phone,b\n"
    body = problem(world.call("POST", "/v1/contacts/import", content=bad), 422)
    assert [e["field"] for e in body["errors"]] == ["line 3"]
    problem(world.call("GET", "/v1/contacts/a"), 404)
    r = world.call("POST", "/v1/contacts/import?skip_invalid=true", content=bad)
    assert ok(r)["rejected"] == [{"line": 3, "reason": r.json()["rejected"][0]["reason"]}]
    assert ok(world.call("GET", "/v1/contacts/a"))["phone"] == "+14155550300"
    problem(world.call("POST", "/v1/contacts/import?skip_invalid=maybe", content=bad), 422,
            "skip_invalid")  # fmt: skip
    problem(world.call("POST", "/v1/contacts/import", content=b"name\nx\n"), 422, "line 1")
    # The API names its own parameters, never the CLI's flags.
    assert "?skip_invalid=true" in body["detail"] and "--" not in body["detail"]


def test_a_header_without_rows_is_refused_unless_allow_empty(world: World) -> None:
    body = problem(world.call("POST", "/v1/contacts/import", content=b"phone,first_name\n"), 422)
    assert "a header and no data rows" in body["detail"]
    assert "?allow_empty=true" in body["detail"] and "--allow-empty" not in body["detail"]
    r = ok(world.call("POST", "/v1/contacts/import?allow_empty=true", content=b"phone\n"))
    assert (r["rows"], r["created"]) == (0, 0)


def test_unknown_receipts_name_the_api_parameter(world: World) -> None:
    body = problem(
        world.call("POST", "/v1/messages/status", json=[{"message_id": "msg_x", "status": "sent"}]),
        422,
    )
    assert "?skip_unknown=true" in body["detail"] and "--skip-unknown" not in body["detail"]


# -- campaigns ----------------------------------------------------------------------------------


def test_campaign_create_get_preview_send(world: World) -> None:
    body = {
        "name": "Spring sale",
        "template": "Hi {first_name|there}: https://shop.example.com/spring opt out https://o.example.com/",
        "list": "vip",
        "link_role": {"2": "optout"},
        "link_utm": {"1": {"utm_content": "hero"}},
        "utm": {"utm_source": "text"},
    }
    r = world.call("POST", "/v1/campaigns", json=body)
    cp = ok(r, 201)
    assert r.headers["location"] == f"/v1/campaigns/{cp['id']}"
    assert (cp["slug"], cp["status"], cp["domain"], cp["list"]) == (
        "spring-sale", "draft", HOST, "vip",
    )  # fmt: skip
    assert [(lk["link"], lk["role"], lk["utm"]) for lk in cp["links"]] == [
        (1, "cta", {"utm_content": "hero"}), (2, "optout", {}),
    ]  # fmt: skip
    assert cp["options"]["utm"] == {"utm_source": "text"}
    assert ok(world.call("GET", "/v1/campaigns/spring-sale")) == cp
    assert ok(world.call("GET", f"/v1/campaigns/{cp['id']}")) == cp
    listed = ok(world.call("GET", "/v1/campaigns"))["items"]
    assert [c["slug"] for c in listed] == ["spring-sale", world.campaign.slug]

    preview = ok(world.call("GET", "/v1/campaigns/spring-sale/preview?contact=ext-1"))
    assert preview["contact_phone"] == "+14155550001"
    assert preview["body"].startswith("Hi Name1: https://sms.example.com/c/")
    assert preview["cost"]["segments"] >= 1

    sent = ok(world.call("POST", "/v1/campaigns/spring-sale/send"))
    assert (sent["created"], sent["sent"], sent["failed"]) == (3, 3, 0)
    problem(world.call("POST", "/v1/campaigns/spring-sale/send"), 409)
    assert ok(world.call("GET", "/v1/campaigns/spring-sale"))["status"] == "sent"
    outbox = Path(world.container.settings.data_dir) / "outbox.jsonl"
    assert outbox.read_text().count("\n") == 6  # 3 from the fixture's campaign, 3 here


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"name": "x"}, 422, "/template"),
        ({"name": "", "template": "t"}, 422, "/name"),
        ({"name": "x", "template": "t", "list": "nope"}, 404, "list"),
        ({"name": "x", "template": "t", "domain": "nope.example.com"}, 404, "domain"),
        ({"name": "x", "template": "hi {nope}"}, 422, None),
        ({"name": "x", "template": "t https://a.example.com", "link_role": {"2": "cta"}}, 422,
         "link_role"),
        ({"name": "x", "template": "t", "link_role": {"zero": "cta"}}, 422, "/link_role/zero/[key]"),
        ({"name": "x", "template": "t", "smart_encoding": "yes"}, 422, "/smart_encoding"),
        ({"name": "x", "template": "t", "shift_table": "klingon"}, 422, None),
    ],
)  # fmt: skip
def test_campaign_body_errors(world: World, body: Any, status: int, field: str | None) -> None:
    problem(world.call("POST", "/v1/campaigns", json=body), status, field)


def test_campaign_name_taken_is_409(world: World) -> None:
    r = world.call("POST", "/v1/campaigns", json={"name": world.campaign.name, "template": "t"})
    problem(r, 409)
    # …but another workspace may use it.
    r = world.call(
        "POST", "/v1/campaigns", key=world.other_key,
        json={"name": world.campaign.name, "template": "t"},
    )  # fmt: skip
    assert r.status_code == 201


# -- messages and clicks ------------------------------------------------------------------------


def test_messages_list_filter_get(world: World) -> None:
    ids = message_ids(Repos.on(world.container.engine), world.campaign)
    page = ok(world.call("GET", f"/v1/messages?campaign={world.campaign.slug}&limit=2"))
    assert [m["id"] for m in page["items"]] == ids[:2]
    rest = ok(world.call("GET", f"/v1/messages?cursor={page['next_cursor']}"))
    assert [m["id"] for m in rest["items"]] == ids[2:] and rest["next_cursor"] is None
    m = ok(world.call("GET", f"/v1/messages/{ids[0]}"))
    assert (m["campaign"], m["status"], m["to"], m["external_id"]) == (
        world.campaign.public_id, "sent", "+14155550000", "ext-0",
    )  # fmt: skip
    assert m["sent_at"].endswith("Z") and m["delivered_at"] is None
    ok(world.call("POST", "/v1/messages/status",
                  json=[{"message_id": ids[1], "status": "delivered"}]))  # fmt: skip
    delivered = ok(world.call("GET", "/v1/messages?status=DELIVERED"))["items"]
    assert [x["id"] for x in delivered] == [ids[1]]
    problem(world.call("GET", "/v1/messages?status=read"), 422, "status")
    problem(world.call("GET", "/v1/messages?campaign=nope"), 404, "campaign")


def test_clicks_list_with_filters(world: World) -> None:
    tokens = [t for t, _, _ in tokens_of(Repos.on(world.container.engine), world.campaign)]
    world.calls(
        [("GET", f"/c/{tokens[0]}", None, {"headers": {"User-Agent": "Mozilla/5.0 (x)"}}),
         ("HEAD", f"/c/{tokens[2]}", None, {})]
    )  # fmt: skip
    items = ok(world.call("GET", "/v1/clicks"))["items"]
    assert [(c["method"], c["is_click"], c["link"], c["external_id"]) for c in items] == [
        ("GET", True, 1, "ext-0"), ("HEAD", False, 1, "ext-1"),
    ]  # fmt: skip
    first = items[0]
    assert first["campaign"] == world.campaign.public_id
    assert first["destination"] == "https://shop.example.com/sale"
    assert first["user_agent"] == "Mozilla/5.0 (x)" and first["ip"] == "203.0.113.5"
    assert first["at"].endswith("Z") and first["verdict"] is not None
    page = ok(world.call("GET", "/v1/clicks?limit=1"))
    assert [c["id"] for c in page["items"]] == [first["id"]]
    nxt = ok(world.call("GET", f"/v1/clicks?limit=1&cursor={page['next_cursor']}"))
    assert [c["id"] for c in nxt["items"]] == [items[1]["id"]]
    assert ok(world.call("GET", "/v1/clicks?since=2100-01-01"))["items"] == []
    assert len(ok(world.call("GET", "/v1/clicks?until=2100-01-01T00:00:00Z"))["items"]) == 2
    assert ok(world.call("GET", "/v1/clicks?verdict=probe"))["items"][0]["method"] == "HEAD"
    problem(world.call("GET", "/v1/clicks?since=yesterday"), 422, "since")
    problem(world.call("GET", "/v1/clicks?since=nan"), 422, "since")
    problem(world.call("GET", "/v1/clicks?verdict=robot"), 422, "verdict")


# -- pagination ---------------------------------------------------------------------------------


@pytest.mark.parametrize("query", ["limit=0", "limit=501", "limit=x", "limit=-1", "limit=²"])
def test_bad_limit_is_422(world: World, query: str) -> None:
    problem(world.call("GET", f"/v1/contacts?{query}"), 422, "limit")


def test_cursors_are_opaque_and_bound_to_their_resource(world: World) -> None:
    page = ok(world.call("GET", "/v1/contacts?limit=1"))
    cursor = page["next_cursor"]
    assert cursor and "+1415" not in cursor
    problem(world.call("GET", f"/v1/campaigns?cursor={cursor}"), 422, "cursor")
    for junk in ("nope", "%00", "e30", "W10"):
        problem(world.call("GET", f"/v1/contacts?cursor={junk}"), 422, "cursor")


def test_no_integer_keys_are_exposed(world: World) -> None:
    cp = ok(world.call("GET", f"/v1/campaigns/{world.campaign.slug}"))
    m = ok(world.call("GET", "/v1/messages?limit=1"))["items"][0]
    for body in (cp, m):
        assert "id" not in body or isinstance(body["id"], str)
    assert cp["id"].startswith("cmp_") and m["id"].startswith("msg_")


# -- isolation ----------------------------------------------------------------------------------


def test_another_workspace_sees_none_of_it(world: World) -> None:
    """For every resource: the other key's lists hold only its own things and ours are 404."""
    tokens = [t for t, _, _ in tokens_of(Repos.on(world.container.engine), world.campaign)]
    world.call("GET", f"/c/{tokens[0]}", key=None)
    mine_msg = message_ids(Repos.on(world.container.engine), world.campaign)[0]
    theirs = world.other_key
    domains = ok(world.call("GET", "/v1/domains", key=theirs))["items"]
    assert [d["host"] for d in domains] == ["other.example.com"]
    contacts = ok(world.call("GET", "/v1/contacts", key=theirs))["items"]
    assert [c["external_id"] for c in contacts] == ["ext-100", "ext-101"]
    assert ok(world.call("GET", "/v1/lists", key=theirs))["items"] == []
    campaigns = ok(world.call("GET", "/v1/campaigns", key=theirs))["items"]
    assert world.campaign.public_id not in [c["id"] for c in campaigns]
    assert ok(world.call("GET", "/v1/messages", key=theirs))["items"] == []
    assert ok(world.call("GET", "/v1/clicks", key=theirs))["items"] == []
    for path in (
        f"/v1/domains/{HOST}", "/v1/contacts/ext-0", "/v1/contacts/%2B14155550000",
        f"/v1/campaigns/{world.campaign.slug}", f"/v1/campaigns/{world.campaign.public_id}",
        f"/v1/campaigns/{world.campaign.slug}/preview", f"/v1/messages/{mine_msg}",
        f"/v1/messages?campaign={world.campaign.slug}", f"/v1/clicks?campaign={world.campaign.slug}",
        f"/v1/exports/clicks?campaign={world.campaign.slug}",
        f"/v1/exports/messages?campaign={world.campaign.slug}",
    ):  # fmt: skip
        r = world.call("GET", path, key=theirs)
        problem(r, 404)
        assert world.campaign.name not in r.text and "Name0" not in r.text
        assert "shop.example.com" not in r.text
    problem(world.call("POST", f"/v1/campaigns/{world.campaign.slug}/send", key=theirs), 404)
    exported = world.call("GET", "/v1/exports/clicks?format=jsonl", key=theirs)
    assert exported.status_code == 200 and exported.content == b""
    messages_csv = world.call("GET", "/v1/exports/messages", key=theirs).text
    assert messages_csv.count("\r\n") == 1  # the header only
    # Their cursor cannot walk our rows either.
    mine = ok(world.call("GET", "/v1/messages?limit=1"))
    assert ok(world.call("GET", f"/v1/messages?cursor={mine['next_cursor']}", key=theirs)) == {
        "items": [], "next_cursor": None,
    }  # fmt: skip
