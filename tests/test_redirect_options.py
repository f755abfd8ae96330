"""Destination parameters (UTM, click id), fallback URLs, trusted proxies, storage outages."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest

from clicktrail.bootstrap import Container
from clicktrail.config import load_settings
from clicktrail.domain.destinations import add_query_params, redirect_location, split_for_click_id
from clicktrail.domain.errors import InvalidInput
from clicktrail.domain.models import CampaignOptions
from clicktrail.domain.network import client_ip, parse_networks
from clicktrail.domain.tokens import new_token
from clicktrail.services import campaigns
from clicktrail.services.ports import ClickRecord
from clicktrail.web.redirect import RedirectApp
from factories import NOW_US, Repos, make_contacts, make_domain, make_workspace, send, tokens_of

HOST = "sms.example.com"
UNKNOWN = new_token(lambda n: bytes(n))  # well-formed, never issued by the random source

# -- pure functions -----------------------------------------------------------------------------


def test_query_params_never_overwrite_and_go_before_the_fragment() -> None:
    url = "https://shop.example.com/p?utm_source=newsletter&x=1#reviews"
    out = add_query_params(url, {"utm_source": "sms", "utm_medium": "sms"})
    assert out == "https://shop.example.com/p?utm_source=newsletter&x=1&utm_medium=sms#reviews"
    assert (
        add_query_params("https://a.example/", {"k": "a b&c"}) == "https://a.example/?k=a%20b%26c"
    )
    assert add_query_params("https://a.example/?", {"k": "v"}) == "https://a.example/?k=v"


@pytest.mark.parametrize(
    ("location", "head", "tail"),
    [
        ("https://a.example/x", "https://a.example/x?ct_cid=", ""),
        ("https://a.example/x?q=1", "https://a.example/x?q=1&ct_cid=", ""),
        ("https://a.example/x?q=1#top", "https://a.example/x?q=1&ct_cid=", "#top"),
        ("https://a.example/x#top", "https://a.example/x?ct_cid=", "#top"),
    ],
)
def test_click_id_goes_in_the_query(location: str, head: str, tail: str) -> None:
    assert split_for_click_id(location, "ct_cid") == (head, tail)


def test_a_url_that_already_carries_the_click_id_param_keeps_it() -> None:
    loc, _, _, add = redirect_location("https://a.example/?ct_cid=mine", {}, "ct_cid")
    assert (loc, add) == ("https://a.example/?ct_cid=mine", False)
    loc, _, _, add = redirect_location("www.a.example/x", {}, "")
    assert (loc, add) == ("https://www.a.example/x", False)


def test_utm_params_merge_defaults_campaign_and_link() -> None:
    opts = CampaignOptions(utm={"utm_medium": "text", "utm_source": ""})
    assert opts.utm_params("bf", {"utm_content": "hero"}) == {
        "utm_medium": "text",
        "utm_campaign": "bf",
        "utm_content": "hero",
    }
    assert CampaignOptions(utm_enabled=False).utm_params("bf", {"utm_content": "x"}) == {}


TRUSTED = parse_networks("10.0.0.0/8, 127.0.0.1, ::1")


@pytest.mark.parametrize(
    ("peer", "forwarded", "xff", "expected"),
    [
        ("203.0.113.9", None, "198.51.100.1", "203.0.113.9"),  # untrusted peer: header ignored
        ("10.0.0.2", None, "198.51.100.1", "198.51.100.1"),
        ("10.0.0.2", None, "6.6.6.6, 198.51.100.1, 10.0.0.3", "198.51.100.1"),  # skip our hops
        ("10.0.0.2", None, "garbage, 10.0.0.3", "10.0.0.3"),  # unparsable stops the walk
        ("10.0.0.2", 'for="[2001:db8::1]:4711";proto=https', "6.6.6.6", "2001:db8::1"),
        ("10.0.0.2", "for=192.0.2.60:8080, for=10.0.0.9", None, "192.0.2.60"),
        ("10.0.0.2", None, None, "10.0.0.2"),
        ("::1", None, "192.0.2.7", "192.0.2.7"),
    ],
)
def test_client_ip_trusts_forwarding_headers_only_from_proxies(
    peer: str, forwarded: str | None, xff: str | None, expected: str
) -> None:
    assert client_ip(peer, forwarded, xff, TRUSTED) == expected


def test_client_ip_without_trusted_proxies_is_the_peer() -> None:
    assert client_ip("10.0.0.2", None, "198.51.100.1", ()) == "10.0.0.2"


def test_bad_trusted_proxy_entry_names_it() -> None:
    with pytest.raises(InvalidInput, match=re.escape("'10.0.0.0/33'")):
        parse_networks("127.0.0.1, 10.0.0.0/33")


# -- through the app ----------------------------------------------------------------------------


def _call(app: Any, path: str, host: str = HOST, headers: dict[str, str] | None = None,
          client: tuple[str, int] = ("203.0.113.5", 4242)) -> httpx.Response:  # fmt: skip
    async def main() -> httpx.Response:
        transport = httpx.ASGITransport(app=app, client=client)
        async with httpx.AsyncClient(transport=transport, base_url=f"http://{host}") as c:
            return await c.get(path, headers=headers)

    return asyncio.run(main())


class _Served:
    def __init__(self, container: Container) -> None:
        self.app = container.web_app()
        self.started = False

    def __enter__(self) -> Any:
        self.app.startup()
        return self.app

    def __exit__(self, *exc: object) -> None:
        self.app.shutdown()


@pytest.fixture
def container(database_url: str, tmp_path: Path) -> Iterator[Container]:
    c = Container(
        load_settings(
            env={
                "CLICKTRAIL_DATABASE_URL": database_url,
                "CLICKTRAIL_DATA_DIR": str(tmp_path),
                "CLICKTRAIL_TRUSTED_PROXIES": "10.0.0.0/8",
            }
        )
    )
    yield c
    c.dispose()


def _campaign(container: Container, tmp_path: Path, **options: Any) -> list[str]:
    store = Repos.on(container.engine)
    ws = make_workspace(store)
    make_domain(store, ws, HOST, fallback_url="https://brand.example.com/expired")
    make_contacts(store, ws, 1)
    link_utm = options.pop("link_utm", None)
    cp = campaigns.create_campaign(
        store, ws, name="Opts", now_us=NOW_US, link_utm=link_utm,
        template="A https://shop.example.com/a?utm_medium=own B https://shop.example.com/b#f",
        options=CampaignOptions(**options),
    )  # fmt: skip
    send(store, ws, cp, tmp_path / "o.jsonl")
    return [t for t, _, _ in tokens_of(store, cp)]


def test_campaign_and_link_utm_and_renamed_click_id(container: Container, tmp_path: Path) -> None:
    a, b = _campaign(
        container, tmp_path, utm={"utm_source": "text-msg"}, click_id_param="clid",
        link_utm={1: {"utm_content": "footer"}},
    )  # fmt: skip
    with _Served(container) as app:
        ra, rb = _call(app, f"/c/{a}"), _call(app, f"/c/{b}")
    qa = dict(parse_qsl(urlsplit(ra.headers["location"]).query))
    assert qa.pop("clid")
    assert qa == {"utm_medium": "own", "utm_source": "text-msg", "utm_campaign": "opts"}
    parts = urlsplit(rb.headers["location"])
    assert parts.fragment == "f"
    qb = dict(parse_qsl(parts.query))
    assert qb.pop("clid")
    assert qb == {"utm_source": "text-msg", "utm_medium": "sms", "utm_campaign": "opts",
                  "utm_content": "footer"}  # fmt: skip


def test_no_utm_and_no_click_id_leave_the_url_alone(container: Container, tmp_path: Path) -> None:
    a, b = _campaign(container, tmp_path, utm_enabled=False, click_id_param="")
    with _Served(container) as app:
        assert (
            _call(app, f"/c/{a}").headers["location"] == "https://shop.example.com/a?utm_medium=own"
        )
        assert _call(app, f"/c/{b}").headers["location"] == "https://shop.example.com/b#f"


def test_unknown_token_on_a_domain_with_a_fallback_goes_there(
    container: Container, tmp_path: Path
) -> None:
    (a, _) = _campaign(container, tmp_path)
    with _Served(container) as app:
        r = _call(app, f"/c/{UNKNOWN}")
        assert r.status_code == 302
        assert r.headers["location"] == "https://brand.example.com/expired"
        assert r.headers["cache-control"] == "private, no-store"
        assert _call(app, f"/c/{UNKNOWN}", host="other.example.com").status_code == 404
        assert _call(app, f"/c/{a}", host="other.example.com").status_code == 404
    assert Repos.on(container.engine).clicks.count_clicks() == 0


def test_client_ip_comes_from_a_trusted_proxy_only(container: Container, tmp_path: Path) -> None:
    (a, _) = _campaign(container, tmp_path)
    xff = {"X-Forwarded-For": "198.51.100.7"}
    with _Served(container) as app:
        _call(app, f"/c/{a}", headers=xff, client=("10.1.2.3", 5000))
        _call(app, f"/c/{a}", headers=xff, client=("203.0.113.5", 5000))
    engine = container.engine
    with engine.connect() as conn:
        ips = [r[0] for r in conn.exec_driver_sql("SELECT ip FROM clicks ORDER BY id")]
    assert ips == ["198.51.100.7", "203.0.113.5"]


def test_storage_outage_for_an_uncached_token_is_503_not_404() -> None:
    recorded: list[ClickRecord] = []

    def broken(_token: str) -> None:
        raise ConnectionError("database is away")

    async def api(scope: Any, receive: Any, send: Any) -> None:  # pragma: no cover - unused
        raise AssertionError("not for the API")

    app = RedirectApp(broken, recorded.append, api)
    r = _call(app, f"/c/{UNKNOWN}")
    assert r.status_code == 503
    assert r.headers["retry-after"] == "5"
    assert "try again" in r.text.lower()
    assert recorded == []
