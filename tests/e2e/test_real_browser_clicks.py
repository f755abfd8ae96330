"""The bot rules against a real browser's request: Chromium follows tracked links.

Header-shape rules ("a modern browser UA without the headers that browser always sends") are
only trustworthy if a real browser passes them. Here Debian's Chromium follows tracked links on
the real server, and the stored requests must be judged human, with the headers Chromium really
sent stored raw; a plain HTTP client with Chromium's user agent but none of its headers must not
be.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from conftest import Env, Server

pytestmark = pytest.mark.e2e


def _setup(env: Env, tmp_path: Path, landing: str) -> list[str]:
    """Return the paths (``/c/TOKEN``) of four recipients' links to `landing`."""
    csv_path = tmp_path / "r.csv"
    csv_path.write_text("phone\n" + "".join(f"+1415555{i:04d}\n" for i in range(4)), "utf-8")
    env.cli("workspace", "create", "Browser")
    # The short domain is this machine, as in the demo (hosts match without their port).
    env.cli("domain", "add", "http://127.0.0.1")
    env.cli("contacts", "import", str(csv_path))
    env.cli("campaign", "create", "B", "--template", f"Go {landing} now")
    env.cli("campaign", "send", "b")
    lines = (env.data_dir / "outbox.jsonl").read_text().splitlines()
    return ["/c/" + json.loads(x)["body"].split(" ")[1].rsplit("/", 1)[1] for x in lines]


def _json(value: Any) -> Any:
    # SQLite returns JSON columns as text, PostgreSQL as parsed values.
    return json.loads(value) if isinstance(value, str) else value


def _stored(database_url: str) -> list[Any]:
    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as conn:
            return list(
                conn.execute(
                    sa.text("SELECT user_agent, headers, verdict, reasons, ip FROM clicks")
                )
            )
    finally:
        engine.dispose()


def test_chromium_taps_are_human_and_a_bare_client_is_not(
    env: Env, server_factory: type[Server], browser: Any, tmp_path: Path, database_url: str
) -> None:
    server = server_factory(env)
    # The landing page is the server's own health check: the browser needs somewhere to land
    # on this network-less machine.
    paths = _setup(env, tmp_path, server.base + "/healthz")
    links = [server.base + p for p in paths]
    # Headless Chromium says so in its user agent (and is rightly listed as a bot); a person's
    # Chrome sends the same request with the plain "Chrome" token, which is what this checks.
    probe = browser.new_page()
    ua = probe.evaluate("navigator.userAgent").replace("HeadlessChrome", "Chrome")
    probe.close()
    context = browser.new_context(user_agent=ua)
    page = context.new_page()
    try:
        for link in links[:2]:
            page.goto(link)
            assert page.url.startswith(server.base + "/healthz?utm_source=sms")
    finally:
        context.close()
    with httpx.Client(timeout=5) as http:  # Chromium's UA, none of its headers
        # A forged forwarding header: no trusted proxy is configured, so it must not count.
        r = http.get(links[2], headers={"User-Agent": ua, "X-Forwarded-For": "203.0.113.1"})
        assert r.status_code == 302
    server.stop()
    rows = _stored(database_url)
    assert len(rows) == 3

    chromium = [r for r in rows if "sec-fetch-mode" in _json(r.headers)]
    assert len(chromium) == 2, rows  # what Chromium really sends is stored raw
    for row in chromium:
        # No header-shape or user-agent rule fires on a real browser's request. (Timing may
        # make it "suspect": the tap comes within a second of the send, with no receipt.)
        assert not [r for r in _json(row.reasons) if r.startswith(("HDR_", "UA_"))], row
        assert row.verdict in ("human", "suspect"), row  # both count as clicks
    (bare,) = [r for r in rows if r not in chromium]
    assert bare.verdict not in ("human", "suspect"), bare
    assert bare.ip == "127.0.0.1", bare
    assert [r for r in _json(bare.reasons) if r.startswith("HDR_")], bare
