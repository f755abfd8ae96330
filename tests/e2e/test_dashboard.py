"""The dashboard in a real browser: Debian's Chromium driven by Playwright, on the real server.

A campaign with known deliveries and clicks (real HTTP taps with a phone browser's headers, each
from its own address behind a trusted proxy, plus a few scanner requests) is loaded; the test signs
in through the form, checks every figure the pages show against what it did, pages and searches
the recipients table, and saves screenshots of the main pages to docs/screenshots/ (for the
README). A second campaign carries attacker-controlled text (a `<script>` user agent, a URL with
quotes, markup in its name): it must show literally and never run.

Runs on SQLite and PostgreSQL. Needs /usr/bin/chromium (`make test` installs it); without it the
test is skipped, except in CI (CI=true), where it fails.
"""

from __future__ import annotations

import json
import os
import re
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from clicktrail.domain.report import COUNTED_CLICKS
from conftest import Env

pytestmark = pytest.mark.e2e

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"

N = 120  # recipients
DELIVERED, FAILED = 100, 10  # the last 10 get no receipt
CLICKERS = range(40)  # tap the offer link (link 1)
REPEATERS = range(10)  # tap it a second time
OPTOUTS = range(40, 48)  # tap the opt-out link (link 2) only
SCANNED = range(60, 63)  # a link scanner fetches link 1 (no browser headers): not counted
PROBED = range(70, 72)  # HEAD probes on link 1: requests, never clicks
BUYERS = range(5)  # buy after their first tap: 25.00 USD each, by click id (ct_cid)

UA_IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1"
)
UA_ANDROID = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Mobile Safari/537.36"
)
BROWSER_HEADERS = {
    "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    "Accept-Language": "en-US,en;q=0.9",
    "Accept-Encoding": "gzip, deflate, br",
    "Sec-Fetch-Site": "none",
    "Sec-Fetch-Mode": "navigate",
    "Sec-Fetch-Dest": "document",
}
CHROME_HINTS = {
    "Sec-CH-UA": '"Chromium";v="131", "Not_A Brand";v="24", "Google Chrome";v="131"',
    "Sec-CH-UA-Mobile": "?1",
    "Sec-CH-UA-Platform": '"Android"',
}
EVIL_UA = "<script>alert(\"ua\")</script><img src=x onerror=alert('img')>"
EVIL_NAME = "Escapes <script>alert('name')</script> & \"quotes\""
EVIL_URL = "https://shop.example.com/it's?q='x'&b=1"


def phone(i: int) -> str:
    """Return recipient i's phone number (fictional 555-01xx numbers over two area codes)."""
    return f"+1{('202', '212')[i // 100]}555{100 + i % 100:04d}"


def _outbox(env: Env) -> list[dict[str, Any]]:
    return [json.loads(x) for x in (env.data_dir / "outbox.jsonl").read_text().splitlines()]


def _tokens(body: str) -> list[str]:
    return re.findall(r"https://sms\.example\.com/c/([0-9A-Za-z]+)", body)


def _wait_for_requests(http: httpx.Client, auth: dict[str, str], campaign: str, n: int) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        r = http.get(f"/v1/campaigns/{campaign}/report", headers=auth)
        # Stored, and given their provisional bot verdicts (the server's job, within ~1 s).
        if (
            r.status_code == 200
            and r.json()["requests"] >= n
            and "unclassified" not in r.json()["by_verdict"]
        ):
            return
        time.sleep(0.1)
    pytest.fail(f"the clicks of {campaign} were not stored and classified in 20 s")


def _metric(scope: Any, name: str) -> str:
    return str(scope.locator(f'[data-metric="{name}"]').first.inner_text()).strip()


