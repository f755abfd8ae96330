"""Quick benchmarks: every measured path at a small size, as ratios to an in-run anchor, checked
against the ratios recorded in bench/baseline.json (issue 15).

    make bench-quick               # measure and compare; exit 1 naming every figure that slipped
    make bench-quick BASELINE=1    # measure and record bench/baseline.json (command, machine, date,
                                   # commit, every run of every figure)

Each figure is measured --repeat times (3) in one run and judged by its median; the spread of
the runs ((max - min) / median) is the noise this run measured. A figure slips when its median
ratio is above the recorded one by more than the tolerance: twice the larger spread (this run's
or the recorded one's), and never less than the floor (4 % for instruction counts, which vary by
about 3 % between runs of one commit; 20 % for CPU-time ratios on a shared 2-core machine).

The paths and their anchors (the anchor runs in the same process or child, on the same
database, interleaved with the figure's runs so that a loaded machine slows both):

- redirect: instructions per request (callgrind, `redirect_cost.measure_samples`) of cached and
  first-click redirects / the do-nothing ASGI app's.
- import, send: CPU seconds of `clicktrail contacts import` and `campaign send` (children, as
  `import_send.py` runs them) / a child inserting as many rows into a scratch table of the same
  SQLite file, a committed batch of 1,000 at a time, then reading them back (anchor added here).
- report: the full report's median / the plain-query baseline's (`report_bench.bench`).
- classify: the jobs process's pass over the click inbox (spool lines → provisional verdicts,
  clicks and rollup; `Container.background_jobs()`'s final pass) / reading the same number of
  click rows and rewriting a column of each in batches of 1,000 (anchor added here).
- reclassify: `reclassify.child` (what `clicktrail bots reclassify` runs) / the same anchor.
- wrap: `POST /v1/wrap/batch` of new recipients (`wrap_bench.run`, CPU of the process: server
  and client) / inserting as many rows into a scratch table and reading them back.

Only ever connects to 127.0.0.1; SQLite databases in a temporary folder.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import io
import json
import os
import platform
import random
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import orjson
import sqlalchemy as sa

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import clicktrail  # noqa: E402
import import_send  # noqa: E402
import reclassify  # noqa: E402
import redirect as rbench  # noqa: E402
import redirect_cost  # noqa: E402
import report_bench  # noqa: E402
import wrap_bench  # noqa: E402
from clicktrail.bootstrap import Container  # noqa: E402
from clicktrail.config import load_settings  # noqa: E402
from clicktrail.storage import tables as t  # noqa: E402
from clicktrail.storage.database import create_engine, migrate  # noqa: E402
from clicktrail.storage.inbox import InboxWriter  # noqa: E402

BASELINE = HERE / "baseline.json"
FLOOR = {"instructions": 0.04, "cpu": 0.20, "wall": 0.20}
CLICK_COLUMNS = (  # a click row in spool-line order (the click record's fields)
    "click_id", "token", "campaign_id", "link_id", "message_id", "contact_id", "at_us",
    "method", "ip", "user_agent", "headers",
)  # fmt: skip

Figures = dict[str, dict[str, object]]


def _figure(unit: str, anchor: str, runs: list[float]) -> dict[str, object]:
    med = statistics.median(runs)
    return {
        "unit": unit,
        "anchor": anchor,
        "runs": [round(r, 4) for r in runs],
        "median": round(med, 4),
        "spread": round((max(runs) - min(runs)) / med, 4) if med else 0.0,
    }


# -- anchors ------------------------------------------------------------------------------------

ANCHOR_CHILD = """
import sqlite3, sys
db, n = sys.argv[1], int(sys.argv[2])
conn = sqlite3.connect(db)
conn.execute("CREATE TABLE bench_anchor (id INTEGER PRIMARY KEY, phone TEXT, body TEXT)")
body = "Hi Name, deals: https://sms.example.com/c/AAAAAAAAA Stop: https://sms.example.com/c/BBBBBBBBB"
for start in range(0, n, 1000):
    conn.executemany("INSERT INTO bench_anchor (phone, body) VALUES (?, ?)",
                     [(f"+1201555{i:06d}", body) for i in range(start, min(n, start + 1000))])
    conn.commit()
