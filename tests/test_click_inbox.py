"""The click inbox: spool lines stored as they are, then moved to `clicks` with verdicts."""

from __future__ import annotations

from pathlib import Path

import orjson
import sqlalchemy as sa

from clicktrail.domain.bots.model import Verdict
from clicktrail.services.ports import StoredRequest
from clicktrail.storage.inbox import InboxWriter
from clicktrail.storage.resolver import TokenResolver
from clicktrail.storage.sql_store import SqlStore
from factories import make_campaign, make_contacts, make_domain, make_workspace, send, tokens_of

HOSTILE_UA = 'Mozilla/5.0 "quoted" back\\slash \\u00e9 tab\there é ü 中文 \\. end'


def test_lines_survive_the_inbox_byte_for_byte_and_move_once(
    store: SqlStore, engine: sa.Engine, tmp_path: Path
) -> None:
    ws = make_workspace(store)
    make_domain(store, ws)
    make_contacts(store, ws, 2)
    cp = make_campaign(store, ws, "Go https://shop.example.com/x")
    send(store, ws, cp, tmp_path / "o.jsonl")
    (tok, _, _), _ = tokens_of(store, cp)
    resolver = TokenResolver(engine)
    t = resolver.resolve(tok)
    resolver.close()
    assert t is not None
    headers = {"accept": "text/html", "referer": "https://a.example/?q=\\x", "_http": "1.1"}
    rows = [
        [f"cid-{i}", tok, t.campaign_id, t.link_id, t.message_id, t.contact_id,
         1_700_000_000_000_000 + i, "GET", "203.0.113.9", HOSTILE_UA, headers]
        for i in range(3)
    ]  # fmt: skip
    lines = [orjson.dumps(r) + b"\n" for r in rows]
    writer = InboxWriter(engine)
    try:
        assert writer(lines) == 3
        assert writer(lines[:1]) == 1  # a replayed spool line
    finally:
        writer.close()
    assert store.inbox_size() == 4

    seen: list[StoredRequest] = []

    def classify(req: StoredRequest) -> Verdict:
        seen.append(req)
        return Verdict("human", 0, (), "test")

    assert store.move_inbox(classify) == 4
    assert store.inbox_size() == 0
    assert store.move_inbox(classify) == 0
    assert {r.user_agent for r in seen} == {HOSTILE_UA}
    assert all(r.headers == headers for r in seen)
    with engine.connect() as conn:
        stored = conn.execute(
            sa.text("SELECT click_id, user_agent, verdict FROM clicks ORDER BY click_id")
        ).all()
    assert [tuple(r) for r in stored] == [(f"cid-{i}", HOSTILE_UA, "human") for i in range(3)]