def test_dashboard_in_chromium(
    env: Env, server_factory: type, browser: Any, database_url: str
) -> None:
    csv_path = env.data_dir / "recipients.csv"
    csv_path.write_text(
        "phone,external_id,first_name\n"
        + "".join(f"{phone(i)},cust-{i:04d},Name{i}\n" for i in range(N)),
        encoding="utf-8",
    )
    env.cli("workspace", "create", "Acme Retail")
    env.cli("domain", "add", "sms.example.com")
    env.cli("contacts", "import", str(csv_path))
    env.cli(
        "campaign", "create", "Spring Sale",
        "--template",
        "Hi {first_name}, spring deals up to 40% off: https://shop.example.com/spring "
        "Stop: https://shop.example.com/optout",
        "--link-role", "2=optout",
    )  # fmt: skip
    env.cli("campaign", "send", "spring-sale")
    # A second campaign, so the list compares something (and its clicks must not leak).
    env.cli(
        "campaign", "create", "Weekend Flash",
        "--template", "Flash sale this weekend only: https://shop.example.com/flash",
    )  # fmt: skip
    env.cli("campaign", "send", "weekend-flash")
    key = env.cli("keys", "create").stdout.strip()
    auth = {"Authorization": f"Bearer {key}"}
    outbox = _outbox(env)
    index = {phone(i): i for i in range(N)}
    by_recipient = {
        index[m["to"]]: (m["message_id"], _tokens(m["body"]))
        for m in outbox
        if m["body"].startswith("Hi ")
    }
    flash = {index[m["to"]]: (m["message_id"], _tokens(m["body"])) for m in outbox
             if m["body"].startswith("Flash")}  # fmt: skip
    assert len(by_recipient) == len(flash) == N

    server = server_factory(env, settings={"CLICKTRAIL_TRUSTED_PROXIES": "127.0.0.1"})
    with httpx.Client(base_url=server.base, timeout=10) as http:
        # Delivered between 1½ and 16 minutes ago, so the taps below spread over the chart.
        now = datetime.now(UTC)

        def ago(i: int) -> str:
            return (now - timedelta(seconds=90 + 47 * (i % 20))).isoformat().replace("+00:00", "Z")

        receipts = [
            {"message_id": by_recipient[i][0], "status": "delivered", "at": ago(i)}
            for i in range(DELIVERED)
        ] + [
            {"message_id": by_recipient[i][0], "status": "failed", "at": ago(i)}
            for i in range(DELIVERED, DELIVERED + FAILED)
        ]
        receipts += [
            {"message_id": flash[i][0], "status": "delivered", "at": ago(i)} for i in range(N - 4)
        ]
        r = http.post("/v1/messages/status", json=receipts, headers=auth)
        assert r.json()["applied"] == len(receipts), r.text

        def tap(
            i: int,
            link: int,
            ua: str = UA_IPHONE,
            browser_like: bool = True,
            messages: dict[int, tuple[str, list[str]]] = by_recipient,
        ) -> str:
            headers = {"Host": "sms.example.com", "User-Agent": ua}
            if browser_like:
                headers |= BROWSER_HEADERS | (CHROME_HINTS if ua == UA_ANDROID else {})
                headers["X-Forwarded-For"] = f"172.{56 + i // 250}.{i % 250}.7"  # own phone
            else:
                headers["X-Forwarded-For"] = "203.0.113.9"
            resp = http.get(f"/c/{messages[i][1][link]}", headers=headers)
            assert resp.status_code == 302, resp.text
            return str(resp.headers["location"])

        landed = {i: tap(i, 0, UA_IPHONE if i % 4 else UA_ANDROID) for i in CLICKERS}
        for i in REPEATERS:
            tap(i, 0, UA_IPHONE if i % 4 else UA_ANDROID)
        for i in OPTOUTS:
            tap(i, 1)
        for i in SCANNED:
            tap(i, 0, "curl/8.5.0", browser_like=False)
        for i in PROBED:
            probe = http.head(f"/c/{by_recipient[i][1][0]}", headers={"Host": "sms.example.com"})
            assert probe.status_code == 302, probe.text
        for i in range(50, 62):
            tap(i, 0, UA_ANDROID if i % 3 else UA_IPHONE, messages=flash)
        expected_gets = len(CLICKERS) + len(REPEATERS) + len(OPTOUTS) + len(SCANNED)
        expected_requests = expected_gets + len(PROBED)
        _wait_for_requests(http, auth, "spring-sale", expected_requests)
        _wait_for_requests(http, auth, "weekend-flash", 12)
        api = http.get("/v1/campaigns/spring-sale/report", headers=auth).json()
        # Purchases reported server to server with the click id the landing page got; the jobs
        # process attributes them within a pass or two (last click: to spring-sale's link 1).
        for i in BUYERS:
            cid = re.search(r"[?&]ct_cid=([^&]+)", landed[i])
            assert cid is not None, landed[i]
            r = http.post("/v1/conversions", headers=auth, json={
                "click_id": cid.group(1), "event": "purchase", "value": "25.00",
                "currency": "USD", "txn": f"order-{i}"})  # fmt: skip
            assert r.status_code in (200, 201), r.text
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            conv = http.get("/v1/campaigns/spring-sale/report/conversions", headers=auth).json()
            if conv["conversions"] == len(BUYERS):
                break
            time.sleep(0.2)
        else:
            pytest.fail(f"the purchases were not attributed in 20 s: {conv}")

    # The API's report agrees with what the test did: the headline without the opt-out link,
    # every link in `all_links`.
    assert (api["sent"], api["delivered"], api["failed"]) == (N, DELIVERED, FAILED)
    assert api["total_clicks"] == len(CLICKERS) + len(REPEATERS)
    assert api["all_links"]["total_clicks"] == len(CLICKERS) + len(REPEATERS) + len(OPTOUTS)
    assert api["all_links"]["raw_total_clicks"] == expected_gets
    assert api["requests"] == expected_requests
    assert not api["provisional"]["final"]  # the 15-minute settle window is still open

    # `make screenshots` refreshes docs/screenshots/ from the SQLite run; plain test runs leave
    # the committed images alone (their times would change every run).
    save = database_url.startswith("sqlite") and bool(os.environ.get("CLICKTRAIL_SCREENSHOTS"))
    if save:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def shot(page: Any, name: str) -> None:
        if save:
            page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)

    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    console_errors: list[str] = []
    page.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)
    base = server.base + "/dashboard"

    # Signed out, every page leads to the login form; a wrong key is refused.
    page.goto(base + "/campaigns/spring-sale")
    assert "/dashboard/login" in page.url
    shot(page, "dashboard-login")
    page.fill("#key", "ct_not-a-real-key")
    page.click("button[type=submit]")
    assert "not a valid API key" in page.locator(".alert").inner_text()
    page.fill("#key", key)
    page.click("button[type=submit]")
    page.wait_for_url("**/dashboard/campaigns/spring-sale")  # back where the user wanted to go
    cookie = next(c for c in context.cookies() if c["name"] == "ct_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert key not in cookie["value"]
    console_errors.clear()  # the refused key's 401 is logged by the browser

    # Campaign report: every figure as the test made it.
    ctr = f"{len(CLICKERS) / DELIVERED:.1%}"
    assert _metric(page, "sent") == str(N)
    assert _metric(page, "delivered") == str(DELIVERED)
    assert _metric(page, "clicks") == str(len(CLICKERS) + len(REPEATERS))
    assert _metric(page, "unique") == str(len(CLICKERS))
    assert _metric(page, "ctr") == ctr == "40.0%"
    assert _metric(page, "repeat") == "1.25×"
    assert _metric(page, "optouts") == str(len(OPTOUTS))
    delivery = page.locator("#delivery")
    assert _metric(delivery, "delivered") == str(DELIVERED)
    assert _metric(delivery, "failed") == str(FAILED)
    assert _metric(delivery, "awaiting-receipt") == str(N - DELIVERED - FAILED)
    offer, optout = (
        page.locator('#links tr[data-link="1"]'),
        page.locator('#links tr[data-link="2"]'),
    )
    assert "https://shop.example.com/spring" in offer.inner_text()
    assert (_metric(offer, "clicks"), _metric(offer, "unique"), _metric(offer, "ctr")) == (
        str(len(CLICKERS) + len(REPEATERS)),
        str(len(CLICKERS)),
        ctr,
    )
    assert (_metric(optout, "clicks"), _metric(optout, "unique"), _metric(optout, "ctr")) == (
        str(len(OPTOUTS)),
        str(len(OPTOUTS)),
        f"{len(OPTOUTS) / DELIVERED:.1%}",
    )
    timing = page.locator("#timing").inner_text()
    assert f"First hour, per minute · {len(CLICKERS) + len(REPEATERS)} clicks" in timing
    bots = page.locator("#bots")
    # One denominator, named: every request (GETs and HEAD probes alike).
    counted_all = len(CLICKERS) + len(REPEATERS) + len(OPTOUTS)
    assert _metric(bots, "requests") == str(expected_requests)
    assert f"{expected_requests} requests on this campaign's links" in bots.inner_text()
    assert f"{expected_gets} GET, {len(PROBED)} HEAD or other probes" in bots.inner_text()
    assert _metric(bots, "not-counted") == str(expected_requests - counted_all)
    assert _metric(bots, "probe") == str(len(PROBED))
    probe_share = f"{len(PROBED) / expected_requests:.1%}"
    assert probe_share in bots.locator("li", has_text="Probe").inner_text()
    # Not final yet: the counted clicks that may still move, and when they settle.
    finality = page.locator("#finality")
    assert finality.get_attribute("data-final") == "no"
    assert _metric(finality, "provisional") == str(len(CLICKERS) + len(REPEATERS))
    assert "900 s settle window" in finality.inner_text()
    assert " ".join(page.locator("#counted-clicks").inner_text().split()) == COUNTED_CLICKS
    assert page.locator("#bots table.barlist tr").count() >= 1  # reasons listed
    assert "iOS" in page.locator("#devices").inner_text()
    # Conversions: 5 purchases of 25.00 USD, credited to their clicks (last click, 5 days).
    conv_card = page.locator("#conversions")
    assert "last click, click window 5d, delivery window 12h" in conv_card.inner_text()
    assert _metric(conv_card, "conversions") == str(len(BUYERS))
    assert _metric(conv_card, "conversion-rate") == f"{len(BUYERS) / DELIVERED:.1%}" == "5.0%"
    assert _metric(conv_card, "ctcr") == f"{len(BUYERS) / len(CLICKERS):.1%}" == "12.5%"
    assert _metric(conv_card, "revenue-USD") == "125.00"
    assert _metric(conv_card, "rpm-USD") == f"{125 / DELIVERED:.4f}"
    assert _metric(conv_card.locator('tr[data-conversion-link="1"]'), "conversions") == "5"
    shot(page, "dashboard-report")

    # Campaigns list: the same engagement figures.
    page.click("nav.mainnav >> text=Campaigns")
    row = page.locator('#campaigns tr[data-campaign="spring-sale"]')
    assert _metric(row, "delivered") == str(DELIVERED)
    assert _metric(row, "clicks") == str(len(CLICKERS) + len(REPEATERS))
    assert _metric(row, "unique") == str(len(CLICKERS))
    assert _metric(row, "ctr") == ctr
    other = page.locator('#campaigns tr[data-campaign="weekend-flash"]')
    assert (_metric(other, "delivered"), _metric(other, "unique")) == (str(N - 4), "12")
    shot(page, "dashboard-campaigns")

    # Recipients: 40 who clicked, 25 a page; next, previous, search.
    page.goto(base + "/campaigns/spring-sale/recipients")
    table = page.locator("#recipients tbody tr")
    assert table.count() == 25
    assert page.locator("#range").inner_text().startswith("1–25 of 40")
    shot(page, "dashboard-recipients")
    first_page = table.all_inner_texts()
    page.click("a[rel=next]")
    assert table.count() == len(CLICKERS) - 25
    assert page.locator("#range").inner_text().startswith("26–40 of 40")
    assert page.locator("span.btn.disabled", has_text="Next").count() == 1
    assert not set(first_page) & set(table.all_inner_texts())
    page.click("a[rel=prev]")
    assert table.all_inner_texts() == first_page
    page.fill("#q", "cust-0007")
    page.press("#q", "Enter")
    assert table.count() == 1
    assert phone(7) in table.first.inner_text()
    assert table.first.locator("td.num").inner_text() == "2"  # 7 is a repeater
    page.fill("#q", "cust-0050")  # never clicked
    page.press("#q", "Enter")
    assert "No recipient who clicked matches" in table.first.inner_text()

    # Requests: the raw log, 25 a page, bots labelled with their reasons (on the last page).
    page.goto(base + "/campaigns/spring-sale/requests")
    log = page.locator("#requests tbody tr")
    seen = log.count()
    while page.locator("a[rel=next]").count():
        page.click("a[rel=next]")
        assert log.first.locator("td").first.inner_text() == str(seen + 1)  # numbered on
        seen += log.count()
    assert seen == expected_requests
    scanner = page.locator("#requests tbody tr", has_text="curl/8.5.0")
    assert scanner.count() == len(SCANNED)
    assert "UA_BOT_LIST" in scanner.first.inner_text()
    shot(page, "dashboard-requests")

    # Attacker-controlled text shows literally and never runs.
    env.cli(
        "campaign", "create", EVIL_NAME, "--template", f"Look: {EVIL_URL} now", "--slug", "evil"
    )
    env.cli("campaign", "send", "evil")
    evil = next(m for m in _outbox(env) if m["body"].startswith("Look: "))
    evil_token = _tokens(evil["body"])[0]
    with httpx.Client(base_url=server.base, timeout=10) as http:
        r = http.get(f"/c/{evil_token}", headers={"Host": "sms.example.com", "User-Agent": EVIL_UA})
        assert r.status_code == 302
        _wait_for_requests(http, auth, "evil", 1)
    page.goto(base + "/")
    assert page.locator('#campaigns tr[data-campaign="evil"] a').inner_text() == EVIL_NAME
    page.goto(base + "/campaigns/evil")
    assert EVIL_NAME in page.locator("h1").inner_text()
    assert page.locator("#links td.url").first.inner_text() == EVIL_URL
    page.goto(base + "/campaigns/evil/requests")
    assert page.locator("#requests td.ua").first.inner_text() == EVIL_UA
    assert page.locator("#requests script, #requests img, h1 script").count() == 0
    assert dialogs == []
    assert console_errors == []

    # Signing out deletes the session cookie: pages lead to the login form again.
    page.click("text=Sign out")
    page.wait_for_url("**/dashboard/login")
    page.goto(base + "/")
    assert "/dashboard/login" in page.url
    context.close()

    # Forms refuse what did not come from them: a login POST without the form's token.
    with httpx.Client(base_url=server.base, timeout=10) as http:
        r = http.post("/dashboard/login", data={"key": key})
        assert r.status_code == 403 and "ct_session" not in r.headers.get("set-cookie", "")
        r = http.get("/dashboard/login")
        assert "default-src 'none'" in r.headers["content-security-policy"]
    server.stop()


# -- the pieces the browser test relies on, checked directly --------------------------------------


def test_session_cookie_is_signed_and_expires(tmp_path: Path) -> None:
    from clicktrail.web.dashboard.session import Signer, load_secret

    secret = load_secret(tmp_path / "dashboard.secret")
    assert load_secret(tmp_path / "dashboard.secret") == secret  # created once, then reused
    assert (tmp_path / "dashboard.secret").stat().st_mode & 0o777 == 0o600
    signer = Signer(secret)
    session = signer.new_session("ws_1", "ab" * 32, now=1000.0)
    value = signer.dump(session)
    assert signer.load(value, now=1001.0) == session
    assert signer.load(value, now=session.expires) is None  # expired
    version, payload, mac = value.split(".")
    assert signer.load(f"{version}.{payload}x.{mac}", now=1001.0) is None  # tampered
    assert Signer(b"another secret of 32 bytes......").load(value, now=1001.0) is None
    assert signer.load("garbage", now=1001.0) is None
    assert signer.check_login_token("nonce", signer.login_token("nonce"))
    assert not signer.check_login_token("other", signer.login_token("nonce"))
    assert not signer.check_login_token(None, signer.login_token("nonce"))


def test_login_redirects_stay_on_the_dashboard() -> None:
    from clicktrail.web.dashboard.routes import _local_next

    assert _local_next("/dashboard/campaigns/x?q=1") == "/dashboard/campaigns/x?q=1"
    for evil in ("https://evil.example/", "//evil.example/dashboard/", "/dashboard/..//evil",
                 "/\\evil.example", "/v1/campaigns", "", None, "javascript:alert(1)"):  # fmt: skip
        assert _local_next(evil) == "/dashboard/"


def test_chart_axes_use_whole_round_steps() -> None:
    from clicktrail.web.dashboard.charts import column_chart, stacked

    chart = column_chart([("a", 0), ("b", 3), ("c", 185)], ticks=["0", "1", "2"])
    assert [t.label for t in chart.y_ticks] == ["0", "50", "100", "150", "200"]
    assert chart.columns[0].height == 0 and chart.total == 188
    empty = column_chart([("a", 0)])
    assert [t.label for t in empty.y_ticks] == ["0", "1", "2", "3", "4"]
    parts = stacked([("x", 3, "good"), ("y", 1, "bad"), ("z", 0, "muted")])
    assert [p.width for p in parts] == [75.0, 25.0, 0.0] and parts[1].x == 75.0
    assert [p.share for p in stacked([("x", 0, "good")])] == [None]


LIFT_N = 300  # recipients; a 20 % holdout: 60 held out, 240 sent
LIFT_TREATED_CONVERT, LIFT_HELD_CONVERT = 24, 3  # 10 % against 5 %: a lift of 5 points


def lift_phone(i: int) -> str:
    """Return lift recipient i's phone number (fictional 555 numbers)."""
    return f"+1415555{i:04d}"


def test_dashboard_shows_lift_with_its_interval(
    env: Env, server_factory: type, browser: Any
) -> None:
    csv_path = env.data_dir / "lift.csv"
    csv_path.write_text(
        "phone,external_id\n" + "".join(f"{lift_phone(i)},lift-{i:04d}\n" for i in range(LIFT_N)),
        encoding="utf-8",
    )
    env.cli("workspace", "create", "Acme Lift")
    env.cli("domain", "add", "sms.example.com")
    env.cli("contacts", "import", str(csv_path))
    env.cli(
        "campaign", "create", "Lift Test", "--template", "Deals: https://shop.example.com/lift",
        "--holdout", "20%", "--holdout-seed", "7",
    )  # fmt: skip
    sent = env.cli("campaign", "send", "lift-test").stdout
    assert "held out 60 contact(s)" in sent
    key = env.cli("keys", "create").stdout.strip()
    auth = {"Authorization": f"Bearer {key}"}
    outbox = _outbox(env)
    treated = sorted(m["to"] for m in outbox)
    held = sorted({lift_phone(i) for i in range(LIFT_N)} - set(treated))
    assert (len(treated), len(held)) == (240, 60)

    server = server_factory(env)
    with httpx.Client(base_url=server.base, timeout=30) as http:
        now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        receipts = [
            {"message_id": m["message_id"], "status": "delivered", "at": now} for m in outbox
        ]
        assert http.post("/v1/messages/status", json=receipts, headers=auth).status_code == 200
        buyers = treated[:LIFT_TREATED_CONVERT] + held[:LIFT_HELD_CONVERT]
        r = http.post(
            "/v1/conversions",
            json={"conversions": [
                {"event": "purchase", "value": "20.00", "currency": "USD", "txn": f"o-{i}",
                 "contact": {"phone": p}}
                for i, p in enumerate(buyers)
            ]},
            headers=auth,
        )  # fmt: skip
        assert r.status_code < 300, r.text
        # The first lift of a server imports statsmodels and scipy: give it time on a busy machine.
        api = http.get("/v1/campaigns/lift-test/report/lift", headers=auth, timeout=180).json()
    assert (api["treated"], api["holdout_arm"]) == (
        {"contacts": 240, "converted": 24}, {"contacts": 60, "converted": 3},
    )  # fmt: skip
    assert api["absolute_lift"] == pytest.approx(0.05)
    assert api["too_small"]  # 3 converting held-out contacts: fewer than 10

    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    console_errors: list[str] = []
    page.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)
    page.goto(server.base + "/dashboard/campaigns/lift-test")
    page.fill("#key", key)
    page.click("button[type=submit]")
    page.wait_for_url("**/dashboard/campaigns/lift-test")
    card = page.locator("#lift")
    assert _metric(card, "treated-rate") == "10.00%"
    assert _metric(card, "holdout-rate") == "5.00%"
    assert _metric(card, "lift") == "+5.00 pts"
    low, high = api["absolute_interval"]["low"], api["absolute_interval"]["high"]
    assert low < 0.05 < high
    assert _metric(card, "lift-interval") == f"95 % CI {low * 100:+.2f} to {high * 100:+.2f} pts"
    assert _metric(card, "relative-lift") == "+100.0%"
    assert _metric(card, "p-value") == f"{api['p_value']:.4f}"
    assert _metric(card, "revenue-lift-USD") == "+1.00"  # 24 × 20 / 240 − 3 × 20 / 60
    assert "Too small a sample to trust" in page.locator("#lift-too-small").inner_text()
    assert "60 of 300 reachable contacts held out (20%, seed 7)" in card.inner_text()
    assert card.locator("svg.chart-interval").count() == 1
    assert not console_errors
    context.close()