assert sum(1 for _ in conn.execute("SELECT id, phone, body FROM bench_anchor")) == n
conn.execute("DROP TABLE bench_anchor")
conn.commit()
"""


def child_anchor(db_path: Path, n: int) -> float:
    """CPU seconds of a child that inserts and reads back `n` rows in the SQLite file."""
    proc = subprocess.Popen([sys.executable, "-c", ANCHOR_CHILD, str(db_path), str(n)])
    _, status, usage = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit("the import/send anchor failed")
    return usage.ru_utime + usage.ru_stime


def rows_anchor(engine: sa.Engine, n: int) -> float:
    """CPU seconds of reading `n` click rows and rewriting their score, 1,000 a transaction (or
    inserting `n` rows into a scratch table when there are fewer clicks), in this process."""
    t0 = time.process_time()
    with engine.connect() as conn:
        ids = [i for (i,) in conn.execute(sa.select(t.clicks.c.id).limit(n))]
    if len(ids) < n:
        with engine.begin() as conn:
            conn.execute(sa.text("CREATE TABLE IF NOT EXISTS bench_anchor (id INTEGER, v TEXT)"))
        for start in range(0, n, 1000):
            with engine.begin() as conn:
                conn.execute(
                    sa.text("INSERT INTO bench_anchor (id, v) VALUES (:i, :v)"),
                    [{"i": i, "v": f"row {i}"} for i in range(start, min(n, start + 1000))],
                )
        with engine.begin() as conn:
            conn.execute(sa.text("SELECT id, v FROM bench_anchor")).all()
            conn.execute(sa.text("DROP TABLE bench_anchor"))
        return time.process_time() - t0
    for start in range(0, n, 1000):
        with engine.begin() as conn:
            rows = conn.execute(
                sa.select(t.clicks).where(t.clicks.c.id.in_(ids[start : start + 1000]))
            ).all()
            conn.execute(
                t.clicks.update().where(t.clicks.c.id == sa.bindparam("i")).values(score=0),
                [{"i": r.id} for r in rows],
            )
    return time.process_time() - t0


# -- the paths ----------------------------------------------------------------------------------


def redirect_figures(a: argparse.Namespace, scratch: Path) -> Figures:
    n, samples = a.redirect_requests, a.repeat
    noop = [rbench.PY, str(HERE / "noop_app.py")]
    base = redirect_cost.measure_samples(
        noop, dict(os.environ), scratch, [b"static"], [[b"static"]] * samples, n, 300
    )
    data = scratch / "redirect"
    db = rbench.Db("SQLite", f"sqlite:///{data / 'clicktrail.db'}")
    tokens = rbench.prepare(db, data, a.redirect_recipients).read_bytes().split()
    random.Random(5).shuffle(tokens)
    if len(tokens) < (samples + 1) * n:
        raise SystemExit("too few tokens for the first-click samples: raise --redirect-recipients")
    env = rbench.cli_env(db, data)
    serve = [rbench.PY, "-m", "clicktrail", "serve"]
    hot_tokens = tokens[:1000]
    hot = redirect_cost.measure_samples(
        serve, env, data, hot_tokens, [hot_tokens] * samples, n, 1000
    )
    cold_env = {**env, "CLICKTRAIL_TOKEN_PREFETCH_INTERVAL": "0"}
    miss = redirect_cost.measure_samples(
        serve, cold_env, data, tokens[samples * n :],
        [tokens[i * n : (i + 1) * n] for i in range(samples)], n, min(300, n),
    )  # fmt: skip
    # Each sample's ratio to the median no-op (the no-op's own runs vary by well under 1 %).
    b = statistics.median(base)
    return {
        "redirect_hot": _figure("instructions", "no-op ASGI", [x / b for x in hot]),
        "redirect_miss": _figure("instructions", "no-op ASGI", [x / b for x in miss]),
        "_redirect_absolute": {
            "noop": round(b),
            "hot": round(statistics.median(hot)),
            "miss": round(statistics.median(miss)),
        },
    }


def import_send_figures(a: argparse.Namespace, scratch: Path) -> Figures:
    ratios: dict[str, list[float]] = {"import": [], "send": []}
    for rep in range(a.repeat):
        data = scratch / f"import-send-{rep}"
        data.mkdir()
        db = data / "bench.db"
        env = {**os.environ, "CLICKTRAIL_DATABASE_URL": f"sqlite:///{db}",
               "CLICKTRAIL_DATA_DIR": str(data)}  # fmt: skip
        csv_path = data / "recipients.csv"
        import_send.write_csv(csv_path, a.recipients)
        cpu: dict[str, float] = {}
        for label, argv in import_send.steps(csv_path):
            _, _, cpu[label] = import_send.run_child(env, *argv)
        anchor = child_anchor(db, a.recipients)
        ratios["import"].append(cpu["import CSV"] / anchor)
        ratios["send"].append(cpu["send (wrap + outbox)"] / anchor)
    anchor_name = "child INSERT/SELECT loop, same SQLite file"
    return {k: _figure("cpu", anchor_name, v) for k, v in ratios.items()}


def report_figures(a: argparse.Namespace, scratch: Path) -> Figures:
    args = argparse.Namespace(
        messages=a.messages, clicks=a.messages // 5, runs=9, insert_clicks=500, insert_batch=500,
        insert_rounds=1,
    )  # fmt: skip
    runs = []
    for rep in range(a.repeat):
        res = report_bench.bench(f"sqlite:///{scratch / f'report-{rep}.db'}", "SQLite", args)
        full, base = res["full_ms"], res["baseline_ms"]
        assert isinstance(full, dict)
        assert isinstance(base, dict)
        runs.append(full["median"] / base["median"])
    return {"report": _figure("wall", "plain status/click count queries", runs)}


def _click_db(url: str, requests: int, seed: int) -> sa.Engine:
    engine = create_engine(url)
    migrate(engine)
    reclassify.generate(engine, requests, 20, 300, 2000, seed)
    return engine


def classify_figures(a: argparse.Namespace, scratch: Path) -> Figures:
    runs = []
    # An untimed first run at a tenth of the size: the first classifier of a process loads its
    # parsers and lists (70 % spread between runs without it).
    for rep, requests in [(-1, a.requests // 10)] + [(rep, a.requests) for rep in range(a.repeat)]:
        url = f"sqlite:///{scratch / f'classify-{rep}.db'}"
        engine = _click_db(url, requests, 5 + rep)
        # The generated requests go back into the inbox as the click log writes them: spool
        # lines (JSON arrays in click-record order), 500 to an inbox row.
        with engine.begin() as conn:
            rows = conn.execute(
                sa.select(*(t.clicks.c[c] for c in CLICK_COLUMNS)).order_by(t.clicks.c.id)
            ).all()
            conn.execute(t.clicks.delete())
        writer = InboxWriter(engine)
        lines = [orjson.dumps(list(r)) for r in rows]
        for i in range(0, len(lines), 500):
            writer(lines[i : i + 500])
        writer.close()
        container = Container(
            load_settings(env={"CLICKTRAIL_DATABASE_URL": url, "CLICKTRAIL_DATA_DIR": str(scratch)})
        )
        _, final_pass = container.background_jobs()
        t0 = time.process_time()
        final_pass()
        took = time.process_time() - t0
        with engine.connect() as conn:
            stored = conn.execute(sa.select(sa.func.count()).select_from(t.clicks)).scalar_one()
        if stored != len(rows):
            raise SystemExit(f"classification stored {stored} of {len(rows)} requests")
        container.dispose()
        ratio = took / rows_anchor(engine, len(rows))
        if rep >= 0:
            runs.append(ratio)
        engine.dispose()
    return {"classify": _figure("cpu", "read + rewrite as many click rows", runs)}


def reclassify_figures(a: argparse.Namespace, scratch: Path) -> Figures:
    runs = []
    for rep in range(a.repeat):
        url = f"sqlite:///{scratch / f'reclassify-{rep}.db'}"
        engine = _click_db(url, a.requests, 5 + rep)
        t0 = time.process_time()
        with contextlib.redirect_stdout(io.StringIO()):
            reclassify.child(url)
        took = time.process_time() - t0
        runs.append(took / rows_anchor(engine, a.requests))
        engine.dispose()
    return {"reclassify": _figure("cpu", "read + rewrite as many click rows", runs)}


def wrap_figures(a: argparse.Namespace, scratch: Path) -> Figures:
    runs = []
    for rep in range(a.repeat):
        folder = scratch / f"wrap-{rep}"
        folder.mkdir()
        url = f"sqlite:///{folder / 'bench.db'}"
        t0 = time.process_time()
        wrap_bench.run(url, a.items, 1, folder)
        took = time.process_time() - t0
        runs.append(took / rows_anchor(create_engine(url), 3 * a.items))
    return {"wrap": _figure("cpu", "insert + read back 3x the items", runs)}


PATHS: dict[str, Callable[[argparse.Namespace, Path], Figures]] = {
    "redirect": redirect_figures,
    "import_send": import_send_figures,
    "report": report_figures,
    "classify": classify_figures,
    "reclassify": reclassify_figures,
    "wrap": wrap_figures,
}


# -- compare and record -------------------------------------------------------------------------


def _git(*args: str) -> str:
    """Run git in the tree whose code is measured (PYTHONPATH may point at another one)."""
    code = Path(clicktrail.__file__).resolve().parents[2]
    return subprocess.run(
        ["git", "-C", str(code), *args], capture_output=True, text=True
    ).stdout.strip()


def machine() -> str:
    cpu = next(
        (line.split(":", 1)[1].strip()
         for line in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines()
         if line.startswith("Model name")),
        platform.processor() or platform.machine(),
    )  # fmt: skip
    load = os.getloadavg()[0]
    return (
        f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"load average {load:.1f} at the start"
    )


def tolerance(now: dict[str, object], base: dict[str, object]) -> float:
    spread = max(float(now["spread"]), float(base["spread"]))  # type: ignore[arg-type]
    return max(FLOOR[str(now["unit"])], 2 * spread)


def compare(figures: Figures, recorded: Figures) -> list[str]:
    """Print each figure beside its recorded ratio; return the names that slipped."""
    slipped = []
    print("| figure | anchor | runs (ratio to anchor) | median | spread | recorded | change | "
          "tolerance | |\n|---|---|---|---:|---:|---:|---:|---:|---|")  # fmt: skip
    for name, fig in figures.items():
        if name.startswith("_"):
            continue
        runs = ", ".join(f"{r:.3f}" for r in fig["runs"])  # type: ignore[attr-defined]
        med = float(fig["median"])  # type: ignore[arg-type]
        base = recorded.get(name)
        if base is None:
            print(f"| {name} | {fig['anchor']} | {runs} | {med:.3f} | {fig['spread']:.1%} | "
                  "- | - | - | not recorded |")  # fmt: skip
            continue
        was = float(base["median"])  # type: ignore[arg-type]
        change = med / was - 1
        tol = tolerance(fig, base)
        bad = change > tol
        if bad:
            slipped.append(name)
        verdict = "**SLIPPED**" if bad else ("faster" if change < -tol else "ok")
        print(f"| {name} | {fig['anchor']} | {runs} | {med:.3f} | {fig['spread']:.1%} | "
              f"{was:.3f} | {change:+.1%} | {tol:.0%} | {verdict} |")  # fmt: skip
    return slipped


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--record", action="store_true", help="write bench/baseline.json")
    ap.add_argument("--baseline", type=Path, default=BASELINE)
    ap.add_argument("--only", action="append", choices=sorted(PATHS), help="(repeatable)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--redirect-requests", type=int, default=500)
    ap.add_argument("--redirect-recipients", type=int, default=2000)
    ap.add_argument("--recipients", type=int, default=5000, help="import and send")
    ap.add_argument("--messages", type=int, default=50_000, help="report (clicks: a fifth)")
    ap.add_argument("--requests", type=int, default=10_000, help="classify and reclassify")
    ap.add_argument("--items", type=int, default=1000, help="wrap API, per call")
    a = ap.parse_args()
    if a.repeat < 3:
        ap.error("--repeat must be at least 3: the tolerance comes from the runs' spread")
    if not shutil.which("valgrind") and (not a.only or "redirect" in a.only):
        subprocess.run(["apt-get", "install", "-y", "valgrind"], check=True)
    started = time.perf_counter()
    info = {
        "command": shlex.join(["bench/quick.py", *sys.argv[1:]]),
        "machine": machine(),
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": _git("rev-parse", "--short", "HEAD")
        + (
            " + uncommitted changes"
            if _git("status", "--porcelain", "--untracked-files=no", "--", "src")
            else ""
        ),
    }
    print(f"# bench-quick: {info['command']} — {info['machine']}, {info['date']}, "
          f"commit {info['commit']}", flush=True)  # fmt: skip
    figures: Figures = {}
    scratch = Path(tempfile.mkdtemp(prefix="clicktrail-quick-"))
    try:
        for name, fn in PATHS.items():
            if a.only and name not in a.only:
                continue
            t0 = time.perf_counter()
            path_dir = scratch / name
            path_dir.mkdir()
            figures.update(fn(a, path_dir))
            print(f"  {name}: {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    info["seconds"] = round(time.perf_counter() - started)
    recorded: Figures = {}
    if a.baseline.exists():
        saved = json.loads(a.baseline.read_text())
        recorded = saved["figures"]
        r = saved["recorded"]
        print(f"\nrecorded: {r['command']} — {r['machine']}, {r['date']}, commit {r['commit']}\n")
    slipped = compare(figures, recorded)
    print(f"\n{info['seconds']} s in all")
    if a.record:
        if a.baseline.exists() and a.only:
            figures = {**recorded, **figures}
        a.baseline.write_text(json.dumps({"recorded": info, "figures": figures}, indent=1) + "\n")
        print(f"recorded in {a.baseline}")
        return 0
    if slipped:
        print(f"\nSLIPPED beyond the measured noise: {', '.join(slipped)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
