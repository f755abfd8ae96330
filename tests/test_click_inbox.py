"""The click inbox: spool lines stored as they are, then moved to `clicks` with verdicts."""

from __future__ import annotations

from pathlib import Path

import orjson
import sqlalchemy as sa

from clicktrail.domain.bots.model import Verdict
from clicktrail.services.clicks import move_inbox
from clicktrail.services.ports import StoredRequest
from clicktrail.storage.inbox import InboxWriter
from clicktrail.storage.resolver import TokenResolver
from factories import (
    Repos,
    make_campaign,
    make_contacts,
    make_domain,
    make_workspace,
    send,
    tokens_of,
)

HOSTILE_UA = 'Mozilla/5.0 "quoted" back\\slash \\u00e9 tab\there é ü 中文 \\. end'


def test_lines_survive_the_inbox_byte_for_byte_and_move_once(
    store: Repos, engine: sa.Engine, tmp_path: Path
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
    assert store.clicks.inbox_size() == 4

    seen: list[StoredRequest] = []

    def classify(req: StoredRequest) -> Verdict:
        seen.append(req)
        return Verdict("human", 0, (), "test")

    assert move_inbox(store.clicks, classify) == 4
    assert store.clicks.inbox_size() == 0
    assert move_inbox(store.clicks, classify) == 0
    assert {r.user_agent for r in seen} == {HOSTILE_UA}
    assert all(r.headers == headers for r in seen)
    with engine.connect() as conn:
        stored = conn.execute(
            sa.text("SELECT click_id, user_agent, verdict FROM clicks ORDER BY click_id")
        ).all()
    assert [tuple(r) for r in stored] == [(f"cid-{i}", HOSTILE_UA, "human") for i in range(3)]


def _rows(tok: str, t: object, start: int, count: int) -> list[bytes]:
    return [
        orjson.dumps(
            [f"cid-{i:05d}", tok, t.campaign_id, t.link_id, t.message_id, t.contact_id,  # type: ignore[attr-defined]
             1_700_000_000_000_000 + i, "GET", "203.0.113.9", "UA", {"_http": "1.1"}]
        ) + b"\n"
        for i in range(start, start + count)
    ]  # fmt: skip


def _target(store: Repos, engine: sa.Engine, tmp_path: Path) -> tuple[str, object]:
    ws = make_workspace(store)
    make_domain(store, ws)
    make_contacts(store, ws, 1)
    cp = make_campaign(store, ws, "Go https://shop.example.com/x")
    send(store, ws, cp, tmp_path / "o.jsonl")
    (tok, _, _), *_ = tokens_of(store, cp)
    resolver = TokenResolver(engine)
    try:
        target = resolver.resolve(tok)
    finally:
        resolver.close()
    assert target is not None
    return tok, target


def _human(_req: StoredRequest) -> Verdict:
    return Verdict("human", 0, (), "test")


def test_a_write_is_one_row_and_batches_move_whole(
    store: Repos, engine: sa.Engine, tmp_path: Path
) -> None:
    tok, target = _target(store, engine, tmp_path)
    writer = InboxWriter(engine)
    try:
        assert writer(_rows(tok, target, 0, 300)) == 300
        assert writer(_rows(tok, target, 300, 50)) == 50
        assert writer(_rows(tok, target, 350, 700)) == 700
    finally:
        writer.close()
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT n FROM click_inbox ORDER BY seq")).scalars().all() == [
            300, 50, 700
        ]  # fmt: skip
    assert store.clicks.inbox_size() == 1050
    # A pass takes whole rows up to the limit: 300 + 50 (700 more would pass 400).
    assert move_inbox(store.clicks, _human, limit=400) == 350
    assert store.clicks.inbox_size() == 700
    # A row larger than the limit still moves (whole), never splits or sticks.
    assert move_inbox(store.clicks, _human, limit=100) == 700
    assert store.clicks.inbox_size() == 0
    assert move_inbox(store.clicks, _human, limit=100) == 0
    with engine.connect() as conn:
        ids = conn.execute(sa.text("SELECT click_id FROM clicks ORDER BY click_id")).scalars()
        assert list(ids) == [f"cid-{i:05d}" for i in range(1050)]


def test_migration_0013_keeps_waiting_clicks_both_ways(empty_url: str, tmp_path: Path) -> None:
    from alembic import command

    from clicktrail.storage.database import alembic_config, create_engine, migrate

    engine = create_engine(empty_url)
    try:
        cfg = alembic_config(engine)
        # A sent campaign, made by today's code at the head, then the schema taken back to 0012.
        migrate(engine)
        store = Repos.on(engine)
        tok, target = _target(store, engine, tmp_path)
        command.downgrade(cfg, "0012")
        old = _rows(tok, target, 0, 3)
        with engine.begin() as conn:  # rows as the server wrote them before: a line each
            for line in old:
                conn.execute(sa.text("INSERT INTO click_inbox (raw) VALUES (:r)"),
                             {"r": line.decode().rstrip("\n")})  # fmt: skip
        migrate(engine)
        assert store.clicks.inbox_size() == 3
        writer = InboxWriter(engine)
        try:
            writer(_rows(tok, target, 3, 4))  # one batch row of 4
        finally:
            writer.close()
        assert store.clicks.inbox_size() == 7
        # Down again: the batch is split into a row per line, nothing lost; then up and move.
        command.downgrade(cfg, "0012")
        with engine.connect() as conn:
            raws = conn.execute(sa.text("SELECT raw FROM click_inbox")).scalars().all()
        assert sorted(orjson.loads(r)[0] for r in raws) == [f"cid-{i:05d}" for i in range(7)]
        migrate(engine)
        assert move_inbox(store.clicks, _human) == 7
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM clicks")).scalar() == 7
    finally:
        engine.dispose()
