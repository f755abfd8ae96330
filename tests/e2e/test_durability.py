"""No click that received a redirect is lost: kill -9 and SIGTERM under load, on both databases.

Each request carries a unique User-Agent (stored with the click), so the test can tell exactly
which redirects reached the client and check each is stored exactly once.
"""

from __future__ import annotations

import json
import random
import threading
import time
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from conftest import Env, Server

pytestmark = pytest.mark.e2e

WORKERS = 8


def _setup(env: Env, tmp_path: Path) -> list[str]:
    csv_path = tmp_path / "r.csv"
    csv_path.write_text(
        "phone\n" + "".join(f"+1415555{i:04d}\n" for i in range(200)), encoding="utf-8"
    )
    env.cli("workspace", "create", "Durable")
    env.cli("domain", "add", "sms.example.com")
    env.cli("contacts", "import", str(csv_path))
    env.cli("campaign", "create", "D", "--template", "Go https://shop.example.com/d now")
    env.cli("campaign", "send", "d")
    lines = (env.data_dir / "outbox.jsonl").read_text().splitlines()
    return [json.loads(x)["body"].split("/c/")[1].split(" ")[0] for x in lines]


class Load:
    """Threads hammering the server with keep-alive GETs until stopped or the server dies."""

    def __init__(self, base: str, tokens: list[str]) -> None:
        self.base = base
        self.tokens = tokens
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.received: set[str] = set()  # user agents whose 302 reached us
        self.sent = 0
        self.threads = [threading.Thread(target=self._run, args=(i,)) for i in range(WORKERS)]

    def _run(self, worker: int) -> None:
        rng = random.Random(worker)
        n = 0
        with httpx.Client(base_url=self.base, timeout=5) as http:
            while not self.stop.is_set():
                ua = f"durability-test/{worker}/{n}"
                n += 1
                with self.lock:
                    self.sent += 1
                try:
                    r = http.get(
                        f"/c/{rng.choice(self.tokens)}",
                        headers={"Host": "sms.example.com", "User-Agent": ua},
                    )
                except httpx.TransportError:
                    return  # the server went away: this request may or may not be stored
                assert r.status_code == 302
                with self.lock:
                    self.received.add(ua)

    def __enter__(self) -> Load:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(timeout=30)


def _stored_user_agents(database_url: str) -> list[str]:
    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as conn:
            return list(conn.execute(sa.text("SELECT user_agent FROM clicks")).scalars())
    finally:
        engine.dispose()


def _wait_for(load: Load, count: int) -> None:
    deadline = time.monotonic() + 60
    while len(load.received) < count and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(load.received) >= count, "the load never got going"


def test_kill_9_under_load_loses_no_redirected_click(
    env: Env, server_factory: type[Server], tmp_path: Path
) -> None:
    tokens = _setup(env, tmp_path)
    # Clicks stay in the spool until the kill (no timed flush), so the replay does all the work.
    server = server_factory(
        env,
        settings={
            "CLICKTRAIL_CLICK_FLUSH_INTERVAL": "3600",
            "CLICKTRAIL_CLICK_FLUSH_MAX": "10000000",
        },
    )
    with Load(server.base, tokens) as load:
        _wait_for(load, 1500)
        server.kill()  # SIGKILL: no shutdown, no final flush
    received, sent = set(load.received), load.sent
    assert _stored_user_agents(env.database_url) == []  # all of it is in the spool
    # A restart replays the spool the dead process left; a graceful stop then drains.
    restarted = server_factory(env)
    restarted.stop()
    stored = _stored_user_agents(env.database_url)
    assert len(stored) == len(set(stored)), "a click was stored twice"
    missing = received - set(stored)
    assert not missing, f"{len(missing)} redirected clicks lost, e.g. {sorted(missing)[:3]}"
    assert len(stored) <= sent  # at most the in-flight requests beyond those we saw answered
    assert not list((env.data_dir / "spool").glob("clicks-*.jsonl")), "spool not emptied"


def test_sigterm_under_load_drains_every_click(
    env: Env, server_factory: type[Server], tmp_path: Path
) -> None:
    tokens = _setup(env, tmp_path)
    # A long flush interval: clicks sit in the buffer until the shutdown writes them.
    server = server_factory(
        env,
        settings={
            "CLICKTRAIL_CLICK_FLUSH_INTERVAL": "3600",
            "CLICKTRAIL_CLICK_FLUSH_MAX": "10000000",
        },
    )
    with Load(server.base, tokens) as load:
        _wait_for(load, 1000)
        server.stop()
    stored = _stored_user_agents(env.database_url)
    assert len(stored) == len(set(stored))
    assert load.received <= set(stored)
    assert not list((env.data_dir / "spool").glob("clicks-*.jsonl"))
