"""Automations (issue 17): time from a click to its queued follow-up, and runs handled per second.

Builds a scratch database (SQLite in a temporary folder, or ``--database-url``): a workspace
with a short domain, ``--contacts`` contacts, a campaign sent to them through the outbox
provider, and the automation "clicked the campaign → send a follow-up", delay 0.

1. **Click to follow-up.** The whole app runs in this process with its background jobs on their
   thread, as `uvicorn --factory` runs them (the click pipeline every second, automations every
   0.5 s). ``--clicks`` contacts click their link one after another (a real browser's headers,
   through the ASGI app); for each, the time from the redirect's answer to the moment its
   follow-up message exists (queued, or already handed to the outbox), polled every 5 ms.
   Reported: median, p95 and max. Target (issue 17): within 2 s.
2. **Runs per second.** ``--runs`` contacts opt out and back in (the rule: opted in → send via
   the campaign); then, in this thread, the scheduler reads the ``contact.opted_in`` events
   (runs per second scheduled) and the firer carries every run out (claim, decide, compose,
   the fire transaction, the outbox provider, the outcome: runs per second fired).

    .venv/bin/python bench/automation_bench.py --quick
    .venv/bin/python bench/automation_bench.py --runs 20000 --clicks 50
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

from clicktrail.bootstrap import Container
from clicktrail.config import load_settings
from clicktrail.domain.automations import Action, Conditions, Trigger, check_rule
from clicktrail.domain.models import ContactInput
from clicktrail.services import automations, campaigns, workspaces
from clicktrail.services.automation_fire import AutomationWorker
from clicktrail.services.clock import now_us
from clicktrail.services.optouts import OptChange
from clicktrail.services.sending import send_campaign
from clicktrail.sms.outbox import OutboxProvider
from clicktrail.storage import tables as t

HOST = "sms.example.com"
BROWSER = {
    "user-agent": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
    "accept-language": "en-US,en;q=0.9",
}
FOLLOW_UP = Action(
    "send", template="Still thinking, {first_name|there}? https://shop.example.com/cart"
)


def _phone(i: int) -> str:
    return f"+1415{2_000_000 + i:07d}"  # 415-2XX-XXXX: valid numbers (a send skips others)


def _follow_up_of(c: Container, contact_phone: str) -> bool:
    m = t.messages
    q = sa.select(m.c.id).where(m.c.to_phone == contact_phone, m.c.client_ref.like("automation:%"))
    with c.engine.connect() as conn:
        return conn.execute(q.limit(1)).first() is not None


def _clicks(c: Container, tokens: list[tuple[str, str]]) -> list[float]:
    """Click each token through the app (its jobs on their thread); seconds to the follow-up."""
    app = c.web_app()

    async def main() -> list[float]:
        to_app: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        from_app: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        task = asyncio.create_task(
            app({"type": "lifespan", "asgi": {"version": "3.0"}}, to_app.get, from_app.put)
        )
        await to_app.put({"type": "lifespan.startup"})
        assert (await from_app.get())["type"] == "lifespan.startup.complete"
        out: list[float] = []
        try:
            transport = httpx.ASGITransport(app=app, client=("203.0.113.5", 4242))
            async with httpx.AsyncClient(transport=transport, base_url=f"http://{HOST}") as h:
                for tok, contact_phone in tokens:
                    r = await h.get(f"/c/{tok}", headers=BROWSER)
                    assert r.status_code == 302, r.text
                    t0 = time.perf_counter()
                    while not await asyncio.to_thread(_follow_up_of, c, contact_phone):
                        if time.perf_counter() - t0 > 30:
                            raise SystemExit(f"no follow-up for {contact_phone} within 30 s")
                        await asyncio.sleep(0.005)
                    out.append(time.perf_counter() - t0)
        finally:
            await to_app.put({"type": "lifespan.shutdown"})
            assert (await from_app.get())["type"] == "lifespan.shutdown.complete"
            await task
        return out

    return asyncio.run(main())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--contacts", type=int, default=5000)
    ap.add_argument("--clicks", type=int, default=20)
    ap.add_argument("--runs", type=int, default=5000)
    ap.add_argument("--quick", action="store_true", help="500 runs, 10 clicks")
    ap.add_argument("--database-url", default=None, help="default: SQLite in a temp folder")
    args = ap.parse_args()
    if args.quick:
        args.contacts, args.clicks, args.runs = 500, 10, 500
    n = max(args.contacts, args.runs + args.clicks)
    tmp = Path(tempfile.mkdtemp(prefix="ct-automation-bench-"))
    env = {"CLICKTRAIL_DATABASE_URL": args.database_url or f"sqlite:///{tmp}/bench.db",
           "CLICKTRAIL_DATA_DIR": str(tmp)}  # fmt: skip
    c = Container(load_settings(env=env))
    ws = workspaces.create_workspace(c.workspaces, "Bench", now_us())
    workspaces.add_domain(c.workspaces, ws, HOST, now_us())
    inputs = [ContactInput(_phone(i), f"ext-{i}", f"Name{i}") for i in range(n)]
    c.contacts.upsert_contacts(ws.id, inputs, None, now_us())
    cp = campaigns.create_campaign(
        c, ws, template="Hi {first_name}: https://shop.example.com/sale", name="Sale",
        slug="sale", now_us=now_us(),
    )  # fmt: skip
    # Sent an hour ago: a tap within seconds of the send would be judged a link preview's.
    hour_ago = now_us() - 3_600_000_000
    send_campaign(c, ws, cp, OutboxProvider(tmp / "outbox.jsonl"), clock=lambda: hour_ago)
    # Part 2's contacts opt out before any automation exists (no event), in again later.
    at = now_us()
    c.optout_queries.record_opt_changes(
        ws.id, [OptChange(_phone(i), True, at, "api") for i in range(args.runs)], at
    )
    delay0 = check_rule(Trigger("clicked", "sale"), 0, Conditions(), FOLLOW_UP)
    automations.create_automation(c, ws, "Clicked", delay0, now_us())

    # 1. Click to follow-up (contacts past the opted-out ones).
    with c.engine.connect() as conn:
        rows = conn.execute(
            sa.select(t.tokens.c.token, t.contacts.c.phone)
            .join(t.contacts, t.contacts.c.id == t.tokens.c.contact_id)
            .order_by(t.tokens.c.message_id)
        ).all()
    fresh = [(tok, p) for tok, p in rows if int(p[5:]) - 2_000_000 >= args.runs][: args.clicks]
    lat = sorted(_clicks(c, fresh))

    # 2. Runs per second.
    opted_in = check_rule(Trigger("opted_in"), 0, Conditions(),
                          Action("send", template=FOLLOW_UP.template, campaign="sale"))  # fmt: skip
    automations.create_automation(c, ws, "Welcome back", opted_in, now_us())
    at = now_us()
    c.optout_queries.record_opt_changes(
        ws.id, [OptChange(_phone(i), False, at, "api") for i in range(args.runs)], at
    )
    worker = AutomationWorker(c, c.automations.runs, c.automations.runs.fire,
                              c.sending.provider_for, now_us)  # fmt: skip
    t0 = time.perf_counter()
    scheduled = 0
    while scheduled < args.runs and time.perf_counter() - t0 < 600:
        worker.scheduler.tick()
        with c.engine.connect() as conn:
            scheduled = int(conn.execute(
                sa.select(sa.func.count()).select_from(t.automation_runs)
                .where(t.automation_runs.c.trigger_key.like("opt-in/%"))
            ).scalar_one())  # fmt: skip
    t1 = time.perf_counter()
    fired = worker.firer.tick()
    t2 = time.perf_counter()
    load = os.getloadavg()
    db = "PostgreSQL" if args.database_url else "SQLite"
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"{db}; load average before the runs part: {load[0]:.2f}")  # fmt: skip
    p95 = lat[min(len(lat) - 1, int(len(lat) * 0.95))]
    print(f"click -> follow-up queued ({len(lat)} clicks, delay 0): median {statistics.median(lat):.2f} s, "
          f"p95 {p95:.2f} s, max {lat[-1]:.2f} s (target: within 2 s)")  # fmt: skip
    print(f"scheduled {scheduled} runs in {t1 - t0:.2f} s: {scheduled / (t1 - t0):,.0f} runs/s")
    print(
        f"fired {fired} runs (follow-ups through the outbox) in {t2 - t1:.2f} s: "
        f"{fired / (t2 - t1):,.0f} runs/s"
    )
    c.dispose()


if __name__ == "__main__":
    main()
