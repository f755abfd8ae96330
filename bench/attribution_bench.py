"""Attribution at scale (issue 16): re-attributing 1,000,000 conversions over 10,000,000 clicks
on PostgreSQL (target < 60 s), and the conversions report of a 1,000,000-message campaign
(target < 0.5 s).

Builds a scratch database with the real migrations and generates one workspace inside
PostgreSQL (`LOAD_SQL`: generate_series, seeded random()): five campaigns of `--messages`
messages each (every contact gets one, delivered two days apart); `--clicks` requests on 40 %
of the messages at the quick size, 80 % at the full size (85 % human, the rest preview,
scanner, automation and probe, all final); `--conversions` conversions: two thirds follow a
random request (of any verdict) of their contact by up to 7 days, the rest come from contacts
at random times (views or nothing). Then it times:

* `reattribute`: `services.attribution.reattribute` of the whole workspace (every conversion
  under every model, credits replaced under the revision guard), as `clicktrail attribution
  rerun` and the jobs process do: on PostgreSQL the database picks the winners and writes the
  credits that change (`storage.recredit.RECREDIT`); first with no credits yet, then after a
  window change;
* with `--compare`: the old path (touches read, the domain picks the winners in Python) and
  the database's, one after the other on the same data and revision, their credits checked
  equal (a checksum of every row) and the ratio of their times;
* with `--floors`: what PostgreSQL itself takes to pick every conversion's new credits and
  only count them (`storage.recredit.NEW_CREDITS`, one statement), and to write that many
  credits into a copy of `conversion_credits` with its three indexes;
* `report`: `services.attribution.campaign_conversions` of the first campaign (its click report
  included), median and p95 of `--runs` (`--no-report` skips it and the rollup it reads);
* the in-run anchors: a full scan of the clicks table (`SELECT count(*), sum(at_us) FROM
  clicks`) for re-attribution, and the campaign's click report alone
  (`reports.campaign_report`) for the conversions report — what the same machine does, in the
  same minutes, with no attribution at all; and the load average before and after.

    .venv/bin/python bench/attribution_bench.py --quick --compare  # 100k conversions, 1M clicks
    .venv/bin/python bench/attribution_bench.py --no-report        # 1M conversions, 10M clicks
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

import sqlalchemy as sa
from psycopg.types.numeric import Int8

from clicktrail.domain.models import Workspace
from clicktrail.services import attribution, reports
from clicktrail.signals import ua_facts
from clicktrail.storage.attribution import AttributionQueries
from clicktrail.storage.database import create_engine, migrate
from clicktrail.storage.recredit import NEW_CREDITS, RECREDIT_SETTINGS, recredit_params
from clicktrail.storage.reports import ReportQueries
from clicktrail.storage.rollup import rebuild_click_rollup

PG_ADMIN = os.environ.get(
    "CLICKTRAIL_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
T0 = 1_767_225_600_000_000  # 2026-01-01T00:00:00Z in µs
S, H, D = 1_000_000, 3_600_000_000, 86_400_000_000
CAMPAIGNS = 5
VERDICTS = [("human", 85, "GET"), ("preview", 5, "GET"), ("scanner", 5, "GET"),
            ("automation", 3, "GET"), ("probe", 2, "HEAD")]  # fmt: skip


# The big tables are generated inside PostgreSQL (generate_series, random() after setseed):
# no row crosses the wire, so the full size loads in minutes rather than an hour. `:n` messages
# per campaign (one per contact), `:k` requests, `:v` conversions.
LOAD_SQL = [
    """INSERT INTO contacts (id, workspace_id, phone, external_id, attributes, created_us,
                             updated_us)
       SELECT i, 1, '+1' || lpad(i::text, 10, '0'), 'crm-' || i, '{}', :t0, :t0
       FROM generate_series(1::bigint, :n) i""",
    # Campaign c (0..4) is sent at T0 + 2c days; contact i's message is delivered 5 s + (i % 60)
    # s after it.
    """INSERT INTO messages (id, public_id, campaign_id, contact_id, to_phone, body, encoding,
                             segments, status, queued_us, sent_us, delivered_us, status_us)
       SELECT c * :n + i, 'msg_' || lpad((c * :n + i)::text, 12, '0'), c + 1, i,
              '+14150000000', 'x', 'gsm7', 1, 'delivered', :t0 + c * 2 * :d, :t0 + c * 2 * :d,
              :t0 + c * 2 * :d + 5 * :s + ((i - 1) % 60) * :s, :t0 + c * 2 * :d + 5 * :s
       FROM generate_series(0::bigint, :campaigns - 1) c, generate_series(1::bigint, :n) i""",
    # Request j goes to one of `clicked` messages (40 % of them at the quick size), scattered
    # over all of them by a multiplier prime to their count; its verdict is drawn (85 % human, 5 %
    # preview, 5 % scanner, 3 % automation, 2 % HEAD probes), its delay after the delivery is
    # lognormal (median 1,100 s) up to 5 days; link: cta 85 %, other 12 %, opt-out 3 %.
    """INSERT INTO clicks (id, click_id, token, campaign_id, link_id, message_id, contact_id,
                           at_us, method, is_click, ip, user_agent, headers, verdict, score,
                           reasons, classifier_version, final)
       SELECT j, 'clk_' || lpad(j::text, 12, '0'), 't' || j, m.c + 1,
              3 * m.c + CASE WHEN r2 < 0.85 THEN 1 WHEN r2 < 0.97 THEN 2 ELSE 3 END,
              m.id, m.i, :t0 + m.c * 2 * :d + 5 * :s + ((m.i - 1) % 60) * :s
                  + least(exp(7.0 + 2.0 * sqrt(-2.0 * ln(1.0 - u1)) * cos(2 * pi() * u2))
                          * :s, 5 * :d)::bigint,
              CASE WHEN r < 0.98 THEN 'GET' ELSE 'HEAD' END, r < 0.98, '203.0.113.7',
              'Mozilla/5.0', '{}',
              CASE WHEN r < 0.85 THEN 'human' WHEN r < 0.90 THEN 'preview'
                   WHEN r < 0.95 THEN 'scanner' WHEN r < 0.98 THEN 'automation'
                   ELSE 'probe' END, 0, NULL, 'b1', true
       FROM (SELECT j, random() AS r, random() AS r2, random() AS u1, random() AS u2,
                    1 + (((j - 1) % :clicked) * 1000003) % (:campaigns * :n) AS mid
             FROM generate_series(1::bigint, :k) j) g
       CROSS JOIN LATERAL (SELECT g.mid AS id, (g.mid - 1) / :n AS c,
                                  (g.mid - 1) % :n + 1 AS i) m""",
    # Two thirds of the conversions follow a request drawn at random (any verdict: 85 % are
    # human) by up to 7 days, from its contact; the rest come from contacts at random times.
    """INSERT INTO conversions (id, public_id, workspace_id, event, value_micros, currency,
                                occurred_us, received_us, contact_id, source, dedup_key)
       SELECT v, 'cv_' || lpad(v::text, 12, '0'), 1, 'purchase', val,
              CASE WHEN val IS NULL THEN NULL ELSE 'USD' END, at, at, contact, 'api', 'k' || v
       FROM (SELECT g.v,
                    (ARRAY[NULL, 19990000, 49000000, 120500000])[1 + floor(g.r3 * 4)::int] AS val,
                    CASE WHEN g.v % 3 < 2 THEN k.at_us + floor(g.r * 7 * :d)::bigint
                         ELSE :t0 + floor(g.r * (:campaigns * 2 + 7) * :d)::bigint END AS at,
                    CASE WHEN g.v % 3 < 2 THEN k.contact_id
                         ELSE 1 + floor(g.r2 * :n)::bigint END AS contact
             FROM (SELECT v, random() AS r, random() AS r2, random() AS r3,
                          1 + floor(random() * :k)::bigint AS kid
                   FROM generate_series(1::bigint, :v) v) g
             LEFT JOIN clicks k ON k.id = g.kid) x""",
]
# Sequences after the rows above, then the planner's statistics.
SEQUENCES = "SELECT setval(pg_get_serial_sequence('{0}', 'id'), (SELECT max(id) FROM {0}))"


def load(engine: sa.Engine, messages: int, clicks: int, conversions: int, rollup: bool) -> None:
    """The workspace, its campaigns and links, then the big tables generated in the database
    (`LOAD_SQL`), and the click rollup of the campaign the report reads."""
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO workspaces (id, public_id, slug, name, is_demo, "
                             "created_us) VALUES (1, 'ws_bench', 'bench', 'Bench', false, :t)"),
                     {"t": T0})  # fmt: skip
        conn.execute(sa.text("INSERT INTO domains (id, workspace_id, host, scheme, path_prefix, "
                             "created_us) VALUES (1, 1, 'sms.bench.test', 'https', '/c/', :t)"),
                     {"t": T0})  # fmt: skip
        for c in range(CAMPAIGNS):
            conn.execute(
                sa.text("INSERT INTO campaigns (id, public_id, workspace_id, slug, name, "
                        "template, domain_id, status, created_us, sent_us, options) VALUES "
                        "(:i, :p, 1, :s, :s, 'Hi https://a.test/x https://a.test/y stop "
                        "https://a.test/stop', 1, 'sent', :t, :t, '{}')"),
                {"i": c + 1, "p": f"cmp_bench{c}", "s": f"c{c}", "t": T0 + c * 2 * D},
            )  # fmt: skip
            for idx, (url, role) in enumerate(
                [("https://a.test/x", "cta"), ("https://a.test/y", "other"),
                 ("https://a.test/stop", "optout")]
            ):  # fmt: skip
                conn.execute(
                    sa.text("INSERT INTO links (id, campaign_id, idx, url, role, options) "
                            "VALUES (:i, :c, :x, :u, :r, '{}')"),
                    {"i": 3 * c + idx + 1, "c": c + 1, "x": idx, "u": url, "r": role},
                )  # fmt: skip
        params = {
            "n": messages, "k": clicks, "v": conversions, "campaigns": CAMPAIGNS, "t0": T0,
            "s": S, "d": D, "clicked": max(1, min(CAMPAIGNS * messages, clicks * 2 // 5)),
        }  # fmt: skip
        params = {k: Int8(v) for k, v in params.items()}  # bigint arithmetic throughout
        conn.execute(sa.text("SELECT setseed(0.16)"))
        for sql in LOAD_SQL:
            conn.execute(sa.text(sql), params)
        for table in ("contacts", "messages", "clicks", "conversions"):
            conn.execute(sa.text(SEQUENCES.format(table)))
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text("VACUUM ANALYZE"))
    if rollup:
        with engine.begin() as conn:
            rebuild_click_rollup(conn, campaign_id=1)  # the report's campaign (c0)


def timed(fn: Callable[[], object]) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def p95(xs: list[float]) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, round(0.95 * (len(s) - 1)))]


CHECKSUM = """
SELECT count(*), sum(hashtext(concat_ws(',', conversion_id, model, kind, campaign_id, message_id,
                                        link_id, click_row, credit, delay_us, settled))::bigint)
