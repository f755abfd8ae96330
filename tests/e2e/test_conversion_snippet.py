"""The first-party snippet in a real browser: Debian's Chromium (Playwright) taps a tracked link
served by the real server, lands on a shop page of another origin that loads /ct.js, and later
converts on a page whose URL has no click id. The click id must have been kept in the shop's
own cookie and localStorage for the configured days, and the beacon must record one conversion
of that click (source `beacon`); a visitor who came from no tracked link reports nothing.

Runs on SQLite and PostgreSQL. Needs /usr/bin/chromium (see test_dashboard.py).
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from conftest import Env, Server, free_port

pytestmark = pytest.mark.e2e

DAYS = 7


class Shop:
    """The merchant's site on http://localhost:PORT (another origin than clicktrail's)."""

    def __init__(self, snippet_tag: str) -> None:
        self.port = free_port()
        pages = {
            "/landing": f"<!doctype html><title>Sale</title><h1>Sale</h1>{snippet_tag}",
            "/thanks": (
                "<!doctype html><title>Thanks</title><script>"
                "(window.clicktrailq = window.clicktrailq || []).push(['convert', {event: "
                "'purchase', value: '49.90', currency: 'EUR', txn: 'order-1043'}]);"
                f"</script>{snippet_tag}"
            ),
        }

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path == "/favicon.ico":
                    self.send_response(204)
                    self.end_headers()
                    return
                body = pages.get(self.path.split("?")[0])
                self.send_response(200 if body else 404)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.end_headers()
                self.wfile.write((body or "not found").encode())

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.base = f"http://localhost:{self.port}"

    def __enter__(self) -> Shop:
        self.thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def _conversions(server: Server, key: str) -> list[dict[str, Any]]:
    r = httpx.get(server.base + "/v1/conversions", headers={"Authorization": f"Bearer {key}"})
    assert r.status_code == 200, r.text
    items: list[dict[str, Any]] = r.json()["items"]
    return items


@pytest.fixture
def shop_env(env: Env) -> tuple[Env, str, str]:
    """A workspace with the short domain http://127.0.0.1, an API key and a publishable key."""
    env.cli("workspace", "create", "Shop")
    env.cli("domain", "add", "http://127.0.0.1")
    key = env.cli("keys", "create").stdout.strip()
    return env, key, env.cli("publishable-key", "create", "shop").stdout.strip()


def test_the_snippet_keeps_the_click_id_and_reports_the_conversion(
    shop_env: tuple[Env, str, str], server_factory: type[Server], browser: Any
) -> None:
    env, key, pk = shop_env
    server = server_factory(env)
    tag = f'<script src="{server.base}/ct.js" data-key="{pk}" data-days="{DAYS}"></script>'
    with Shop(tag) as shop:
        csv_path = env.data_dir / "r.csv"
        csv_path.write_text("phone,external_id\n+14155550100,cust-1\n", "utf-8")
        env.cli("contacts", "import", str(csv_path))
        env.cli("campaign", "create", "Sale", "--template", f"Sale: {shop.base}/landing now")
        env.cli("campaign", "send", "sale")
        (line,) = (env.data_dir / "outbox.jsonl").read_text().splitlines()
        link = server.base + "/c/" + json.loads(line)["body"].split(" ")[1].rsplit("/", 1)[1]

        context = browser.new_context()
        page = context.new_page()
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.goto(link)
        assert page.url.startswith(shop.base + "/landing?")
        landed_cid = page.url.split("ct_cid=")[1].split("&")[0]
        page.wait_for_function("window.clicktrail !== undefined")
        assert page.evaluate("clicktrail.clickId()") == landed_cid
        (cookie,) = [c for c in context.cookies(shop.base) if c["name"] == "_ct_cid"]
        assert cookie["value"] == landed_cid and cookie["sameSite"] == "Lax"
        assert abs(cookie["expires"] - (time.time() + DAYS * 86400)) < 120
        stored = json.loads(page.evaluate("localStorage.getItem('_ct_cid')"))
        assert stored["id"] == landed_cid
        assert abs(stored["until"] / 1000 - (time.time() + DAYS * 86400)) < 120

        page.goto(shop.base + "/thanks")  # no click id in this URL: the cookie has it
        deadline = time.monotonic() + 20
        while not (found := _conversions(server, key)) and time.monotonic() < deadline:
            time.sleep(0.2)
        (conversion,) = found
        assert conversion["source"] == "beacon" and conversion["click_id"] == landed_cid
        assert (conversion["event"], conversion["value"], conversion["currency"]) == (
            "purchase", "49.9", "EUR"
        )  # fmt: skip
        assert conversion["txn"] == "order-1043" and conversion["contact"] == "cust-1"
        page.reload()  # the same order again: one conversion
        time.sleep(1.5)
        assert len(_conversions(server, key)) == 1
        context.close()
        assert not errors, errors

        # A visitor who never tapped a tracked link: no click id, nothing sent.
        stranger = browser.new_context()
        page = stranger.new_page()
        page.goto(shop.base + "/thanks")
        page.wait_for_function("window.clicktrail !== undefined")
        assert page.evaluate("clicktrail.clickId()") is None
        assert page.evaluate("clicktrail.convert({event: 'x'})") is False
        stranger.close()
    server.stop()
    assert len(_conversions_after_stop(env)) == 1


def _conversions_after_stop(env: Env) -> list[str]:
    r = env.cli("conversions", "list", "--json")
    return [x["id"] for x in json.loads(r.stdout)]
