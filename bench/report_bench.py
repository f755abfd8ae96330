"""Full campaign report at scale: 1,000,000 messages and 200,000 clicks (issue 6).

Builds a scratch database with the real migrations, bulk-loads one campaign directly (executemany
on SQLite, COPY on PostgreSQL), then times `services.reports.full_report` several times and
prints the median and p95 beside a plain-query baseline measured in the same run (a count of
the campaign's messages by status and of its clicks: what the machine does in the least report
imaginable) and the classic report.

    .venv/bin/python bench/report_bench.py                    # SQLite and PostgreSQL
    .venv/bin/python bench/report_bench.py --only sqlite --messages 100000 --clicks 20000

Method (docs/reports.md): the per-recipient click rollup of migration 0006 (`message_clicks`,
`message_link_clicks`, `message_click_buckets`, kept exact by `ClickQueries.insert_clicks`,
`save_verdicts` and `apply_receipts`), covering indexes of migration 0005 for the per-link,
verdict and user-agent pass, and a per-country message rollup checked against live status
counts. The bulk load bypasses the repositories, so the click rollup is then rebuilt in one pass
(`rebuild_click_rollup`, what migration 0006's backfill runs; timed as "rollup_rebuild_s").
The first report after loading rebuilds the country rollup ("cold"); the timed runs are the
steady state.

Then the insert path: `ClickQueries.insert_clicks` of new clicks (with provisional verdicts, on
random messages of the campaign, in batches of `--insert-batch`) with the rollup maintenance and
with it replaced by a no-op, alternated, same run ("insert_clicks_per_s").
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import sqlalchemy as sa

from clicktrail.domain.bots.model import Verdict
from clicktrail.domain.models import Workspace
from clicktrail.services import reports
from clicktrail.services.ports import ClickRecord
from clicktrail.signals import ua_facts
from clicktrail.storage import clicks as click_storage
from clicktrail.storage.campaigns import CampaignQueries
from clicktrail.storage.clicks import ClickQueries
from clicktrail.storage.database import create_engine, migrate
from clicktrail.storage.reports import ReportQueries
from clicktrail.storage.rollup import rebuild_click_rollup

PG_ADMIN = os.environ.get(
    "CLICKTRAIL_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
T0 = 1_767_225_600_000_000  # 2026-01-01T00:00:00Z in µs

UAS = [
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.5 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.6 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/137.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Linux; Android 13; Pixel 7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/136.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Linux; Android 14; SM-A546B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/27.0 Chrome/125.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 Instagram 380.0.0.0.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/137.0.0.0 Safari/537.36 Edg/137.0.0.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.5 Safari/605.1.15",
    "facebookexternalhit/1.1 Facebot Twitterbot/1.0",
    "Mozilla/5.0 (X11; Ubuntu; Linux i686; rv:24.0) Gecko/20100101 Firefox/24.0",
    "okhttp/4.12.0",
    "",
]
UA_WEIGHTS = [22, 10, 18, 8, 8, 6, 6, 4, 4, 4, 5, 5]
# (verdict, reasons, weight, method)
VERDICTS = [
    ("human", None, 75, "GET"),
    ("suspect", ["HDR_NO_SEC_FETCH"], 5, "GET"),
    ("preview", ["UA_PREVIEW_IMESSAGE"], 8, "GET"),
    ("scanner", ["NET_HOSTING", "FANOUT_IP_60S"], 7, "GET"),
    ("automation", ["UA_NOT_BROWSER"], 3, "GET"),
    ("probe", ["METHOD_PROBE"], 2, "HEAD"),
]
PHONES = [  # (prefix, digits to add, weight)
    ("+1212", 7, 25), ("+1415", 7, 20), ("+1312", 7, 15), ("+1617", 7, 10), ("+1416", 7, 10),
    ("+447911", 6, 10), ("+49151", 8, 5), ("+336", 8, 5),
]  # fmt: skip


def phone_of(i: int, rng: random.Random) -> str:
    prefix, n, _ = rng.choices(PHONES, weights=[w for *_, w in PHONES])[0]
    return prefix + str(2_000_000 + i).rjust(n, "0")[-n:] if n == 7 else prefix + str(i).zfill(n)


def rows_for(messages: int, clicks: int, seed: int = 6) -> dict[str, Iterator[tuple[object, ...]]]:
    """Return row generators for contacts, messages and clicks (ids from 1)."""
    rng = random.Random(seed)
    phones = [phone_of(i, rng) for i in range(messages)]
    status = rng.choices(["delivered", "failed", "sent", "undelivered"], [93, 3, 3, 1], k=messages)
    delivered = [T0 + 5_000_000 + rng.randrange(60_000_000) for _ in range(messages)]

    def contacts() -> Iterator[tuple[object, ...]]:
        for i in range(messages):
            yield (i + 1, 1, phones[i], f"crm-{i}", "{}", T0, T0)

    def msgs() -> Iterator[tuple[object, ...]]:
        for i in range(messages):
            d = delivered[i] if status[i] == "delivered" else None
            yield (
                i + 1, f"msg_{i:012d}", 1, i + 1, phones[i], "x", "gsm7", 1, status[i],
                T0, T0 + 1_000_000, d, T0 + 2_000_000,
            )  # fmt: skip

    def clk() -> Iterator[tuple[object, ...]]:
        clickers = rng.sample(range(messages), k=min(messages, clicks * 2 // 3))
        weights = [w for _, _, w, _ in VERDICTS]
        for j in range(clicks):
            i = clickers[j] if j < len(clickers) else rng.choice(clickers)
            verdict, reasons, _, method = rng.choices(VERDICTS, weights)[0]
            link = rng.choices([1, 2, 3], [80, 15, 5])[0]
            delay = min(int(rng.lognormvariate(6.0, 2.2) * 1_000_000), 10 * 86_400_000_000)
            at = delivered[i] + delay
            ua = rng.choices(UAS, UA_WEIGHTS)[0]
            yield (
                j + 1, f"clk_{j:012d}", f"tok{j}", 1, link, i + 1, i + 1, at, method,
                method == "GET", "203.0.113.7", ua, "{}", verdict, 50,
                json.dumps(reasons) if reasons else None, "b1", True,
            )  # fmt: skip

    return {"contacts": contacts(), "messages": msgs(), "clicks": clk()}


COLUMNS = {
    "contacts": "id, workspace_id, phone, external_id, attributes, created_us, updated_us",
    "messages": "id, public_id, campaign_id, contact_id, to_phone, body, encoding, segments, "
    "status, queued_us, sent_us, delivered_us, status_us",
    "clicks": "id, click_id, token, campaign_id, link_id, message_id, contact_id, at_us, method, "
    "is_click, ip, user_agent, headers, verdict, score, reasons, classifier_version, final",
}


def load(engine: sa.Engine, messages: int, clicks: int) -> None:
    """Create the workspace, domain, campaign and links, then bulk-load the big tables."""
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO workspaces (id, public_id, slug, name, is_demo, created_us) "
                "VALUES (1, 'ws_bench', 'bench', 'Bench', false, :t)"
            ),
            {"t": T0},
        )
        conn.execute(
            sa.text(
                "INSERT INTO domains (id, workspace_id, host, scheme, path_prefix, created_us) "
                "VALUES (1, 1, 'sms.bench.test', 'https', '/c/', :t)"
            ),
            {"t": T0},
        )
        conn.execute(
            sa.text(
                "INSERT INTO campaigns (id, public_id, workspace_id, slug, name, template, "
                "domain_id, status, created_us, sent_us, options) VALUES (1, 'cmp_bench', 1, "
                "'big', 'Big', 'Hi https://a.test/x https://a.test/y stop https://a.test/stop', "
                "1, 'sent', :t, :t, '{}')"
            ),
            {"t": T0},
        )
        for idx, (url, role) in enumerate(
            [
                ("https://a.test/x", "cta"),
                ("https://a.test/y", "other"),
                ("https://a.test/stop", "optout"),
            ]
        ):
            conn.execute(
                sa.text(
                    "INSERT INTO links (id, campaign_id, idx, url, role, options) "
                    "VALUES (:i, 1, :x, :u, :r, '{}')"
                ),
                {"i": idx + 1, "x": idx, "u": url, "r": role},
            )
    gens = rows_for(messages, clicks)
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        for table in ("contacts", "messages", "clicks"):
            cols = COLUMNS[table]
            if engine.dialect.name == "sqlite":
                marks = ", ".join("?" for _ in cols.split(","))
                cur.executemany(f"INSERT INTO {table} ({cols}) VALUES ({marks})", gens[table])
            else:
                with cur.copy(f"COPY {table} ({cols}) FROM STDIN") as copy:  # type: ignore[attr-defined]
                    for row in gens[table]:
                        copy.write_row(row)
        raw.commit()
        if engine.dialect.name == "postgresql":
            for table in ("contacts", "messages", "clicks"):
                cur.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                    f"(SELECT max(id) FROM {table}))"
                )
            raw.commit()
    finally:
        raw.close()
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(
            sa.text("VACUUM ANALYZE" if engine.dialect.name == "postgresql" else "ANALYZE")
        )


def timed(fn: Callable[[], object], runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1000)
    return out


def p95(xs: list[float]) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, round(0.95 * (len(s) - 1)))]


def bench(url: str, name: str, args: argparse.Namespace) -> dict[str, object]:
    engine = create_engine(url)
    migrate(engine)
    t = time.perf_counter()
    load(engine, args.messages, args.clicks)
    load_s = time.perf_counter() - t
    t = time.perf_counter()
    with engine.begin() as conn:
        rebuild_click_rollup(conn)
    rebuild_s = time.perf_counter() - t
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(
            sa.text("VACUUM ANALYZE" if engine.dialect.name == "postgresql" else "ANALYZE")
        )
    queries = ReportQueries(engine, ua_facts=ua_facts)
    ws = Workspace(1, "ws_bench", "bench", "Bench")

    def full() -> object:
        return reports.full_report(queries, ws, "big", now_us=T0)

    def baseline() -> object:
        with engine.connect() as conn:
            conn.execute(
                sa.text(
                    "SELECT status, count(*) FROM messages WHERE campaign_id = 1 GROUP BY status"
                )
            ).all()
            return conn.execute(sa.text("SELECT count(*) FROM clicks WHERE campaign_id = 1")).one()

    campaign = CampaignQueries(engine).find_campaign(1, "big")
    assert campaign is not None
    cold = timed(full, 1)[0]
    report = reports.full_report(queries, ws, "big", now_us=T0)
    rounds = {"baseline": [], "classic": [], "full": []}  # type: dict[str, list[float]]
    for _ in range(args.runs):  # interleaved, so that CPU contention hits all three alike
        rounds["baseline"] += timed(baseline, 1)
        rounds["classic"] += timed(lambda: ReportQueries(engine).campaign_report(campaign), 1)
        rounds["full"] += timed(full, 1)
    inserts = insert_rates(ClickQueries(engine), args)
    engine.dispose()
    summary = report.summary
    return {
        "db": name,
        "load_s": round(load_s, 1),
        "rollup_rebuild_s": round(rebuild_s, 1),
        "cold_ms": round(cold, 1),
        **{
            f"{k}_ms": {"median": round(statistics.median(v), 1), "p95": round(p95(v), 1)}
            for k, v in rounds.items()
        },
        "messages": summary.messages,
        "raw_clicks": summary.requests,
        "counted_clicks": summary.all_links.total_clicks,
        "unique": summary.all_links.unique_clicks,
        "engagement_ctr": summary.ctr,
        "median_first_click_s": report.timing.median_first_click_s,
        "insert_clicks_per_s": inserts,
    }


def insert_rates(clicks: ClickQueries, args: argparse.Namespace) -> dict[str, float]:
    """clicks/s of `insert_clicks` with the rollup maintenance and without it (the hook
    replaced by a no-op), alternated over `--insert-rounds` rounds; medians."""
    rng = random.Random(7)
    verdict = Verdict("human", 0, (), "b1")
    hooks = click_storage.__dict__  # insert_clicks calls the rollup maintenance by this name
    maintain = hooks["refresh_click_rollup"]
    rates: dict[str, list[float]] = {"with_rollup": [], "without_rollup": []}
    n = 0
    for _ in range(args.insert_rounds):
        for mode in ("without_rollup", "with_rollup"):
            recs = []
            for _ in range(args.insert_clicks):
                i = rng.randrange(args.messages) + 1
                recs.append(
                    ClickRecord(
                        f"ins_{n}", f"itok{n}", 1, rng.choice([1, 1, 1, 2, 3]), i, i,
                        T0 + rng.randrange(86_400) * 1_000_000, "GET", "203.0.113.8",
                        UAS[0], {},
                    )
                )  # fmt: skip
                n += 1
            if mode == "without_rollup":
                hooks["refresh_click_rollup"] = lambda *a, **k: None
            try:
                t = time.perf_counter()
                for j in range(0, len(recs), args.insert_batch):
                    batch = recs[j : j + args.insert_batch]
                    clicks.insert_clicks(batch, [verdict] * len(batch))
                rates[mode].append(len(recs) / (time.perf_counter() - t))
            finally:
                hooks["refresh_click_rollup"] = maintain
    return {k: round(statistics.median(v)) for k, v in rates.items()}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--messages", type=int, default=1_000_000)
    p.add_argument("--clicks", type=int, default=200_000)
    p.add_argument("--runs", type=int, default=15)
    p.add_argument("--only", choices=["sqlite", "postgresql"])
    p.add_argument("--insert-clicks", type=int, default=10_000, help="per round and mode")
    p.add_argument("--insert-batch", type=int, default=500)
    p.add_argument("--insert-rounds", type=int, default=3)
    args = p.parse_args()
    results = []
    if args.only in (None, "sqlite"):
        with tempfile.TemporaryDirectory() as tmp:
            results.append(bench(f"sqlite:///{Path(tmp) / 'bench.db'}", "SQLite", args))
    if args.only in (None, "postgresql"):
        name = f"clicktrail_report_bench_{uuid.uuid4().hex[:8]}"
        admin = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        try:
            results.append(bench(PG_ADMIN.rsplit("/", 1)[0] + "/" + name, "PostgreSQL", args))
        finally:
            with admin.connect() as conn:
                conn.execute(sa.text(f'DROP DATABASE "{name}" WITH (FORCE)'))
            admin.dispose()
    out = io.StringIO()
    for r in results:
        print(json.dumps(r), file=out)
    sys.stdout.write(out.getvalue())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