FROM conversion_credits
"""


def loadavg() -> str:
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def bench(url: str, args: argparse.Namespace) -> dict[str, object]:
    engine = create_engine(url)
    migrate(engine)
    load_s = timed(lambda: load(engine, args.messages, args.clicks, args.conversions, args.report))
    store = AttributionQueries(engine)
    queries = ReportQueries(engine, ua_facts=ua_facts)
    ws = Workspace(1, "ws_bench", "bench", "Bench")
    now = T0 + 30 * D
    out: dict[str, object] = {"load_s": round(load_s, 1), "loadavg_before": loadavg()}

    def scan() -> object:
        with engine.connect() as conn:
            return conn.execute(sa.text("SELECT count(*), sum(at_us) FROM clicks")).one()

    def checksum() -> tuple[int, int]:
        with engine.connect() as conn:
            n, h = conn.execute(sa.text(CHECKSUM)).one()
            return int(n), int(h or 0)

    anchor_scan = [timed(scan) for _ in range(3)]
    runs: list[float] = []
    done = attribution.AttributionRun()
    for r in range(args.reattribute_runs):
        if r:  # a window change: every credit is replaced
            attribution.set_settings(store, ws, None, click_window=("7d", "5d")[r % 2],
                                     now_us=now)  # fmt: skip
        t = time.perf_counter()
        done = attribution.reattribute(store, ws.id, now)
        runs.append(time.perf_counter() - t)
        assert done.reattributed == [ws.id], done
    out["conversions"] = done.attributed
    out["reattribute_s"] = [round(x, 1) for x in runs]
    out["anchor_click_scan_s"] = round(statistics.median(anchor_scan), 2)
    if args.compare:  # the same revision again, by the old path and by the database
        python = AttributionQueries(engine, in_database=False)
        py_s = timed(lambda: attribution.reattribute(python, ws.id, now))
        py_sum = checksum()
        db_s = timed(lambda: attribution.reattribute(store, ws.id, now))
        assert checksum() == py_sum, (checksum(), py_sum)
        out["compare"] = {
            "python_s": round(py_s, 1), "database_s": round(db_s, 1),
            "ratio": round(py_s / db_s, 1), "credit_rows_equal": py_sum[0],
        }  # fmt: skip
    if args.floors:
        out["floors"] = floors(engine, store, ws.id)
    with engine.connect() as conn:
        out["credits_last_touch_by_kind"] = dict(conn.execute(sa.text(
            "SELECT kind, count(*) FROM conversion_credits WHERE model = 'last_touch' "
            "OR kind = 'none' GROUP BY kind")).all())  # fmt: skip
    out["loadavg_after_reattribution"] = loadavg()
    if args.report:
        out.update(report(engine, store, queries, ws, args.runs))
    engine.dispose()
    return out


def floors(engine: sa.Engine, store: AttributionQueries, workspace_id: int) -> dict[str, float]:
    """What PostgreSQL itself takes, in the same minutes: picking every conversion's new
    credits and only counting them (`NEW_CREDITS` over the whole workspace, one statement, the
    batch's settings), and writing that many credits into a copy of `conversion_credits` with
    its indexes (the writes of a first attribution, nothing compared)."""
    revision, _ = store.attribution_revisions(workspace_id)
    rules = attribution.WorkspaceRules.of(store, workspace_id, revision)
    params = recredit_params(workspace_id, rules, 0, 2**62)
    with engine.connect() as conn:
        raw = conn.connection.driver_connection
        assert raw is not None
        with raw.cursor() as cur:
            for setting in RECREDIT_SETTINGS:
                cur.execute(setting)
            t = time.perf_counter()
            cur.execute(f"SELECT count(*) FROM ({NEW_CREDITS}) n", params)
            select_s = time.perf_counter() - t
            cur.execute("CREATE TABLE credits_copy (LIKE conversion_credits INCLUDING ALL)")
            t = time.perf_counter()
            cur.execute("INSERT INTO credits_copy SELECT * FROM conversion_credits")
            copy_s = time.perf_counter() - t
            cur.execute("DROP TABLE credits_copy")
        raw.commit()
    return {"select_new_credits_s": round(select_s, 1), "write_every_credit_s": round(copy_s, 1)}


def report(
    engine: sa.Engine, store: AttributionQueries, queries: ReportQueries, ws: Workspace, runs: int
) -> dict[str, object]:
    report_ms: list[float] = []
    anchor_ms: list[float] = []
    for _ in range(runs):  # interleaved: contention hits both alike
        anchor_ms.append(1000 * timed(lambda: reports.campaign_report(queries, ws, "c0")))
        report_ms.append(1000 * timed(
            lambda: attribution.campaign_conversions(store, queries, ws, "c0")))  # fmt: skip
    rep = attribution.campaign_conversions(store, queries, ws, "c0")
    return {
        "report_ms": {
            "median": round(statistics.median(report_ms), 1),
            "p95": round(p95(report_ms), 1),
        },
        "anchor_click_report_ms": {
            "median": round(statistics.median(anchor_ms), 1),
            "p95": round(p95(anchor_ms), 1),
        },
        "report_campaign": {
            "delivered": rep.delivered,
            "conversions": rep.figures.conversions,
            "ctcr": rep.figures.ctcr,
        },
    }


def main() -> int:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--quick", action="store_true", help="100k conversions over 1M clicks")
    p.add_argument("--messages", type=int, help="per campaign (5 campaigns; default 1,000,000)")
    p.add_argument("--clicks", type=int, help="default 10,000,000 (--quick: 1,000,000)")
    p.add_argument("--conversions", type=int, help="default 1,000,000 (--quick: 100,000)")
    p.add_argument("--reattribute-runs", type=int, default=2)
    p.add_argument("--runs", type=int, default=15)
    p.add_argument(
        "--compare",
        action="store_true",
        help="also time the old Python path against the database's on the same data",
    )
    p.add_argument(
        "--floors",
        action="store_true",
        help="also time what PostgreSQL takes to pick the new credits and to write them all",
    )
    p.add_argument(
        "--no-report",
        dest="report",
        action="store_false",
        help="skip the conversions report (and the click rollup it reads)",
    )
    args = p.parse_args()
    args.messages = args.messages or (200_000 if args.quick else 1_000_000)
    args.clicks = args.clicks or (1_000_000 if args.quick else 10_000_000)
    args.conversions = args.conversions or (100_000 if args.quick else 1_000_000)
    name = f"clicktrail_bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        result = bench(PG_ADMIN.rsplit("/", 1)[0] + "/" + name, args)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
    out = {
        "command": " ".join(["bench/attribution_bench.py", *sys.argv[1:]]),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.python_version()}",
        "size": {
            "messages": CAMPAIGNS * args.messages,
            "clicks": args.clicks,
            "conversions": args.conversions,
        },
        **result,
        "loadavg_end": loadavg(),
    }
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
