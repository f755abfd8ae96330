"""The Segments page of the dashboard in a real browser (Debian's Chromium under Playwright), on
the real server and its jobs process: people tap links, the click pipeline scores them within
seconds, and the page lists every segment with the size the API gives — the built-ins, a saved
filter and a static list — with an opted-out clicker in none of them.

Runs on SQLite and PostgreSQL. Needs /usr/bin/chromium (as tests/e2e/test_dashboard.py).
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from test_dashboard import BROWSER_HEADERS, UA_IPHONE, _metric, _tokens

from conftest import Env

pytestmark = pytest.mark.e2e

N = 20
CLICKERS = range(6)  # a human tap each: 10 points, engaged


def _phone(i: int) -> str:
    return f"+1202555{200 + i:04d}"


def _sizes(http: httpx.Client, auth: dict[str, str]) -> dict[str, int]:
    r = http.get("/v1/segments", headers=auth)
    assert r.status_code == 200, r.text
    return {x["slug"]: x["size"] for x in r.json()["items"]}


def test_segments_page_lists_sizes(env: Env, server_factory: type, browser: Any) -> None:
    csv_path = env.data_dir / "people.csv"
    csv_path.write_text(
        "phone,external_id,plan\n"
        + "".join(f"{_phone(i)},p-{i},{'gold' if i % 2 else 'silver'}\n" for i in range(N)),
        encoding="utf-8",
    )
    env.cli("workspace", "create", "Acme Segments")
    env.cli("domain", "add", "sms.example.com")
    env.cli("contacts", "import", str(csv_path))
    env.cli("campaign", "create", "Hello", "--template", "Hi: https://shop.example.com/hi")
    env.cli("campaign", "send", "hello")
    key = env.cli("keys", "create").stdout.strip()
    auth = {"Authorization": f"Bearer {key}"}
    outbox = [json.loads(x) for x in (env.data_dir / "outbox.jsonl").read_text().splitlines()]
    tokens = {m["to"]: _tokens(m["body"])[0] for m in outbox}

    server = server_factory(env, settings={"CLICKTRAIL_TRUSTED_PROXIES": "127.0.0.1"})
    with httpx.Client(base_url=server.base, timeout=10) as http:
        at = (datetime.now(UTC) - timedelta(minutes=3)).isoformat().replace("+00:00", "Z")
        receipts = [{"message_id": m["message_id"], "status": "delivered", "at": at}
                    for m in outbox]  # fmt: skip
        assert http.post("/v1/messages/status", json=receipts, headers=auth).status_code == 200
        for i in CLICKERS:
            headers = {"Host": "sms.example.com", "User-Agent": UA_IPHONE, **BROWSER_HEADERS,
                       "X-Forwarded-For": f"172.60.{i}.7"}  # fmt: skip
            assert http.get(f"/c/{tokens[_phone(i)]}", headers=headers).status_code == 302
        # The jobs process moves the taps out of the inbox, classifies and scores them.
        deadline = time.monotonic() + 30
        while _sizes(http, auth)["engaged"] < len(CLICKERS):
            assert time.monotonic() < deadline, _sizes(http, auth)
            time.sleep(0.2)
        made = [
            http.post("/v1/segments", headers=auth, json={
                "name": "Gold clickers", "filter": {"clicked": True,
                                                    "attributes": {"plan": "gold"}}}),
            http.post("/v1/segments", headers=auth, json={"name": "VIP", "kind": "static"}),
            http.post("/v1/segments/vip/members", headers=auth,
                      json={"add": ["p-1", "p-2", "p-3", "p-10"]}),
            # A clicker opts out: in no segment any more (but still a member of VIP's list).
            http.post("/v1/opt-outs", headers=auth,
                      json={"items": [{"contact": "p-1", "opted_out": True}]}),
        ]  # fmt: skip
        assert all(r.status_code < 300 for r in made), [r.text for r in made]
        api = _sizes(http, auth)
    assert api == {
        "engaged": 5, "at-risk": 0, "unengaged": N - 6, "never-clicked": N - 6,
        "gold-clickers": 2,  # p-3, p-5 (p-1 opted out)
        "vip": 3,
    }  # fmt: skip

    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    console_errors: list[str] = []
    page.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)
    page.goto(server.base + "/dashboard/segments")
    page.fill("#key", key)
    page.click("button[type=submit]")
    page.wait_for_url("**/dashboard/segments")
    rows = page.locator("#segments tbody tr")
    shown = {
        str(rows.nth(i).get_attribute("data-segment")): int(_metric(rows.nth(i), "size"))
        for i in range(rows.count())
    }
    assert shown == api
    gold = page.locator('tr[data-segment="gold-clickers"]').inner_text()
    assert "clicked: true" in gold and "plan = gold" in gold and "filter" in gold
    assert "static list" in page.locator('tr[data-segment="vip"]').inner_text()
    assert page.locator('nav a[aria-current="page"]').inner_text() == "Segments"
    assert not console_errors
    context.close()
