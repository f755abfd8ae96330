"""Automation runs across crashes, on SQLite and PostgreSQL: a replayed outbox batch schedules
nothing twice, a run claimed by a dead worker is taken again after its lease, a message whose
sender died before the provider saw it is sent by the next worker, and a worker process killed
with SIGKILL mid-run (then restarted) sends nobody a follow-up twice and loses no run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from autofire_kit import HOUR, drain, world

from clicktrail.domain.automations import Action, Conditions, Trigger, check_rule
from clicktrail.services import automation_fire
from clicktrail.services.automation_fire import LEASE_US
from clicktrail.services.automation_runs import CONSUMER
from clicktrail.services.clock import now_us
from clicktrail.storage import tables as t
from factories import PYTHONPATH, phone
from inprocess_api import Api

RULE = check_rule(
    Trigger("clicked", "sale"),
    0,
    Conditions(),
    Action("send", template="Back? https://x.example.com/b"),
)


def test_a_replayed_batch_schedules_nothing_twice(api: Api, tmp_path: Path) -> None:
    w = world(api, tmp_path, n=2)
    w.rule("Follow up", check_rule(Trigger("clicked", "sale"), HOUR, Conditions(), RULE.action))
    w.click(phone(0))
    w.click(phone(1))
    w.tick()
    assert len(w.runs()) == 2
    with api.container.engine.begin() as conn:  # as if the cursor's move had been lost
        conn.execute(t.event_cursors.delete().where(t.event_cursors.c.consumer == CONSUMER))
    w.tick()
    assert len(w.runs()) == 2


def test_a_run_claimed_by_a_dead_worker_fires_once_after_its_lease(
    api: Api, tmp_path: Path
) -> None:
    w = world(api, tmp_path)
    w.rule("Follow up", RULE)
    w.click(phone(0))
    w.clock.at = now_us()
    drain(api, w.make_worker())
    dead = api.container.automations.runs.fire
    (claimed,) = dead.claim("dead-worker", w.clock.at, w.clock.at + LEASE_US, 10)
    assert w.tick() == 0  # held by the dead worker's lease
    assert w.follow_ups() == []
    w.clock.at += LEASE_US + 1
    assert w.tick() == 1
    (run,) = w.runs()
    assert run.state == "fired" and run.attempts == 2 and len(w.follow_ups()) == 1
    # The dead worker coming back cannot fire it again.
    assert dead.finish(claimed, "dead-worker", "failed", "late", w.clock.at) is False
    assert w.tick() == 0 and len(w.follow_ups()) == 1


class _Killed(BaseException):
    """The process dying (not an error a worker catches)."""


def test_a_message_whose_sender_died_before_the_provider_is_sent_once(
    api: Api, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    w = world(api, tmp_path)
    w.rule("Follow up", RULE)
    w.click(phone(0))

    def die(*_args: object) -> None:
        raise _Killed

    monkeypatch.setattr(automation_fire, "dispatch", die)
    with pytest.raises(_Killed):
        w.tick()
    (run,) = w.runs()
    assert run.state == "fired" and w.follow_ups() == []  # committed, not sent
    monkeypatch.undo()
    w.worker = None  # a new worker
    w.tick()
    w.tick()
    assert len(w.follow_ups()) == 1


WORKER = """
import time
from clicktrail.bootstrap import Container
from clicktrail.config import load_settings
from clicktrail.services.automation_fire import AutomationWorker
from clicktrail.services.clock import now_us
c = Container(load_settings(), run_migrations=False)
w = AutomationWorker(c, c.automations.runs, c.automations.runs.fire, c.sending.provider_for, now_us)
print("ready", flush=True)
while True:
    w.tick()
    time.sleep(0.01)
"""


def _worker(env: dict[str, str]) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen([sys.executable, "-c", WORKER], env=env, stdout=subprocess.PIPE)
    assert proc.stdout is not None and proc.stdout.readline().strip() == b"ready"
    return proc


def test_a_killed_worker_process_sends_nothing_twice_and_loses_no_run(
    api: Api, tmp_path: Path, database_url: str
) -> None:
    n = 30
    w = world(api, tmp_path, n=n)
    w.rule("Follow up", RULE)
    for i in range(n):
        w.click(phone(i))
    env = {
        "PATH": os.environ.get("PATH", ""), **PYTHONPATH, "HOME": str(tmp_path),
        "CLICKTRAIL_DATABASE_URL": database_url, "CLICKTRAIL_DATA_DIR": str(tmp_path),
    }  # fmt: skip
    proc = _worker(env)
    try:
        deadline = time.monotonic() + 600
        while not w.follow_ups() and time.monotonic() < deadline:
            time.sleep(0.005)
        os.kill(proc.pid, signal.SIGKILL)  # mid-batch: some runs fired, some not yet
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        _close(proc)
    assert len(w.follow_ups()) >= 1
    doubt = _count(api, "sending")  # 0 or 1: the provider had it when the worker died
    # Its lease ends; a new worker takes over (the lease is the claim's, 2 minutes: move the
    # claims back instead of waiting).
    with api.container.engine.begin() as conn:
        conn.execute(t.automation_runs.update().values(claim_until_us=0))
    proc = _worker(env)
    try:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            states = [r.state for r in w.runs()]
            if (len(states) == n and set(states) == {"fired"} and not _count(api, "queued")
                    and _count(api, "sending") == doubt):  # fmt: skip
                break
            time.sleep(0.05)
    finally:
        proc.kill()
        proc.wait()
        _close(proc)
    runs = w.runs()
    assert len(runs) == n and {r.state for r in runs} == {"fired"}
    lines = w.follow_ups()
    to = [x["to"] for x in lines]
    assert len(to) == len(set(to))  # nobody twice
    with api.container.engine.connect() as conn:
        status = dict(
            conn.execute(
                sa.select(t.messages.c.public_id, t.messages.c.status).where(
                    t.messages.c.client_ref.like("automation:%")
                )
            ).all()
        )
    # Every fired run has its message; each was sent once, or is held in doubt (`sending`:
    # the provider had it when the worker died), never sent again.
    assert len(status) == n
    written = {x["message_id"] for x in lines}
    sent = {m for m, s in status.items() if s == "sent"}
    in_doubt = {m for m, s in status.items() if s == "sending"}
    assert sent <= written <= sent | in_doubt
    assert len(in_doubt) == doubt <= 1 and len(written) >= n - 1


def _count(api: Api, status: str) -> int:
    with api.container.engine.connect() as conn:
        q = sa.select(sa.func.count()).where(
            t.messages.c.client_ref.like("automation:%"), t.messages.c.status == status
        )
        return int(conn.execute(q).scalar_one())


def _close(proc: subprocess.Popen[bytes]) -> None:
    if proc.stdout is not None:
        proc.stdout.close()
