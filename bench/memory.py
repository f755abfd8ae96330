"""Benchmark: redirect process memory with 10 million live tokens in storage.

Issue 4's target: a redirect process stays under 150 MB RSS with 10 million live tokens in
storage. This builds a scratch SQLite database with N tokens (bulk inserts through the real
schema), starts `clicktrail serve` on it, sends wrk load over random distinct tokens (many
more than the token cache holds, so the cache fills and evicts), and reads the server's RSS
and peak RSS (VmHWM) from /proc before and after.

    .venv/bin/python bench/memory.py                    # 10,000,000 tokens
    .venv/bin/python bench/memory.py --tokens 1000000   # quicker
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = str(ROOT / ".venv" / "bin" / "python")
sys.path.insert(0, str(ROOT / "src"))

from clicktrail.domain.tokens import new_token  # noqa: E402
from clicktrail.storage.database import create_engine, migrate  # noqa: E402

HOST = "sms.example.com"
UA = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1"
)


def build(db: Path, n_tokens: int, sample: int) -> list[str]:
    """Create the schema and N tokens over 10,000 messages; return `sample` of the tokens."""
    engine = create_engine(f"sqlite:///{db}")
    migrate(engine)
    engine.dispose()
    con = sqlite3.connect(db)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=OFF")
    now = int(time.time() * 1e6)
    con.execute("INSERT INTO workspaces VALUES (1,'ws_bench','bench','Bench',0,?)", (now,))
    con.execute(
        "INSERT INTO domains (id, workspace_id, host, scheme, port, path_prefix, fallback_url,"
        " created_us) VALUES (1,1,?,'https',NULL,'/c/',NULL,?)",
        (HOST, now),
    )
    con.execute(
        "INSERT INTO campaigns (id, public_id, workspace_id, slug, name, template, domain_id,"
        " list_id, status, created_us, sent_us, options) VALUES (1,'cmp_bench',1,'bench',"
        "'Bench','x',1,NULL,'sent',?,?,'{}')",
        (now, now),
    )
    con.execute(
        "INSERT INTO links (id, campaign_id, idx, url, role, options) VALUES"
        " (1,1,0,'https://shop.example.com/sale?src=sms','cta','{}'),"
        " (2,1,1,'https://shop.example.com/stop','optout','{}')"
    )
    n_messages = 10_000
    con.executemany(
        "INSERT INTO contacts (id, workspace_id, phone, attributes, created_us, updated_us)"
        " VALUES (?,1,?,'{}',?,?)",
        ((i, f"+1415{i:07d}", now, now) for i in range(1, n_messages + 1)),
    )
    con.executemany(
        "INSERT INTO messages (id, public_id, campaign_id, contact_id, to_phone, body,"
        " encoding, segments, status, queued_us, sent_us, delivered_us, status_us)"
        " VALUES (?,?,1,?,?,'x','GSM-7',1,'delivered',?,?,?,?)",
        ((i, f"msg_{i}", i, f"+1415{i:07d}", now, now, now, now)
         for i in range(1, n_messages + 1)),
    )  # fmt: skip
    rng = random.Random(7)
    keep: list[str] = []
    batch: list[tuple[str, int, int, int]] = []
    for i in range(n_tokens):
        tok = new_token()
        mid = i % n_messages + 1
        batch.append((tok, mid, 1 + (i & 1), mid))
        if len(keep) < sample:
            keep.append(tok)
        elif rng.random() < sample / (i + 1):
            keep[rng.randrange(sample)] = tok
        if len(batch) == 200_000:
            con.executemany(
                "INSERT OR IGNORE INTO tokens (token, message_id, link_id, campaign_id, contact_id)"
                " VALUES (?,?,?,1,?)",
                batch,
            )
            batch.clear()
    if batch:
        con.executemany(
            "INSERT OR IGNORE INTO tokens (token, message_id, link_id, campaign_id, contact_id)"
            " VALUES (?,?,?,1,?)",
            batch,
        )
    con.commit()
    con.close()
    return keep


def rss(pid: int) -> tuple[float, float]:
    """Return (VmRSS, VmHWM) of `pid` in MiB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        fields[key] = value.strip()
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--tokens", type=int, default=10_000_000)
    ap.add_argument("--sample", type=int, default=1_000_000, help="distinct tokens requested")
    ap.add_argument("--duration", type=int, default=60, help="seconds of wrk load")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        db = data / "clicktrail.db"
        t0 = time.perf_counter()
        tokens = build(db, args.tokens, args.sample)
        built = time.perf_counter() - t0
        (data / "tokens.txt").write_text("\n".join(tokens))
        lua = data / "tokens.lua"
        lua.write_text(
            "local t = {}\n"
            f'for line in io.lines("{data / "tokens.txt"}") do t[#t + 1] = line end\n'
            "math.randomseed(42)\n"
            'request = function() return wrk.format("GET", "/c/" .. t[math.random(#t)]) end\n'
        )
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        env = {**os.environ, "CLICKTRAIL_DATABASE_URL": f"sqlite:///{db}",
               "CLICKTRAIL_DATA_DIR": str(data), "CLICKTRAIL_LOG_LEVEL": "warning"}  # fmt: skip
        server = subprocess.Popen([PY, "-m", "clicktrail", "serve", "--port", str(port)], env=env)
        try:
            for _ in range(300):
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1)
                    break
                except OSError:
                    time.sleep(0.1)
            start_rss, _ = rss(server.pid)
            wrk = subprocess.run(
                ["wrk", "-t1", "-c64", f"-d{args.duration}s", "-s", str(lua),
                 "-H", f"Host: {HOST}", "-H", f"User-Agent: {UA}", f"http://127.0.0.1:{port}"],
                capture_output=True, text=True, check=True,
            )  # fmt: skip
            end_rss, peak = rss(server.pid)
            # The jobs process (classification; ADR 0006) is a child of the server: not a
            # redirect process, but reported beside it.
            kids = Path(f"/proc/{server.pid}/task/{server.pid}/children").read_text().split()
            jobs = [(int(k), *rss(int(k))) for k in kids if "spawn_main" in _cmdline(int(k))]
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=60)
        requests = [ln for ln in wrk.stdout.splitlines() if "requests in" in ln]
        cpu = next((ln.split(":", 1)[1].strip() for ln in
                    Path("/proc/cpuinfo").read_text().splitlines() if ln.startswith("model name")), "?")  # fmt: skip
        print(f"# Redirect memory with {args.tokens:,} tokens in SQLite")
        print(
            f"{dt.date.today()} · {cpu} · {os.cpu_count()} cores · Python {platform.python_version()}"
        )
        print(
            f"command: .venv/bin/python bench/memory.py --tokens {args.tokens} --sample {args.sample} --duration {args.duration}"
        )
        print(f"database built in {built:.0f} s ({db.stat().st_size / 2**20:.0f} MiB)")
        print(
            f"wrk over {len(tokens):,} distinct random tokens: {requests[0].strip() if requests else '?'}"
        )
        print("| RSS after start | RSS after load | peak RSS (VmHWM) |\n|---:|---:|---:|")
        print(f"| {start_rss:.0f} MiB | {end_rss:.0f} MiB | {peak:.0f} MiB |")
        for pid, now, top in jobs:
            print(f"jobs process {pid}: RSS {now:.0f} MiB, peak {top:.0f} MiB")


if __name__ == "__main__":
    main()
