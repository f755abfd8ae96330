"""A process rescoring engagement scores killed with SIGKILL mid-rescore, on SQLite and
PostgreSQL: the rows it reached carry the new epoch, the rest stay stale, and a process started
afterwards finishes them — to the rows a full recompute gives."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import sqlalchemy as sa

from clicktrail.domain.bots.model import Verdict
from clicktrail.domain.clicks import ClickRecord
from clicktrail.domain.engagement import DAY_US
from clicktrail.services import engagement
from clicktrail.storage import tables as t
from clicktrail.storage.engagement import EngagementQueries
from factories import (
    NOW_US,
    PYTHONPATH,
    Repos,
    make_campaign,
    make_contacts,
    make_domain,
    make_workspace,
    send,
)

CONTACTS = 60
# The rescoring process: the jobs' job, two contacts a pass, passes 0.2 s apart, until killed.
CHILD = """
import sys, time
from clicktrail.services import engagement
from clicktrail.storage.database import create_engine
from clicktrail.storage.engagement import EngagementQueries
store = EngagementQueries(create_engine(sys.argv[1]))
while True:
    engagement.rescore_stale(store, int(sys.argv[2]), budget=2, batch=1)
    time.sleep(0.2)
"""


def _rows(engine: sa.Engine) -> list[tuple[object, ...]]:
    ce = t.contact_engagement
    cols = [c for c in ce.c if c.name != "updated_us"]
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.select(*cols).order_by(ce.c.contact_id))]


def test_a_rescore_killed_midway_is_finished_by_the_next_process(
    store: Repos, database_url: str, tmp_path: Path
) -> None:
    ws = make_workspace(store)
    make_domain(store, ws)
    contacts = make_contacts(store, ws, CONTACTS)
    cp = make_campaign(store, ws, "Sale https://shop.example.com/a")
    send(store, ws, cp, tmp_path / "outbox.jsonl")
    with store.engine.connect() as conn:
        msgs = dict(conn.execute(sa.select(t.messages.c.contact_id, t.messages.c.id)).all())
    recs = [
        ClickRecord(f"ck{i}", f"tk{i}", cp.id, cp.links[0].id, msgs[c.id], c.id,
                    NOW_US - i * DAY_US, "GET", "203.0.113.7", "Mozilla/5.0", {})
        for i, c in enumerate(contacts)
    ]  # fmt: skip
    store.clicks.insert_clicks(recs, [Verdict("human", 5, ())] * len(recs))
    eng = EngagementQueries(store.engine)
    engagement.refresh_dirty(eng, NOW_US)
    view = engagement.set_settings(eng, ws, {"click_weight": 25, "half_life_days": 7}, NOW_US)
    assert (view.stale, view.kept) == (CONTACTS, CONTACTS)
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, database_url, str(NOW_US)],
        env={**os.environ, **PYTHONPATH},
    )
    try:
        deadline = time.monotonic() + 60
        while engagement.get_settings(eng, ws).stale > CONTACTS // 2:
            assert child.poll() is None and time.monotonic() < deadline
            time.sleep(0.02)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    left = engagement.get_settings(eng, ws)
    assert 0 < left.stale <= CONTACTS // 2 and left.rescored == CONTACTS - left.stale
    assert engagement.rescore_stale(eng, NOW_US) == left.stale  # the next process: the rest
    assert engagement.get_settings(eng, ws).stale == 0
    background = _rows(store.engine)
    with store.engine.begin() as conn:
        conn.execute(t.contact_engagement.delete())
    engagement.recompute(eng, ws, NOW_US)
    assert _rows(store.engine) == background
