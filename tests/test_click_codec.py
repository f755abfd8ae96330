"""The click record's wire shape (domain/clicks.py): one named field list shared by the
redirect's tuple, the spool line and what storage reads back. Reordering a field would shift
every spooled click into the wrong column; these tests fail on any such change."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from clicktrail.domain.clicks import CLICK_FIELDS, ClickRecord, click_from_row
from clicktrail.domain.tokens import new_token
from clicktrail.services.ports import Target
from clicktrail.storage.clicklog import ClickLog
from clicktrail.web.redirect import RedirectApp

HOST = "sms.example.com"


def test_the_field_order_is_pinned() -> None:
    # Spooled and inboxed clicks outlive an upgrade: this order is a storage format.
    assert CLICK_FIELDS == (
        "click_id", "token", "campaign_id", "link_id", "message_id", "contact_id", "at_us",
        "method", "ip", "user_agent", "headers",
    )  # fmt: skip
    assert ClickRecord._fields == CLICK_FIELDS


async def _no_api(scope: Any, receive: Any, send: Any) -> None:  # pragma: no cover - unused
    raise AssertionError("not for the API")


def test_a_click_the_redirect_spools_reads_back_field_by_field(tmp_path: Path) -> None:
    token = new_token(os.urandom)
    # Distinct ids: a swap of any two of them shows.
    target = Target(11, 22, 33, 44, "https://shop.example.com/x", HOST, "/c/")
    lines: list[bytes] = []

    def write(batch: Sequence[Any]) -> int:
        lines.extend(batch)
        return len(batch)

    log = ClickLog(tmp_path, write, raw=True)  # raw: the lines as the inbox stores them
    log.start()
    app = RedirectApp(lambda t: target if t == token else None, log.record, _no_api)
    before_us = time.time_ns() // 1000

    async def click() -> httpx.Response:
        transport = httpx.ASGITransport(app=app, client=("203.0.113.5", 4242))
        async with httpx.AsyncClient(transport=transport, base_url=f"http://{HOST}") as c:
            return await c.get(
                f"/c/{token}", headers={"user-agent": "codec-test/1", "accept": "text/html"}
            )

    try:
        assert asyncio.run(click()).status_code == 302
    finally:
        log.close()
    assert len(lines) == 1
    rec = click_from_row(orjson.loads(lines[0]))
    assert isinstance(rec.click_id, str) and rec.click_id
    assert rec.token == token
    assert (rec.campaign_id, rec.link_id, rec.message_id, rec.contact_id) == (11, 22, 33, 44)
    assert before_us <= rec.at_us <= time.time_ns() // 1000
    assert rec.method == "GET"
    assert rec.ip == "203.0.113.5"
    assert rec.user_agent == "codec-test/1"
    assert rec.headers["accept"] == "text/html"


def test_a_row_without_one_value_per_field_is_refused() -> None:
    row = ["cid", "tok", 1, 2, 3, 4, 5, "GET", None, None, {}]
    assert click_from_row(row) == ClickRecord(*row)
    with pytest.raises(ValueError, match="11 values, got 10"):
        click_from_row(row[:-1])
