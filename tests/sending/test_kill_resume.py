"""Kill -9 and resume: a real `clicktrail campaign send` process is killed with SIGKILL at
random points several times, rerun, and every recipient gets the message exactly once.

Observed twice: through the outbox (the file is what recipients get) and through the generic
HTTP provider talking to a fake aggregator on 127.0.0.1 that records every request. With an
idempotency key, messages in doubt are sent again and the aggregator drops the repeats; without
one, they are held as `unknown` and never sent twice. SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sendkit import FakeAggregator

from clicktrail.bootstrap import Container
from clicktrail.config import load_settings
from clicktrail.services import providers
from clicktrail.storage import tables as t
from factories import (
    NOW_US,
    Repos,
    make_campaign,
    make_contacts,
    make_domain,
    make_workspace,
    phone,
)

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

CLI = [sys.executable, "-m", "clicktrail"]
N = 240
KILLS = 4


class Installation:
    """A database and data folder, the `clicktrail` command on them, and a campaign of N."""

    def __init__(self, database_url: str, data_dir: Path) -> None:
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("CLICKTRAIL_")}
        # The fake aggregator listens on 127.0.0.1 over http: the operator allows it.
        allow = {"CLICKTRAIL_OUTBOUND_ALLOW_NETWORKS": "127.0.0.0/8",
                 "CLICKTRAIL_OUTBOUND_ALLOW_HTTP": "1"}  # fmt: skip
        self.env.update(
            CLICKTRAIL_DATABASE_URL=database_url,
            CLICKTRAIL_DATA_DIR=str(data_dir),
            CLICKTRAIL_LOG_LEVEL="warning",
            **allow,
        )
        self.data_dir = data_dir
        self.container = Container(
            load_settings(env={"CLICKTRAIL_DATABASE_URL": database_url,
                               "CLICKTRAIL_DATA_DIR": str(data_dir), **allow})
        )  # fmt: skip
        store = Repos.on(self.container.engine)
        self.ws = make_workspace(store)
        make_domain(store, self.ws)
        make_contacts(store, self.ws, N)
        self.campaign = make_campaign(store, self.ws, "Hi {first_name}: https://shop.example.com/s")
        self.phones = {phone(i) for i in range(N)}

    def start(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [*CLI, "campaign", "send", self.campaign.slug, *args],
            env=self.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip

    def in_flight(self) -> int:
        """Messages left `sending` (handed over, or about to be, when the sender died)."""
        m = t.messages
        with self.container.engine.connect() as conn:
            return int(
                conn.execute(
                    sa.select(sa.func.count()).where(
                        m.c.campaign_id == self.campaign.id, m.c.status == "sending"
                    )
                ).scalar_one()
            )

    def statuses(self) -> Counter[str]:
        m = t.messages
        with self.container.engine.connect() as conn:
            return Counter(
                conn.execute(
                    sa.select(m.c.status).where(m.c.campaign_id == self.campaign.id)
                ).scalars()
            )

    def close(self) -> None:
        self.container.dispose()


@pytest.fixture
def inst(database_url: str, tmp_path: Path) -> Any:
    made = Installation(database_url, tmp_path / "data")
    yield made
    made.close()


def kill_at_random_points(
    inst: Installation, progress: Callable[[], int], args: list[str], rng: random.Random
) -> list[tuple[int, int]]:
    """Run the send KILLS times, SIGKILLing each run once `progress()` reaches a random target
    (targets spread over the send); return (progress at the kill, messages left in doubt)."""
    targets = sorted(rng.sample(range(5, N - 20), KILLS))
    kills = []
    for target in targets:
        proc = inst.start(*args)
        deadline = time.monotonic() + 120
        while progress() < target:
            assert proc.poll() is None, f"the sender ended early:\n{proc.communicate()[1]}"
            assert time.monotonic() < deadline, "no progress"
            time.sleep(0.002)
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=30)  # reaped: its pid no longer answers
        assert proc.returncode == -signal.SIGKILL
        kills.append((progress(), inst.in_flight()))
    return kills


def finish(inst: Installation, *args: str) -> dict[str, Any]:
    proc = inst.start(*args, "--json")
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    return dict(json.loads(out))


def test_outbox_send_killed_and_resumed_reaches_everyone_once(
    inst: Installation, capsys: pytest.CaptureFixture[str]
) -> None:
    outbox = inst.data_dir / "outbox.jsonl"

    def written() -> int:
        try:
            return outbox.read_bytes().count(b"\n")
        except FileNotFoundError:
            return 0

    # 400 messages a second in batches of 4: long enough to be killed anywhere in it.
    args = ["--rate", "400", "--batch-size", "4"]
    kills = kill_at_random_points(inst, written, args, random.Random(7))
    summary = finish(inst)
    assert summary["state"] == "done"
    lines = [json.loads(x) for x in outbox.read_text().splitlines()]
    per_phone = Counter(x["to"] for x in lines)
    assert set(per_phone) == inst.phones
    assert max(per_phone.values()) == 1, [p for p, n in per_phone.items() if n > 1]
    assert len({x["message_id"] for x in lines}) == N
    assert inst.statuses() == Counter(sent=N)
    with capsys.disabled():
        print(f"\noutbox kills (lines written, messages in doubt): {kills}")


def _add_http_provider(inst: Installation, name: str, url: str, idempotent: bool) -> None:
    request: dict[str, Any] = {
        "url": url + "/send",
        "body": {"to": "{to}", "text": "{body}", "ref": "{message_id}"},
    }
    if idempotent:
        request["idempotency_header"] = "Idempotency-Key"
    c = inst.container
    providers.add_provider(
        c.provider_repo, c.provider_kinds, inst.ws, name=name, kind="http",
        options={"request": request, "response": {"message_id": "message_id"}}, now_us=NOW_US,
    )  # fmt: skip


def test_http_send_with_idempotency_key_killed_and_resumed_reaches_everyone_once(
    inst: Installation, capsys: pytest.CaptureFixture[str]
) -> None:
    with FakeAggregator(delay=0.01) as agg:
        _add_http_provider(inst, "agg", agg.url, idempotent=True)

        def received() -> int:
            with agg.lock:
                return len(agg.requests)

        args = ["--provider", "agg", "--rate", "0", "--batch-size", "5"]
        kills = kill_at_random_points(inst, received, args, random.Random(11))
        summary = finish(inst)  # the job's provider: agg
    assert summary["state"] == "done"
    per_phone = agg.deliveries_per_phone()
    assert set(per_phone) == inst.phones
    assert max(per_phone.values()) == 1, [p for p, n in per_phone.items() if n > 1]
    keys = Counter(r["key"] for r in agg.requests)
    repeats = sum(n - 1 for n in keys.values())
    # The scenario happened: some kills left messages in doubt, they were sent again, and the
    # aggregator dropped the repeats by their key.
    assert sum(doubt for _, doubt in kills) >= 1 and repeats >= 1
    assert inst.statuses() == Counter(sent=N)
    with capsys.disabled():
        print(f"\nhttp+key kills (requests, in doubt): {kills}; repeats dropped: {repeats}")


def test_http_send_without_idempotency_holds_messages_in_doubt(
    inst: Installation, capsys: pytest.CaptureFixture[str]
) -> None:
    with FakeAggregator(delay=0.01) as agg:
        _add_http_provider(inst, "plain", agg.url, idempotent=False)

        def received() -> int:
            with agg.lock:
                return len(agg.requests)

        args = ["--provider", "plain", "--rate", "0", "--batch-size", "5"]
        kills = kill_at_random_points(inst, received, args, random.Random(13))
        in_doubt = sum(doubt for _, doubt in kills)
        summary = finish(inst)
        per_phone = agg.deliveries_per_phone()
        statuses = inst.statuses()
        # Nobody got two: messages in doubt were held, not sent again.
        assert max(per_phone.values()) == 1
        assert len(agg.requests) == len(agg.delivered)
        assert statuses["unknown"] == in_doubt >= 1
        assert summary["state"] == "held"
        assert statuses["sent"] == N - in_doubt
        # Everyone whose message was not in doubt got exactly one.
        m = t.messages
        with inst.container.engine.connect() as conn:
            held = set(
                conn.execute(
                    sa.select(m.c.to_phone).where(
                        m.c.campaign_id == inst.campaign.id, m.c.status == "unknown"
                    )
                ).scalars()
            )
        assert set(per_phone) | held == inst.phones
        # The operator takes them as sent; the job is done and nothing more goes out.
        proc = subprocess.run(
            [*CLI, "campaign", "release", inst.campaign.slug, "--assume-sent"],
            env=inst.env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        assert f"{in_doubt} message(s) taken as sent" in proc.stdout
        before = len(agg.requests)
        status = subprocess.run(
            [*CLI, "campaign", "status", inst.campaign.slug, "--json"],
            env=inst.env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert json.loads(status.stdout)["state"] == "done"
        assert len(agg.requests) == before
    with capsys.disabled():
        print(f"\nhttp kills (requests, in doubt): {kills}")
