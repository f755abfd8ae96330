"""Instructions per redirect, counted by valgrind's callgrind: a figure that does not move with
the load of a shared machine, for comparing commits (wall-clock runs: bench/redirect.py).

Each server runs under `valgrind --tool=callgrind` with instrumentation off until it has
started; then a client sends a warm-up of requests, the counters are zeroed, N requests are
sent over 16 keep-alive connections (16 at a time, as a loaded event loop sees them), and the
instructions the server process executed for them (every thread: event loop, click writer) are
divided by N. The kernel's share (system calls) is not counted.

Servers: the do-nothing ASGI app (bench/noop_app.py), clicktrail on SQLite with every token
cached ("hot"), and clicktrail with a cold cache and no prefetch, each token requested once
("miss"). With ``--ref REV`` the same is measured for another commit, side by side.

    .venv/bin/python bench/redirect_cost.py                  # the work tree, ~4 minutes
    .venv/bin/python bench/redirect_cost.py --ref HEAD~3     # also that commit, for a ratio

Needs valgrind (installed with apt-get when missing). Only ever connects to 127.0.0.1.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import redirect as bench  # the same data preparation and servers' environment

HEADERS = (
    b"Host: sms.example.com\r\nUser-Agent: " + bench.UA_IPHONE.encode() + b"\r\n"
    b"Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n"
    b"Accept-Language: en-US,en;q=0.9\r\nAccept-Encoding: gzip, deflate, br\r\n"
    b"Sec-Fetch-Site: none\r\nSec-Fetch-Mode: navigate\r\nSec-Fetch-Dest: document\r\n\r\n"
)  # a real iPhone's header set, so the header scan costs what it costs in production


def send_requests(port: int, tokens: list[bytes], n: int, conns: int = 16) -> int:
    socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(conns)]
    done = 0
    try:
        while done < n:
            for s in socks:
                s.sendall(b"GET /c/" + tokens[done % len(tokens)] + b" HTTP/1.1\r\n" + HEADERS)
                done += 1
            for s in socks:
                buf = b""
                while b"\r\n\r\n" not in buf:
                    chunk = s.recv(4096)
                    if not chunk:
                        raise SystemExit("the server closed a connection")
                    buf += chunk
                if not buf.startswith(b"HTTP/1.1 302"):
                    raise SystemExit(f"unexpected answer: {buf[:80]!r}")
    finally:
        for s in socks:
            s.close()
    return done


def measure(
    argv: list[str], env: dict[str, str], cwd: Path, tokens: list[bytes], n: int, warm: int
) -> float:
    """Return instructions per request of the server started by `argv` under callgrind."""
    warm_tokens = tokens[n:] if len(tokens) > n + warm else tokens
    return measure_samples(argv, env, cwd, warm_tokens, [tokens], n, warm)[0]


def measure_samples(
    argv: list[str],
    env: dict[str, str],
    cwd: Path,
    warm_tokens: list[bytes],
    samples: list[list[bytes]],
    n: int,
    warm: int,
) -> list[float]:
    """Return instructions per request of the server started by `argv` under callgrind, once
    per entry of `samples` (n requests over its tokens each; counters zeroed before each), in
    one server process after a warm-up of `warm` requests over `warm_tokens`."""
    port = bench.free_port()
    out = cwd / f"callgrind.{port}"
    log = cwd / f"callgrind.{port}.log"
    proc = subprocess.Popen(
        ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}",
         *argv, "--port", str(port)],
        env=env, cwd=cwd, stdout=log.open("w"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        bench.wait_http(port, "/healthz", proc, log)
        time.sleep(2)
        ctl = ["callgrind_control"]
        subprocess.run([*ctl, "-i", "on", str(proc.pid)], check=True, capture_output=True)
        send_requests(port, warm_tokens, warm)
        done: list[int] = []
        for tokens in samples:
            time.sleep(0.5)
            subprocess.run([*ctl, "-z", str(proc.pid)], check=True, capture_output=True)
            done.append(send_requests(port, tokens, n))
            time.sleep(0.5)  # the click writer's next batch
            subprocess.run([*ctl, "-d", str(proc.pid)], check=True, capture_output=True)
    finally:
        proc.terminate()
        proc.wait(120)
    dumps = sorted(cwd.glob(f"callgrind.{port}.*[0-9]"), key=lambda p: int(p.suffix[1:]))
    out = []
    for dump, count in zip(dumps, done, strict=False):
        m = re.search(r"^(?:summary|totals):\s+(\d+)", dump.read_text(errors="replace"), re.M)
        if not m:
            raise SystemExit(f"no callgrind totals in {dump} for {argv}")
        out.append(int(m.group(1)) / count)
    if len(out) != len(samples):
        raise SystemExit(f"{len(out)} callgrind dumps for {len(samples)} samples of {argv}")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--requests", type=int, default=4000)
    ap.add_argument("--recipients", type=int, default=10_000)
    ap.add_argument("--ref", default="", help="also measure this commit (its `src` exported)")
    a = ap.parse_args()
    if not shutil.which("valgrind"):
        subprocess.run(["apt-get", "install", "-y", "valgrind"], check=True)
    scratch = Path(tempfile.mkdtemp(prefix="clicktrail-cost-"))
    try:
        codes: list[tuple[str, Path | None]] = [("work tree", None)]
        if a.ref:
            code = scratch / "ref"
            code.mkdir()
            archive = subprocess.run(
                ["git", "-C", str(bench.ROOT), "archive", a.ref, "src"],
                capture_output=True, check=True,
            ).stdout  # fmt: skip
            subprocess.run(["tar", "-x", "-C", str(code)], input=archive, check=True)
            codes.append((a.ref, code / "src"))
        rows: list[tuple[str, str, float]] = []
        noop = [bench.PY, str(bench.ROOT / "bench" / "noop_app.py")]
        rows.append(("no-op raw ASGI", "-", measure(noop, dict(os.environ), scratch,
                                                    [b"static"], a.requests, 500)))  # fmt: skip
        for label, code in codes:
            bench.CODE = code
            data = scratch / f"data-{len(rows)}"
            db = bench.Db("SQLite", f"sqlite:///{data / 'clicktrail.db'}")
            tokens = bench.prepare(db, data, a.recipients).read_bytes().split()
            random.Random(5).shuffle(tokens)
            env = bench.cli_env(db, data)
            serve = [bench.PY, "-m", "clicktrail", "serve"]
            hot = measure(serve, env, data, tokens[:1000], a.requests, 1000)
            cold_env = {**env, "CLICKTRAIL_TOKEN_PREFETCH_INTERVAL": "0"}
            miss = measure(serve, cold_env, data, tokens, a.requests, 500)
            rows += [(f"clicktrail ({label})", "hot (cached)", hot),
                     (f"clicktrail ({label})", "miss (first click)", miss)]  # fmt: skip
        base = rows[0][2]
        print("| server | tokens | instructions / request | / no-op |")
        print("|---|---|---:|---:|")
        for name, kind, value in rows:
            print(f"| {name} | {kind} | {value:,.0f} | {value / base:.2f} |")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