MT_N = 6  # recipients of the multi-touch campaign
MT_EMAILED = range(2)  # opened an email before buying: their paths are (SMS delivery, email)
MT_BUYERS = range(3)  # the third bought after the SMS alone


def test_dashboard_shows_multi_touch_credit_on_request(
    env: Env, server_factory: type, browser: Any, database_url: str
) -> None:
    csv_path = env.data_dir / "mt.csv"
    csv_path.write_text(
        "phone,external_id\n" + "".join(f"{lift_phone(i)},mt-{i}\n" for i in range(MT_N)),
        encoding="utf-8",
    )
    env.cli("workspace", "create", "Acme Channels")
    env.cli("domain", "add", "sms.example.com")
    env.cli("contacts", "import", str(csv_path))
    env.cli("campaign", "create", "Channel Mix", "--template", "Deals: https://shop.example.com/x")
    env.cli("campaign", "send", "channel-mix")
    key = env.cli("keys", "create").stdout.strip()
    auth = {"Authorization": f"Bearer {key}"}
    outbox = _outbox(env)
    assert len(outbox) == MT_N

    server = server_factory(env)
    with httpx.Client(base_url=server.base, timeout=30) as http:
        now = datetime.now(UTC)
        receipts = [{"message_id": m["message_id"], "status": "delivered",
                     "at": (now - timedelta(minutes=2)).isoformat().replace("+00:00", "Z")}
                    for m in outbox]  # fmt: skip
        assert http.post("/v1/messages/status", json=receipts, headers=auth).status_code == 200
        touches = http.post("/v1/touchpoints", headers=auth, json={"touchpoints": [
            {"channel": "email", "contact": {"phone": lift_phone(i)},
             "occurred_at": (now - timedelta(minutes=1)).timestamp()}
            for i in MT_EMAILED]})  # fmt: skip
        assert touches.status_code < 300, touches.text
        bought = http.post("/v1/conversions", headers=auth, json={"conversions": [
            {"event": "purchase", "value": "10.00", "currency": "USD", "txn": f"mt-{i}",
             "contact": {"phone": lift_phone(i)}} for i in MT_BUYERS]})  # fmt: skip
        assert bought.status_code < 300, bought.text
        api = http.get("/v1/attribution/channels", headers=auth).json()
    sms, email = ({c["channel"]: c for c in api["channels"]}[ch] for ch in ("sms", "email"))
    # linear and position-based: 1/2 each on the two-touch paths, 1 on the SMS-only one; last
    # click: the email is the only click-like touch (a delivery is a view).
    assert sms["credit"]["linear"] == sms["credit"]["position_based"] == 2.0
    assert (email["credit"]["linear"], email["credit"]["last_click"]) == (1.0, 2.0)
    assert sms["credit"]["last_click"] == 0

    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    console_errors: list[str] = []
    page.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)
    page.goto(server.base + "/dashboard/campaigns/channel-mix")
    page.fill("#key", key)
    page.click("button[type=submit]")
    page.wait_for_url("**/dashboard/campaigns/channel-mix")
    # Not computed until asked: the card offers it.
    card = page.locator("#multi-touch")
    assert card.locator("table").count() == 0
    assert "every conversion of the workspace" in card.inner_text()
    page.click("#show-multi-touch")
    page.wait_for_url("**/dashboard/campaigns/channel-mix?multi_touch=1#multi-touch")
    card = page.locator("#multi-touch")
    headers = card.locator("thead th").all_inner_texts()
    assert [h.lower() for h in headers[3:]] == [
        "linear", "time decay", "position-based", "last click",
    ]  # fmt: skip
    assert _metric(card, "mt-conversions") == str(len(MT_BUYERS))
    assert _metric(card, "mt-with-touches") == str(len(MT_BUYERS))
    rows = {
        "campaign:channel-mix": card.locator('tr[data-credit-row="campaign:channel-mix"]'),
        "sms": card.locator('tr[data-credit-row="sms"]'),
        "email": card.locator('tr[data-credit-row="email"]'),
    }
    expected = {"campaign:channel-mix": sms, "sms": sms, "email": email}
    for name, row in rows.items():
        want = expected[name]
        assert _metric(row, "touches") == str(want["touches"])
        assert _metric(row, "conversions") == str(want["conversions"])
        for model in ("linear", "time_decay", "position_based", "last_click"):
            assert _metric(row, model) == f"{want['credit'][model]:.2f}", (name, model)
    assert [_metric(rows["sms"], m) for m in ("linear", "last_click")] == ["2.00", "0.00"]
    assert [_metric(rows["email"], m) for m in ("linear", "last_click")] == ["1.00", "2.00"]
    assert "This campaign (channel-mix, SMS)" in rows["campaign:channel-mix"].inner_text()
    assert "Half-life 7d" in card.inner_text()
    assert not console_errors
    if database_url.startswith("sqlite") and os.environ.get("CLICKTRAIL_SCREENSHOTS"):
        card.screenshot(path=str(SCREENSHOTS / "dashboard-multi-touch.png"))  # make screenshots
    context.close()
