"""Benchmark: `clicktrail bots reclassify` over 1,000,000 stored requests (issue 5).

Builds a scratch database with the real schema (`create_engine` + `migrate`), bulk-inserts
campaigns, messages with send and delivery times, and N stored requests with realistic variety
(thousands of distinct user agents and addresses: phones, previewers, scanners, scripts; header
sets as browsers and bots send them; delays from before delivery to hours), then times
`clicktrail.services.bots.reclassify` — the request-level pass over every request and the
behavioural (finalize) pass — in a child process, reporting requests/s, wall time and the
child's peak RSS.

    .venv/bin/python bench/reclassify.py --requests 20000        # smoke test
    .venv/bin/python bench/reclassify.py                          # 1,000,000 on SQLite
    .venv/bin/python bench/reclassify.py --postgres postgresql://postgres@127.0.0.1:5432/postgres
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from clicktrail.storage import tables as t  # noqa: E402
from clicktrail.storage.database import create_engine, migrate  # noqa: E402

NAV = {
    "accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    "accept-language": "en-US,en;q=0.9",
    "accept-encoding": "gzip, deflate, br",
    "sec-fetch-site": "none",
    "sec-fetch-mode": "navigate",
    "sec-fetch-dest": "document",
}


def user_agents(rng: random.Random, n: int) -> list[tuple[str, dict[str, str], str]]:
    """Return n distinct (user agent, headers, network pool) triples, mostly phones."""
    out: list[tuple[str, dict[str, str], str]] = []
    seen: set[str] = set()
    bots = [
        ("Mozilla/5.0 (X11; Ubuntu; Linux i686; rv:24.0) Gecko/20100101 Firefox/24.0",
         {"accept": NAV["accept"]}, "carrier"),
        ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_11_1) AppleWebKit/601.2.4 (KHTML, like "
         "Gecko) Version/9.0.1 Safari/601.2.4 facebookexternalhit/1.1 Facebot Twitterbot/1.0",
         {"accept": "*/*"}, "carrier"),
        ("WhatsApp/2.25.19.76 A", {}, "carrier"),
        ("Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)", {"accept": "*/*"}, "cloud"),
        ("python-requests/2.32.3", {"accept": "*/*"}, "cloud"),
        ("curl/8.5.0", {"accept": "*/*"}, "cloud"),
        ("okhttp/4.12.0", {}, "cloud"),
    ]  # fmt: skip
    out.extend(bots)
    seen.update(b[0] for b in bots)
    while len(out) < n:
        k = rng.random()
        if k < 0.5:
            ios = f"{rng.randint(15, 26)}_{rng.randint(0, 7)}"
            build = f"15E{rng.randint(100, 999)}"
            ua = (
                f"Mozilla/5.0 (iPhone; CPU iPhone OS {ios} like Mac OS X) AppleWebKit/605.1.15 "
                f"(KHTML, like Gecko) Version/{ios.replace('_', '.')} Mobile/{build} "
                "Safari/604.1"
            )
            headers = dict(NAV)
        else:
            v = rng.randint(100, 138)
            model = f"SM-{rng.choice('ASGMN')}{rng.randint(100, 999)}{rng.choice('BUFN')}"
            ua = (
                f"Mozilla/5.0 (Linux; Android {rng.randint(10, 15)}; {model}) AppleWebKit/537.36 "
                f"(KHTML, like Gecko) Chrome/{v}.0.{rng.randint(1000, 7000)}.{rng.randint(10, 200)}"
                " Mobile Safari/537.36"
            )
            headers = {**NAV, "sec-ch-ua": f'"Chromium";v="{v}"', "sec-ch-ua-mobile": "?1"}
        pool = "carrier"
        if rng.random() < 0.15:  # a scanner wearing this UA: bare headers, from a cloud
            headers = {"accept": "*/*"}
            pool = "cloud"
        if ua not in seen:
            seen.add(ua)
            out.append((ua, headers, pool))
    return out


def addresses(rng: random.Random, n: int) -> dict[str, list[str]]:
    """Return distinct addresses per pool: carrier/home (unknown), relay, cloud (hosting)."""
    carrier = [f"172.{rng.randint(32, 63)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
               for _ in range(n * 7 // 10)]  # fmt: skip
    carrier += [f"2607:fb90:{rng.randint(0, 0xFFFF):x}:{rng.randint(0, 0xFFFF):x}::"
                f"{rng.randint(1, 0xFFFF):x}" for _ in range(n // 10)]  # fmt: skip
    carrier += [f"172.225.{rng.randint(0, 255)}.{rng.randint(1, 254)}" for _ in range(n // 20)]
    cloud = [f"3.{rng.randint(80, 95)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
             for _ in range(n // 10)]  # fmt: skip
    cloud += [f"34.74.{rng.randint(0, 255)}.{rng.randint(1, 254)}" for _ in range(n // 20)]
    return {"carrier": carrier, "cloud": cloud}


def generate(engine: sa.Engine, n_requests: int, n_campaigns: int, n_ua: int, n_ip: int,
             seed: int) -> None:  # fmt: skip
    rng = random.Random(seed)
    now = int(time.time() * 1_000_000)
    per_campaign = max(100, min(2000, n_requests // n_campaigns // 4))
    n_contacts = per_campaign
    with engine.begin() as conn:
        conn.execute(t.workspaces.insert(), [{"id": 1, "public_id": "ws_bench", "slug": "bench",
                                              "name": "Bench", "created_us": now}])  # fmt: skip
        conn.execute(t.domains.insert(), [{"id": 1, "workspace_id": 1, "host": "sms.example.com",
                                           "scheme": "https", "path_prefix": "/c/",
                                           "created_us": now}])  # fmt: skip
        conn.execute(t.contacts.insert(), [
            {"id": i + 1, "workspace_id": 1, "phone": f"+1202555{i:04d}", "attributes": {},
             "created_us": now, "updated_us": now} for i in range(n_contacts)])  # fmt: skip
        camps: list[dict[str, Any]] = []
        links: list[dict[str, Any]] = []
        msgs: list[dict[str, Any]] = []
        mid = 0
        for c in range(1, n_campaigns + 1):
            sent = now - 86_400_000_000 - (n_campaigns - c + 1) * 3600_000_000 // 2
            camps.append({"id": c, "public_id": f"cp_{c}", "workspace_id": 1, "slug": f"c{c}",
                          "name": f"C{c}", "template": "x", "domain_id": 1, "status": "sent",
                          "created_us": sent, "sent_us": sent, "options": {}})  # fmt: skip
            links.extend({"id": 2 * c - 1 + k, "campaign_id": c, "idx": k + 1,
                          "url": f"https://shop.example.com/{k}", "role": "cta", "options": {}}
                         for k in range(2))  # fmt: skip
            for contact in range(1, per_campaign + 1):
                mid += 1
                delivered = sent + rng.randint(1_000_000, 30_000_000)
                msgs.append({"id": mid, "public_id": f"m_{mid}", "campaign_id": c,
                             "contact_id": contact, "to_phone": "+12025550000", "body": "x",
                             "encoding": "GSM-7", "segments": 1, "status": "delivered",
                             "queued_us": sent, "sent_us": sent, "delivered_us": delivered,
                             "status_us": delivered})  # fmt: skip
        conn.execute(t.campaigns.insert(), camps)
        conn.execute(t.links.insert(), links)
        for i in range(0, len(msgs), 20000):
            conn.execute(t.messages.insert(), msgs[i : i + 20000])
    uas = user_agents(rng, n_ua)
    ips = addresses(rng, n_ip)
    n_msgs = len(msgs)
    rows: list[dict[str, Any]] = []
    written = 0
    ck = t.clicks
    while written < n_requests:
        m = msgs[rng.randrange(n_msgs)]
        ua, headers, pool = uas[min(int(rng.expovariate(1 / 300)), len(uas) - 1)]
        r = rng.random()
        if pool == "cloud" or r < 0.3:  # bots: around delivery
            at = m["delivered_us"] + rng.randint(-3_000_000, 3_000_000)
            ip = rng.choice(ips["cloud"] if pool == "cloud" or r < 0.15 else ips["carrier"])
        else:  # people: seconds to hours
            at = m["delivered_us"] + int(rng.lognormvariate(19.7, 1.4))
            ip = rng.choice(ips["carrier"])
        rows.append({
            "click_id": f"{written:012d}{rng.getrandbits(40):010x}", "token": "AAAAAAAAA",
            "campaign_id": m["campaign_id"], "link_id": 2 * m["campaign_id"] - 1 + (r < 0.2),
            "message_id": m["id"], "contact_id": m["contact_id"], "at_us": at,
            "method": "HEAD" if r > 0.97 else "GET", "is_click": r <= 0.97, "ip": ip,
            "user_agent": ua, "headers": {**headers, "x-forwarded-for": ip, "_http": "1.1"},
        })  # fmt: skip
        written += 1
        if len(rows) == 50_000 or written == n_requests:
            with engine.begin() as conn:
                conn.execute(ck.insert(), rows)
            rows = []


def child(db_url: str) -> None:
    """Run the re-classification as `clicktrail bots reclassify` does; print timings as JSON."""
    from clicktrail.bootstrap import SignalsClassifier
    from clicktrail.services import bots
    from clicktrail.storage.clicks import ClickQueries

    engine = create_engine(db_url)
    marks: list[float] = []
    start = time.perf_counter()
    result = bots.reclassify(
        ClickQueries(engine), SignalsClassifier(), int(time.time() * 1_000_000), settle_us=0,
        progress=lambda _n: marks.append(time.perf_counter()),
    )  # fmt: skip
    end = time.perf_counter()
    request_pass = (marks[-1] if marks else end) - start
    with engine.connect() as conn:
        verdicts: dict[str | None, int] = dict(conn.execute(sa.text(
            "SELECT verdict, count(*) FROM clicks GROUP BY verdict")).all())  # fmt: skip
    print(json.dumps({**result.__dict__, "wall": end - start, "request_pass": request_pass,
                      "finalize_pass": end - start - request_pass, "verdicts": verdicts}))  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--requests", type=int, default=1_000_000)
    ap.add_argument("--campaigns", type=int, default=200)
    ap.add_argument("--user-agents", type=int, default=3000)
    ap.add_argument("--ips", type=int, default=20000)
    ap.add_argument("--seed", type=int, default=5)
    ap.add_argument(
        "--postgres", default="", help="PostgreSQL admin URL; a scratch database is made"
    )
    ap.add_argument("--child", default="", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child)
        return

    tmp = Path(tempfile.mkdtemp(prefix="clicktrail-reclassify-"))
    pg_name = admin = None
    if args.postgres:
        pg_name = f"clicktrail_recl_{uuid.uuid4().hex[:8]}"
        admin = sa.create_engine(args.postgres.replace("postgresql://", "postgresql+psycopg://"),
                                 isolation_level="AUTOCOMMIT")  # fmt: skip
        with admin.connect() as c:
            c.execute(sa.text(f'CREATE DATABASE "{pg_name}"'))
        db_url = args.postgres.rsplit("/", 1)[0] + "/" + pg_name
    else:
        db_url = f"sqlite:///{tmp / 'recl.db'}"
    try:
        engine = create_engine(db_url)
        migrate(engine)
        g0 = time.perf_counter()
        generate(engine, args.requests, args.campaigns, args.user_agents, args.ips, args.seed)
        engine.dispose()
        gen_s = time.perf_counter() - g0
        proc = subprocess.Popen([sys.executable, __file__, "--child", db_url],
                                stdout=subprocess.PIPE, text=True)  # fmt: skip
        _, status, usage = os.wait4(proc.pid, 0)
        assert proc.stdout is not None
        out = proc.stdout.read()
        if os.waitstatus_to_exitcode(status) != 0:
            sys.exit(f"re-classification failed: {out}")
        res = json.loads(out)
    finally:
        if pg_name and admin is not None:
            with admin.connect() as c:
                c.execute(sa.text(f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)'))
        for p in tmp.glob("*"):
            p.unlink()
        tmp.rmdir()
    cpu = next((line.split(":", 1)[1].strip() for line in
                subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines()
                if line.startswith("Model name")), platform.processor())  # fmt: skip
    n = res["requests"]
    print(f"### reclassify: {n} stored requests, {'PostgreSQL' if pg_name else 'SQLite'}\n")
    print(f"`{' '.join(['bench/reclassify.py', *sys.argv[1:]])}` — {cpu}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}, "
          f"{dt.datetime.now(dt.UTC).strftime('%Y-%m-%d %H:%M UTC')}; {args.campaigns} campaigns, "
          f"{args.user_agents} distinct user agents, ~{args.ips} distinct addresses; "
          f"generation {gen_s:.0f} s\n")  # fmt: skip
    # Request-level and behavioural rules run in one pass since 2026-12 (each settled request
    # is judged batch by batch as it is finalized): the progress marks then end with the pass.
    print("| pass | seconds | requests/s |\n|---|---:|---:|")
    print(f"| every rule, batch by batch (until the last progress mark) | "
          f"{res['request_pass']:.1f} | {n / max(res['request_pass'], 1e-9):,.0f} |")  # fmt: skip
    print(f"| after it (early sightings; the old behavioural pass) | {res['finalize_pass']:.1f} "
          f"| {res['finalized'] / max(res['finalize_pass'], 1e-9):,.0f} |")  # fmt: skip
    print(f"| **total** | **{res['wall']:.1f}** | **{n / res['wall']:,.0f}** |")
    print(
        f"\npeak RSS of the re-classifying process: {usage.ru_maxrss / 1024:.0f} MiB; "
        f"{res['verdict_changes']} verdicts set, {res['finalized']} final; verdicts: "
        + ", ".join(f"{k} {v}" for k, v in sorted(res["verdicts"].items(), key=str))
    )


if __name__ == "__main__":
    main()
