"""Benchmark: import N recipients from CSV and send a two-link campaign through the outbox.

Runs the real CLI as child processes on a fresh database (SQLite by default) and reports the
wall time and peak RSS (max resident set size of the child, from wait4) of each step.

    .venv/bin/python bench/import_send.py --recipients 100000
    .venv/bin/python bench/import_send.py --recipients 100000 --database-url postgresql://postgres@127.0.0.1/postgres
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import sqlalchemy as sa


def run(env: dict[str, str], *args: str) -> tuple[float, float]:
    """Run `clicktrail ARGS`; return (seconds, peak RSS in MiB) of that child."""
    secs, rss, _ = run_child(env, *args)
    return secs, rss


def run_child(env: dict[str, str], *args: str) -> tuple[float, float, float]:
    """Run `clicktrail ARGS`; return (seconds, peak RSS in MiB, CPU seconds) of that child."""
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "clicktrail", *args], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(
            f"clicktrail {' '.join(args)} failed: {proc.stderr.read().decode() if proc.stderr else ''}"
        )
    return elapsed, usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime


def steps(csv_path: Path) -> list[tuple[str, list[str]]]:
    """The CLI steps of the benchmark: (label, argv); steps without a label are not shown."""
    return [
        ("setup (migrate, workspace, domain)", ["workspace", "create", "Bench"]),
        ("", ["domain", "add", "sms.example.com"]),
        ("import CSV", ["contacts", "import", str(csv_path)]),
        ("create campaign", ["campaign", "create", "Bench", "--template",
                             "Hi {first_name}, deals: https://shop.example.com/sale?c={city} "
                             "Stop: https://shop.example.com/stop"]),
        ("send (wrap + outbox)", ["campaign", "send", "bench"]),
    ]  # fmt: skip


def write_csv(csv_path: Path, recipients: int) -> None:
    with csv_path.open("w") as f:
        f.write("phone,external_id,first_name,city\n")
        for i in range(recipients):
            f.write(f"+1{201 + i // 10000 % 700}555{i % 10000:04d},c{i},Name{i},City{i % 50}\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--recipients", type=int, default=100_000)
    ap.add_argument(
        "--database-url", default="", help="PostgreSQL admin URL; a scratch database is made"
    )
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        pg_name = None
        if args.database_url:
            pg_name = f"clicktrail_bench_{uuid.uuid4().hex[:8]}"
            admin = sa.create_engine(
                args.database_url.replace("postgresql://", "postgresql+psycopg://"),
                isolation_level="AUTOCOMMIT",
            )
            with admin.connect() as c:
                c.execute(sa.text(f'CREATE DATABASE "{pg_name}"'))
            db_url = args.database_url.rsplit("/", 1)[0] + "/" + pg_name
        else:
            db_url = f"sqlite:///{data / 'bench.db'}"
        env = {**os.environ, "CLICKTRAIL_DATABASE_URL": db_url, "CLICKTRAIL_DATA_DIR": str(data)}
        csv_path = data / "recipients.csv"
        write_csv(csv_path, args.recipients)
        try:
            print(f"# {args.recipients} recipients, {'PostgreSQL' if pg_name else 'SQLite'}, "
                  f"{platform.node()} {platform.processor() or platform.machine()}, "
                  f"{os.cpu_count()} cores, Python {platform.python_version()}")  # fmt: skip
            print("| step | seconds | peak RSS MiB |\n|---|---:|---:|")
            for label, argv in steps(csv_path):
                secs, rss = run(env, *argv)
                if label:
                    print(f"| {label} | {secs:.2f} | {rss:.0f} |")
            lines = sum(1 for _ in (data / "outbox.jsonl").open())
            assert lines == args.recipients, lines
            print(
                f"\noutbox lines: {lines}; self RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB"
            )
        finally:
            if pg_name:
                with admin.connect() as c:
                    c.execute(sa.text(f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)'))


if __name__ == "__main__":
    main()
