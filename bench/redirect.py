"""Benchmark: the redirect hot path (``GET /c/<token>`` → 302, click recorded) against anchors.

Measures side by side, in one run, each server pinned to core 0 and the load to core 1:

  (a) nginx ``return 302`` with the access log on (/work/shared/bench/nginx-302.conf.tmpl),
  (b) a do-nothing raw ASGI app under clicktrail's uvicorn configuration (bench/noop_app.py),
  (c) clicktrail on SQLite, random tokens out of 2 × N (cache-cold start) and a small hot set,
  (d) clicktrail on PostgreSQL (``--postgres URL``: a scratch database is created and dropped),
  (e) fixed-rate (open-loop) runs at half of clicktrail's measured rate on cached tokens, and at
      the issue's half rates (20,000/s; 12,500/s on PostgreSQL) where this machine reaches their
      double, with bench/loadgen.c (compiled with gcc; wrk2 is not packaged by Debian).

PostgreSQL's own processes (the server the inbox writes and lookups go to) are pinned to the
load core for the whole run (``--db-core``, restored at the end): a production database runs on
its own machine, and unpinned it took a share of the redirect's core that SQLite, in-process,
does not. The jobs process (classification) is paused during clicktrail's runs (SIGSTOP once
the server has started, SIGCONT before its SIGTERM): the stand-in for a jobs process on a core
of its own (`jobs_cpus`), which this 2-core machine has not beside the load generator's; a job
sharing the server's core delays redirects by up to a scheduler tick whatever its priority
(bench/RESULTS.md). With ``--jobs both`` (the default) the hot-token runs are also measured with
it running on the server's core, niced, as `clicktrail serve` runs it without `jobs_cpus`.

Closed-loop runs use ``wrk -t1 -c64 --latency`` with a Lua script that requests random tokens.
Each clicktrail run gets a fresh server (a cold token cache), a discarded warm-up, the measured
run, then SIGTERM; the requests stored during the run (in ``clicks``, or still in the click inbox
for the jobs process to classify) are compared with what the load generator counted.

    .venv/bin/python bench/redirect.py --quick                      # smoke test, ~1 minute
    .venv/bin/python bench/redirect.py --postgres postgresql://postgres@127.0.0.1:5432/postgres

Installs nginx and wrk with apt-get when missing. Only ever sends load to 127.0.0.1.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import random
import re
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PY = str(ROOT / ".venv" / "bin" / "python")
if not Path(PY).exists():
    PY = sys.executable
NGINX_TEMPLATE = Path("/work/shared/bench/nginx-302.conf.tmpl")
NGINX_PORT = 18080  # fixed by the template
DOMAIN = "sms.example.com"
UA_IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1"
)
TOKEN_RE = re.compile(rb"https://sms\.example\.com/c/([0-9A-Za-z]+)")

# Requests random tokens from a file; counts what it sent so in-flight requests at the end of a
# run (sent, maybe recorded, never answered to wrk) can be told apart from lost clicks.
WRK_LUA = r"""
local reqs = {}
local n = 0
sent = 0
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  local h = {}
  for k, v in pairs(wrk.headers) do
    h[#h + 1] = k .. ": " .. v
  end
  local suffix = " HTTP/1.1\r\n" .. table.concat(h, "\r\n") .. "\r\n\r\n"
  -- Whole requests built once: request() then allocates nothing.
  for line in io.lines(args[1]) do
    n = n + 1
    reqs[n] = "GET /c/" .. line .. suffix
  end
  math.randomseed(tonumber(args[2]))
end

function request()
  sent = sent + 1
  return reqs[math.random(n)]
end

function done(summary, latency, requests)
  local s = 0
  for _, t in ipairs(threads) do
    s = s + t:get("sent")
  end
  io.write(string.format("SENT %d\n", s))
end
"""


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# processes


class Procs:
    """Every child process this script starts, so all of them are ended on any exit."""

    def __init__(self) -> None:
        self.live: list[subprocess.Popen[Any]] = []

    def start(self, argv: list[str], **kw: Any) -> subprocess.Popen[Any]:
        p = subprocess.Popen(argv, **kw)
        self.live.append(p)
        return p

    def stop(self, p: subprocess.Popen[Any], sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        if p.poll() is None:
            p.send_signal(sig)
            try:
                p.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=10)
        if p in self.live:
            self.live.remove(p)
        return p.returncode

    def stop_all(self) -> None:
        for p in list(self.live):
            with contextlib.suppress(Exception):
                self.stop(p, timeout=10)


PROCS = Procs()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(port: int, path: str, proc: subprocess.Popen[Any], logfile: Path | None) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            text = logfile.read_text() if logfile and logfile.exists() else ""
            raise SystemExit(f"server exited with {proc.returncode}:\n{text}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=1):
                return
        except urllib.error.HTTPError:
            return  # it answers
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"nothing answered on 127.0.0.1:{port}{path} within 60 s")


def ensure_tools() -> None:
    missing = [name for name in ("nginx", "wrk", "gcc") if not shutil.which(name)]
    if shutil.which("nginx") is None and Path("/usr/sbin/nginx").exists():
        os.environ["PATH"] += ":/usr/sbin"
        missing = [m for m in missing if m != "nginx"]
    if not missing:
        return
    log(f"installing {' '.join(missing)} with apt-get")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    cmd = ["apt-get", "install", "-y", "nginx", "wrk", "gcc"]
    if subprocess.run(cmd, env=env).returncode != 0:
        subprocess.run(["apt-get", "update"], env=env, check=True)
        subprocess.run(cmd, env=env, check=True)
    if Path("/usr/sbin/nginx").exists() and "/usr/sbin" not in os.environ["PATH"].split(":"):
        os.environ["PATH"] += ":/usr/sbin"


# ---------------------------------------------------------------------------------------------
# data


@dataclass
class Db:
    label: str
    url: str
    scratch_name: str | None = None  # PostgreSQL database to drop at the end

    def engine(self) -> Any:
        import sqlalchemy as sa

        url = self.url
        if url.startswith(("postgresql://", "postgres://")):
            url = "postgresql+psycopg://" + url.split("://", 1)[1]
        return sa.create_engine(url)

    def clicks_between(self, from_us: int, to_us: int) -> tuple[int, int]:
        """Return (requests, distinct tokens) stored with a time in [from_us, to_us]: in
        `clicks`, or still in `click_inbox` (batches of raw spool lines) waiting for
        classification."""
        import sqlalchemy as sa

        eng = self.engine()
        try:
            with eng.connect() as c:
                tokens = [
                    tok
                    for (tok,) in c.execute(
                        sa.text("SELECT token FROM clicks WHERE at_us BETWEEN :a AND :b"),
                        {"a": from_us, "b": to_us},
                    )
                ]
                for (raw,) in c.execute(sa.text("SELECT raw FROM click_inbox")):
                    for line in raw.split("\n"):
                        if line:
                            rec = json.loads(line)
                            if from_us <= rec[6] <= to_us:
                                tokens.append(rec[1])
            return len(tokens), len(set(tokens))
        finally:
            eng.dispose()


CODE: Path | None = None  # with --ref: an exported `src` tree that shadows the working tree


def cli_env(db: Db, data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLICKTRAIL_")}
    if CODE is not None:
        env["PYTHONPATH"] = str(CODE)
    env.update(
        CLICKTRAIL_DATABASE_URL=db.url,
        CLICKTRAIL_DATA_DIR=str(data_dir),
        CLICKTRAIL_LOG_LEVEL="warning",
    )
    return env


def prepare(db: Db, data_dir: Path, recipients: int) -> Path:
    """Create workspace, domain, contacts and a two-link campaign; send it; return token file."""
    data_dir.mkdir(parents=True, exist_ok=True)
    env = cli_env(db, data_dir)
    csv_path = data_dir / "recipients.csv"
    with csv_path.open("w") as f:
        f.write("phone,external_id,first_name,city\n")
        for i in range(recipients):
            f.write(f"+1{201 + i // 10000 % 700}555{i % 10000:04d},c{i},Name{i},City{i % 50}\n")
    steps = [
        ["workspace", "create", "Bench"],
        ["domain", "add", DOMAIN],
        ["contacts", "import", str(csv_path)],
        ["campaign", "create", "Bench", "--template",
         "Hi {first_name}, deals: https://shop.example.com/sale?c={city} "
         "Stop: https://shop.example.com/stop", "--link-role", "2=optout"],
        ["campaign", "send", "bench"],
    ]  # fmt: skip
    for argv in steps:
        t0 = time.perf_counter()
        proc = subprocess.run(
            [PY, "-m", "clicktrail", *argv], env=env, capture_output=True, text=True, cwd=data_dir
        )
        if proc.returncode != 0:
            raise SystemExit(f"clicktrail {' '.join(argv)} failed:\n{proc.stderr}")
        log(f"  {db.label}: clicktrail {argv[0]} {argv[1]} ({time.perf_counter() - t0:.1f} s)")
    tokens: list[bytes] = []
    with (data_dir / "outbox.jsonl").open("rb") as f:
        for line in f:
            tokens.extend(TOKEN_RE.findall(json.loads(line)["body"].encode()))
    if len(tokens) != 2 * recipients or len(set(tokens)) != len(tokens):
        raise SystemExit(f"expected {2 * recipients} distinct tokens, got {len(tokens)}")
    path = data_dir / "tokens.txt"
    path.write_bytes(b"\n".join(tokens) + b"\n")
    return path


def pin_postgres(cores: str) -> int:
    """Set the CPU affinity of every PostgreSQL process (backends forked later inherit the
    postmaster's); return how many were pinned. Needs the right to (root, or the postgres
    user); without it nothing changes and 0 is returned."""
    pids = subprocess.run(["pgrep", "-u", "postgres"], capture_output=True, text=True)
    done = 0
    for pid in pids.stdout.split():
        r = subprocess.run(["taskset", "-a", "-p", "-c", cores, pid], capture_output=True)
        done += r.returncode == 0
    return done


# ---------------------------------------------------------------------------------------------
# servers


class Server:
    """One server under test: start pinned to the server core, stop gracefully."""

    name = ""

    def __init__(self, core: int) -> None:
        self.core = core
        self.proc: subprocess.Popen[Any] | None = None
        self.port = 0

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        if self.proc is not None:
            code = PROCS.stop(self.proc)
            self.proc = None
            if code not in (0, -signal.SIGTERM, -signal.SIGQUIT):
                raise SystemExit(f"{self.name} exited with {code}")


class Nginx(Server):
    name = "nginx return 302 (access log on)"

    def __init__(self, core: int, prefix: Path, template: Path) -> None:
        super().__init__(core)
        self.prefix = prefix
        prefix.mkdir(parents=True, exist_ok=True)
        (prefix / "tmp").mkdir(exist_ok=True)
        self.access_log = prefix / "access.log"
        conf = template.read_text()
        conf = conf.replace("@PREFIX@", str(prefix)).replace(
            "@ACCESS_LOG@", f"{self.access_log} click buffer=64k flush=1s"
        )
        self.conf = prefix / "nginx.conf"
        self.conf.write_text(conf)
        self.port = NGINX_PORT

    def start(self) -> None:
        with socket.socket() as probe:  # never measure another nginx left on the fixed port
            if probe.connect_ex(("127.0.0.1", self.port)) == 0:
                raise SystemExit(f"port {self.port} is already in use: stop what listens there")
        self.proc = PROCS.start(
            ["taskset", "-c", str(self.core), "nginx", "-c", str(self.conf),
             "-p", str(self.prefix), "-e", str(self.prefix / "error.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        wait_http(self.port, "/", self.proc, self.prefix / "error.log")

    def stop(self) -> None:
        if self.proc is not None:
            PROCS.stop(self.proc, signal.SIGQUIT)  # graceful: flushes the buffered access log
            self.proc = None


class Noop(Server):
    name = "no-op raw ASGI (uvicorn+httptools+uvloop)"

    def __init__(self, core: int, logdir: Path) -> None:
        super().__init__(core)
        self.logfile = logdir / "noop.log"

    def start(self) -> None:
        self.port = free_port()
        out = self.logfile.open("a")
        self.proc = PROCS.start(
            ["taskset", "-c", str(self.core), PY, str(ROOT / "bench" / "noop_app.py"),
             "--port", str(self.port)],
            stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
        out.close()
        wait_http(self.port, "/healthz", self.proc, self.logfile)


class Clicktrail(Server):
    def __init__(self, core: int, db: Db, data_dir: Path, jobs_paused: bool = True) -> None:
        super().__init__(core)
        self.db = db
        self.data_dir = data_dir
        # The jobs process (classification) either stopped with SIGSTOP from the end of the
        # server's start-up to the end of the run — the stand-in, on a 2-core machine whose
        # other core is the load generator's, for a jobs process on a core of its own
        # (`jobs_cpus`) — or left on the server's core, niced, as `clicktrail serve` does
        # without `jobs_cpus`. Either way every click is stored: what the jobs process did not
        # classify stays in the inbox and is counted there.
        self.jobs_paused = jobs_paused
        self.name = f"clicktrail on {db.label}" + ("" if jobs_paused else " + jobs, same core")
        self.logfile = data_dir / "server.log"
        self.started_us = 0
        self._jobs_pid: int | None = None

    def start(self) -> None:
        self.started_us = time.time_ns() // 1000
        self.port = free_port()
        out = self.logfile.open("a")
        self.proc = PROCS.start(
            ["taskset", "-c", str(self.core), PY, "-m", "clicktrail", "serve",
             "--port", str(self.port)],
            env=cli_env(self.db, self.data_dir), stdout=out, stderr=subprocess.STDOUT,
            cwd=self.data_dir,
        )  # fmt: skip
        out.close()
        wait_http(self.port, "/healthz", self.proc, self.logfile)
        wait_settled(self.proc.pid)
        if self.jobs_paused:
            self._jobs_pid = jobs_process(self.proc.pid)
            os.kill(self._jobs_pid, signal.SIGSTOP)

    def stop(self) -> None:
        if self._jobs_pid is not None:  # resumed first: its SIGTERM ends with a final pass
            with contextlib.suppress(ProcessLookupError):
                os.kill(self._jobs_pid, signal.SIGCONT)
            self._jobs_pid = None
        super().stop()

    def stop_and_count(self) -> tuple[int, int]:
        """SIGTERM (drains the click log), then return (rows added, distinct tokens)."""
        self.stop()
        if "Traceback" in self.logfile.read_text():
            raise SystemExit(f"{self.name}: traceback in {self.logfile}")
        # Every click is in the database: in `clicks`, or in the inbox when the jobs process
        # (niced, same core, ADR 0006) has not classified it yet; counted by time, both tables.
        return self.db.clicks_between(self.started_us, time.time_ns() // 1000)

    def catch_up(self) -> None:
        """Classify what the runs left in the inbox, timed (`clicktrail bots process`)."""
        proc = subprocess.run(
            ["taskset", "-c", str(self.core), PY, "-m", "clicktrail", "bots", "process", "--json"],
            env=cli_env(self.db, self.data_dir), cwd=self.data_dir, capture_output=True, text=True,
        )  # fmt: skip
        if proc.returncode != 0:
            raise SystemExit(f"clicktrail bots process failed:\n{proc.stderr}")
        done = json.loads(proc.stdout)
        CATCH_UP.append((self.name, done["processed"], done["seconds"]))
        log(f"  {self.name}: {done['processed']:,} requests left in the inbox classified in "
            f"{done['seconds']:.1f} s ({done['processed'] / max(done['seconds'], 1e-9):,.0f}/s)")  # fmt: skip


CATCH_UP: list[tuple[str, int, float]] = []  # (server, requests left in the inbox, seconds)


def _cpu_seconds(pid: int) -> float:
    """CPU time of `pid` and its children (the jobs process), 0 for a process gone."""
    total = 0.0
    kids = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    for p in [pid, *map(int, kids.split())]:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def jobs_process(server_pid: int) -> int:
    """Return the pid of the jobs process `clicktrail serve` spawned (multiprocessing)."""
    kids = subprocess.run(["pgrep", "-P", str(server_pid)], capture_output=True, text=True)
    for pid in kids.stdout.split():
        with contextlib.suppress(OSError):
            if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes():
                return int(pid)
    raise SystemExit(f"no jobs process under server {server_pid}")


def wait_settled(pid: int, timeout: float = 120.0) -> None:
    """Wait until a fresh server has finished starting: loading the newest tokens into its
    cache (prefetch, seconds on PostgreSQL) and the jobs process's datasets. Measured runs
    are then of the steady state, not of start-up work sharing the core."""
    deadline = time.monotonic() + timeout
    last = _cpu_seconds(pid)
    while time.monotonic() < deadline:
        time.sleep(0.5)
        now = _cpu_seconds(pid)
        if now - last < 0.05:  # under 10 % of a core over half a second
            return
        last = now
    log(f"  server {pid} still busy {timeout:g} s after start; measuring anyway")


# ---------------------------------------------------------------------------------------------
# wrk (closed loop)


@dataclass
class WrkResult:
    rps: float
    requests: int
    sent: int
    non_3xx: int
    socket_errors: str
    p50: float
    p99: float


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4}


def _ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if not m:
        raise ValueError(text)
    return float(m.group(1)) * _UNITS[m.group(2)]


def run_wrk(
    port: int, seconds: float, tokens: Path | None, load_core: int, connections: int
) -> WrkResult:
    """Run wrk; `tokens` None: one fixed URL (no Lua), as the README's reference figures."""
    argv = [
        "taskset", "-c", str(load_core), "wrk", "-t1", f"-c{connections}",
        f"-d{seconds:g}s", "--latency", "-H", f"User-Agent: {UA_IPHONE}",
        "-H", f"Host: {DOMAIN}",
    ]  # fmt: skip
    if tokens is None:
        argv.append(f"http://127.0.0.1:{port}/c/static")
    else:
        lua = tokens.parent / "random_tokens.lua"
        if not lua.exists():
            lua.write_text(WRK_LUA)
        seed = random.randrange(1, 2**31)
        argv += ["-s", str(lua), f"http://127.0.0.1:{port}/", "--", str(tokens), str(seed)]
    p = PROCS.start(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    out, _ = p.communicate(timeout=seconds + 60)
    PROCS.live.remove(p)
    if p.returncode != 0:
        raise SystemExit(f"wrk failed:\n{out}")
    try:
        rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
        requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
        m = re.search(r"SENT (\d+)", out)
        sent = int(m.group(1)) if m else requests
        p50 = _ms(re.search(r"\s50%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
        p99 = _ms(re.search(r"\s99%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    except AttributeError:
        raise SystemExit(f"cannot read wrk output:\n{out}") from None
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    non_3xx = int(m.group(1)) if m else 0
    m = re.search(r"Socket errors: (.*)", out)
    return WrkResult(rps, requests, sent, non_3xx, m.group(1) if m else "", p50, p99)


# ---------------------------------------------------------------------------------------------
# fixed-rate (open loop) load generator: bench/loadgen.c, compiled on first use

LOADGEN_SRC = ROOT / "bench" / "loadgen.c"
LOADGEN: list[Path] = []  # the compiled binary, once `compile_loadgen` ran


def compile_loadgen(scratch: Path) -> None:
    """Compile bench/loadgen.c into `scratch` (gcc -O2)."""
    out = scratch / "loadgen"
    subprocess.run(["gcc", "-O2", "-Wall", "-o", str(out), str(LOADGEN_SRC)], check=True)
    LOADGEN.append(out)


def run_loadgen(
    port: int, rate: float, seconds: float, warmup: float, tokens: Path, load_core: int,
    connections: int,
) -> dict[str, Any]:  # fmt: skip
    argv = [
        "taskset", "-c", str(load_core), str(LOADGEN[0]),
        str(port), f"{rate:.0f}", str(connections), f"{seconds:g}", f"{warmup:g}", str(tokens),
        DOMAIN, UA_IPHONE,
    ]  # fmt: skip
    p = PROCS.start(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = p.communicate(timeout=seconds + warmup + 60)
    PROCS.live.remove(p)
    if p.returncode != 0:
        raise SystemExit(f"load generator failed:\n{err}")
    return json.loads(out.strip().splitlines()[-1])  # type: ignore[no-any-return]


# ---------------------------------------------------------------------------------------------
# the benchmark


@dataclass
class Row:
    target: str
    tokens: str
    runs: list[WrkResult] = field(default_factory=list)
    checks: list[str] = field(default_factory=list)
    miss_share: list[float] = field(default_factory=list)

    @property
    def rps(self) -> float:
        return statistics.median(r.rps for r in self.runs)

    @property
    def p50(self) -> float:
        return statistics.median(r.p50 for r in self.runs)

    @property
    def p99(self) -> float:
        return statistics.median(r.p99 for r in self.runs)


@dataclass
class RateRow:
    target: str
    rate: float
    runs: list[dict[str, Any]] = field(default_factory=list)
    checks: list[str] = field(default_factory=list)

    def med(self, key: str) -> float:
        return statistics.median(r[key] for r in self.runs)


def click_check(added: int, completed: int, sent: int, bad: int) -> str:
    """'ok' when every counted 302 is a row; requests in flight at the cut may be rows too."""
    diff = added - completed
    ok = bad == 0 and 0 <= diff <= sent - completed
    return f"{'ok' if ok else 'MISMATCH'} {diff:+d}" + (
        f" (≤{sent - completed} in flight)" if sent != completed else ""
    )


def _cpu_times() -> tuple[int, int]:
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return sum(v[:8]), v[3] + v[4]  # total, idle + iowait


BACKGROUND: list[float] = []  # busy share of the machine measured before each run


def wait_quiet(a: argparse.Namespace) -> None:
    """Wait until the machine is idle (other people's jobs skew everything on 2 cores)."""
    t0 = time.monotonic()
    said = False
    while True:
        t1, i1 = _cpu_times()
        time.sleep(1.0)
        t2, i2 = _cpu_times()
        busy = 1 - (i2 - i1) / max(1, t2 - t1)
        if busy <= a.quiet_threshold or time.monotonic() - t0 > a.quiet_wait:
            if busy > a.quiet_threshold:
                log(f"  machine still {busy:.0%} busy after {a.quiet_wait:g} s; measuring anyway")
            BACKGROUND.append(busy)
            return
        if not said:
            log(f"  machine {busy:.0%} busy with other work; waiting (up to {a.quiet_wait:g} s)")
            said = True


def closed_loop(
    server: Server, tokens: Path | None, a: argparse.Namespace, label: str, restart_each: bool
) -> Row:
    row = Row(server.name, label)
    log(f"{server.name} [{label}]: warm-up {a.warmup:g} s + {a.repeats} × {a.duration:g} s")
    try:
        if not restart_each:
            wait_quiet(a)
            server.start()
            run_wrk(server.port, a.warmup, tokens, a.load_core, a.connections)
        for i in range(a.repeats):
            if restart_each:
                wait_quiet(a)
                server.start()
                w = run_wrk(server.port, a.warmup, tokens, a.load_core, a.connections)
            else:
                wait_quiet(a)
            r = run_wrk(server.port, a.duration, tokens, a.load_core, a.connections)
            row.runs.append(r)
            note = ""
            if isinstance(server, Clicktrail):
                added, distinct = server.stop_and_count()
                check = click_check(
                    added, w.requests + r.requests, w.sent + r.sent, w.non_3xx + r.non_3xx
                )
                row.checks.append(check)
                row.miss_share.append(distinct / max(1, added))
                note = (
                    f"; clicks {added} vs wrk {w.requests + r.requests} "
                    f"(sent {w.sent + r.sent}): {check}"
                )
            log(f"  run {i + 1}: {r.rps:,.0f} req/s p50 {r.p50:.2f} ms p99 {r.p99:.2f} ms"
                f" non-3xx {r.non_3xx} {r.socket_errors}{note}")  # fmt: skip
    finally:
        server.stop()
    return row


def open_loop(
    server: Server, tokens: Path, a: argparse.Namespace, rate: float, label: str = ""
) -> RateRow:
    row = RateRow(server.name + (f" ({label} tokens)" if label else ""), rate)
    log(f"{server.name}: fixed rate {rate:,.0f}/s, warm-up {a.warmup:g} s + "
        f"{a.repeats} × {a.duration:g} s")  # fmt: skip
    for i in range(a.repeats):
        wait_quiet(a)
        server.start()
        try:
            r = run_loadgen(
                server.port, rate, a.duration, a.warmup, tokens, a.load_core, a.connections
            )
        finally:
            if isinstance(server, Clicktrail):
                added, _ = server.stop_and_count()
            else:
                server.stop()
        row.runs.append(r)
        bad = sum(n for st, n in r["statuses"].items() if str(st) != "302")
        note = ""
        if isinstance(server, Clicktrail):
            check = click_check(added, r["completed"], r["sent"], bad)
            row.checks.append(check)
            note = f"; clicks {added} vs answered {r['completed']}: {check}"
        log(f"  run {i + 1}: achieved {r['achieved']:,.0f}/s p50 {r['p50']:.2f} ms "
            f"p99 {r['p99']:.2f} ms p99.9 {r['p999']:.2f} ms max {r['max']:.1f} ms "
            f"(generator stall {r['max_stall']:.1f} ms) non-302 {bad}{note}")  # fmt: skip
    return row


def machine() -> dict[str, str]:
    model = ""
    with contextlib.suppress(Exception):
        for line in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines():
            if line.startswith("Model name:"):
                model = line.split(":", 1)[1].strip()
    nginx_v = subprocess.run(["nginx", "-v"], capture_output=True, text=True).stderr.strip()
    return {
        "cpu": f"{model}, {os.cpu_count()} cores",
        "kernel": platform.release(),
        "python": platform.python_version(),
        "nginx": nginx_v.replace("nginx version: ", ""),
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": _git("rev-parse", "--short", "HEAD"),
        "dirty": " ".join(_git("status", "--short", "--", "src").split()[1::2]),
    }


def _git(*args: str) -> str:
    proc = subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True)
    return proc.stdout.strip()


def fmt_report(
    a: argparse.Namespace, rows: list[Row], rate_rows: list[RateRow], info: dict[str, str]
) -> str:
    nginx = next((r for r in rows if r.target.startswith("nginx") and r.tokens == "random"), None)
    noop = next((r for r in rows if r.target.startswith("no-op") and r.tokens == "random"), None)
    out = [
        f"Command: `{a.command}`  ",
        f"Machine: {info['cpu']}; kernel {info['kernel']}; Python {info['python']}; "
        f"{info['nginx']}; wrk 4.1 (Debian); {info['date']}  ",
        (
            f"Code: commit {a.ref_commit} (`--ref {a.ref}`, exported; the work tree is not used)  "
            if a.ref
            else f"Code: the work tree at commit {info['commit']}"
            + (f" plus uncommitted changes in {info['dirty']}" if info["dirty"] else "")
            + "  "
        ),
        f"Server on core {a.server_core}, load on core {a.load_core}"
        + (
            f", PostgreSQL's processes on core {a.db_pinned}"
            if getattr(a, "db_pinned", None)
            else ""
        )
        + f"; {a.connections} "
        f"keep-alive connections; {a.recipients:,} recipients × 2 links = "
        f"{2 * a.recipients:,} tokens; warm-up {a.warmup:g} s discarded, then "
        f"{a.repeats} × {a.duration:g} s, median quoted. Each clicktrail run starts a fresh "
        "server, waits until its start-up work is done (the prefetch of the newest "
        "`token_cache_size` tokens, the jobs process's datasets), warms up, is measured, and "
        "ends with SIGTERM; then the "
        "requests stored during the run (in `clicks`, or still in the click inbox) are "
        "compared with the responses wrk counted (warm-up + run). "
        f"Machine busy before the runs (other work): max {max(BACKGROUND, default=0):.0%}.",
        "",
        "The jobs process (classification; ADR 0006) is stopped (SIGSTOP) from the end of a "
        "server's start-up to the end of its run in rows named *clicktrail on …*: the stand-in "
        "for a jobs process on a core of its own (`jobs_cpus`), which this 2-core machine does "
        "not have beside the load generator's. Rows *… + jobs, same core* leave it running "
        "on the server's core, niced, as `clicktrail serve` does without `jobs_cpus`. Every "
        "click is stored either way (what is not classified yet waits in the inbox).",
    ]
    if nginx is None or noop is None:
        out.append("\nClosed-loop runs skipped (`--half-rate`).")
    else:
        out += [
            "",
            "Closed loop (`wrk -t1 -c64 --latency`; *random*: a Lua script picks one of the tokens "
            "at random per request, *hot*: the same with a set of "
            f"{a.hot_tokens} tokens, *fixed URL*: no Lua, as the README's reference figures). "
            "Ratios are to the anchors measured with the same Lua script:",
            "",
            "| server | tokens | req/s | p50 ms | p99 ms | / nginx | / no-op | runs req/s "
            "| cache-miss share | clicks − wrk count |",
            "|---|---|---:|---:|---:|---:|---:|---|---:|---|",
        ]
    for r in rows:
        assert nginx is not None
        assert noop is not None
        miss = f"{statistics.median(r.miss_share):.0%}" if r.miss_share else ""
        out.append(
            f"| {r.target} | {r.tokens} | {r.rps:,.0f} | {r.p50:.2f} | {r.p99:.2f} | "
            f"{r.rps / nginx.rps:.2f} | {r.rps / noop.rps:.2f} | "
            f"{' / '.join(f'{x.rps / 1000:.1f}k' for x in r.runs)} | {miss} | "
            f"{'; '.join(r.checks) or 'n/a'} |"
        )
    if rate_rows:
        out += [
            "",
            "Fixed rate (open loop; `bench/loadgen.c`, one epoll thread on the load core, "
            f"{a.connections} keep-alive connections, each request scheduled at a fixed rate "
            "and its latency taken from the scheduled send time, so queueing counts; wrk2 is "
            "not packaged by Debian). Warm-up excluded; median of the runs. *Generator gap*: "
            "the longest time between two turns of the generator's loop (at least the interval "
            "between requests; more means the core was taken by something else, and latencies "
            "up to that long may be the generator's, not the server's):",
            "",
            "| server | target req/s | achieved | p50 ms | p99 ms | p99.9 ms | max ms "
            "| generator gap ms | clicks − answered |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---|",
        ]
        for rr in rate_rows:
            out.append(
                f"| {rr.target} | {rr.rate:,.0f} | {rr.med('achieved'):,.0f} | "
                f"{rr.med('p50'):.2f} | {rr.med('p99'):.2f} | {rr.med('p999'):.2f} | "
                f"{rr.med('max'):.1f} | {rr.med('max_stall'):.1f} | "
                f"{'; '.join(rr.checks) or 'n/a'} |"
            )
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--recipients",
        type=int,
        default=None,
        help="campaign size (2 tokens each); default 100000, 5000 with --quick",
    )
    ap.add_argument(
        "--postgres",
        default="",
        metavar="URL",
        help="PostgreSQL admin URL; a scratch database is created and dropped",
    )
    ap.add_argument("--duration", type=float, default=10, help="seconds per measured run")
    ap.add_argument("--repeats", type=int, default=3, help="measured runs; the median is quoted")
    ap.add_argument("--warmup", type=float, default=3, help="discarded warm-up seconds")
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument(
        "--hot-tokens",
        type=int,
        default=10_000,
        help="size of the token set of the cache-hot run (below token_cache_size: every lookup "
        "after the first is a cache hit; 100 would pile thousands of clicks on each message)",
    )
    ap.add_argument(
        "--skip-catch-up",
        action="store_true",
        help="do not time the classification of what the runs left in the inbox",
    )
    ap.add_argument(
        "--target-half-rate",
        type=float,
        default=20000,
        help="also fixed-rate runs at this rate (the issue's half rate) where the no-op app "
        "reaches twice it; 0: no",
    )
    ap.add_argument(
        "--pg-target-half-rate",
        type=float,
        default=12500,
        help="also a fixed-rate run of clicktrail on PostgreSQL at this rate where the no-op "
        "app reaches twice it; 0: no",
    )
    ap.add_argument(
        "--jobs",
        choices=("paused", "both"),
        default="both",
        help="the jobs process during clicktrail's runs: 'paused' (SIGSTOP, the stand-in for "
        "a core of its own) or 'both' (also the hot-token runs with it on the server core)",
    )
    ap.add_argument("--server-core", type=int, default=0)
    ap.add_argument("--load-core", type=int, default=1)
    ap.add_argument(
        "--db-core",
        default="load",
        help="core for PostgreSQL's processes: a number, 'load' (the load core) or 'any' (not "
        "pinned)",
    )
    ap.add_argument(
        "--quiet-threshold",
        type=float,
        default=0.10,
        help="before each run, wait until the machine is at most this busy",
    )
    ap.add_argument(
        "--quiet-wait",
        type=float,
        default=None,
        help="longest wait for a quiet machine before a run (s); 300, 5 with --quick",
    )
    ap.add_argument(
        "--half-rate",
        type=float,
        default=None,
        help="only the fixed-rate runs, at this rate (half of a closed-loop figure measured before)",
    )
    ap.add_argument(
        "--pg-half-rate", type=float, default=None, help="with --half-rate: rate for PostgreSQL"
    )
    ap.add_argument(
        "--ref",
        default="",
        help="measure this git commit (exported to the scratch folder) instead of the work tree",
    )
    ap.add_argument("--nginx-template", type=Path, default=NGINX_TEMPLATE)
    ap.add_argument("--quick", action="store_true", help="smoke test: 1 × 3 s, 1 s warm-up")
    ap.add_argument("--keep", action="store_true", help="keep the scratch folder")
    ap.add_argument("--out", type=Path, help="also write the Markdown report to this file")
    a = ap.parse_args()
    a.command = shlex.join(["python", "bench/redirect.py", *sys.argv[1:]])
    if a.quick:
        a.duration, a.repeats, a.warmup = 3, 1, 1
    if a.recipients is None:
        a.recipients = 5000 if a.quick else 100_000
    if a.quiet_wait is None:
        a.quiet_wait = 5 if a.quick else 300
    # SIGTERM/SIGHUP must unwind through the finally below (servers, nginx, scratch database).
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda signum, _frame: sys.exit(128 + signum))

    ensure_tools()
    scratch = Path(tempfile.mkdtemp(prefix="clicktrail-bench-"))
    compile_loadgen(scratch)
    admin = None
    dbs: list[Db] = []
    try:
        if a.ref:
            global CODE
            a.ref_commit = _git("rev-parse", "--short", a.ref)
            code = scratch / "code"
            code.mkdir()
            archive = subprocess.run(
                ["git", "-C", str(ROOT), "archive", a.ref, "src"], capture_output=True, check=True
            ).stdout
            subprocess.run(["tar", "-x", "-C", str(code)], input=archive, check=True)
            CODE = code / "src"
            probe = subprocess.run(
                [PY, "-c", "import clicktrail; print(clicktrail.__file__)"],
                env={**os.environ, "PYTHONPATH": str(CODE)}, cwd=scratch,
                capture_output=True, text=True, check=True,
            )  # fmt: skip
            if not probe.stdout.startswith(str(CODE)):
                raise SystemExit(f"--ref: clicktrail still imported from {probe.stdout}")
            log(f"measuring commit {a.ref_commit} (exported to {CODE})")
        dbs.append(Db("SQLite", f"sqlite:///{scratch / 'sqlite' / 'clicktrail.db'}"))
        if a.postgres:
            import sqlalchemy as sa

            name = f"clicktrail_bench_{uuid.uuid4().hex[:8]}"
            admin = sa.create_engine(
                "postgresql+psycopg://" + a.postgres.split("://", 1)[1],
                isolation_level="AUTOCOMMIT",
            )
            with admin.connect() as c:
                c.execute(sa.text(f'CREATE DATABASE "{name}"'))
            dbs.append(Db("PostgreSQL", a.postgres.rsplit("/", 1)[0] + "/" + name, name))
        if a.postgres and a.db_core != "any":
            core = str(a.load_core) if a.db_core == "load" else a.db_core
            log(f"PostgreSQL's processes pinned to core {core}: {pin_postgres(core)}")
            a.db_pinned = core
        token_files: dict[str, Path] = {}
        hot_files: dict[str, Path] = {}
        for db in dbs:
            log(f"preparing {db.label}: {a.recipients:,} recipients")
            folder = scratch / db.label.lower()
            token_files[db.label] = prepare(db, folder, a.recipients)
            hot_files[db.label] = folder / "hot" / "tokens.txt"
            hot_files[db.label].parent.mkdir()
            hot_files[db.label].write_bytes(
                b"\n".join(token_files[db.label].read_bytes().split()[: a.hot_tokens]) + b"\n"
            )
        all_tokens = token_files["SQLite"]

        info = machine()
        nginx = Nginx(a.server_core, scratch / "nginx", a.nginx_template)
        noop = Noop(a.server_core, scratch)
        servers = {
            db.label: Clicktrail(a.server_core, db, scratch / db.label.lower()) for db in dbs
        }
        # The same with the jobs process on the server's core (--jobs both): hot tokens only.
        shared = {
            db.label: Clicktrail(a.server_core, db, scratch / db.label.lower(), False)
            for db in dbs
            if a.jobs == "both"
        }
        rows: list[Row] = []
        if a.half_rate is None:
            rows += [
                closed_loop(nginx, None, a, "fixed URL", restart_each=False),
                closed_loop(nginx, all_tokens, a, "random", restart_each=False),
                closed_loop(noop, None, a, "fixed URL", restart_each=False),
                closed_loop(noop, all_tokens, a, "random", restart_each=False),
            ]
            for db in dbs:
                s = servers[db.label]
                rows.append(closed_loop(s, token_files[db.label], a, "random", restart_each=True))
                for srv in (s, shared.get(db.label)):
                    if srv is not None:
                        hot_label = f"hot ({a.hot_tokens})"
                        rows.append(
                            closed_loop(srv, hot_files[db.label], a, hot_label, restart_each=True)
                        )
            # Half of what clicktrail sustained here on cached tokens (the issue's "half that
            # rate" on this machine), and the issue's absolute half rates where this machine
            # reaches their double (the no-op app alone must, or it measures the machine).
            ct = {(r.target, r.tokens): r.rps for r in rows}
            hot = f"hot ({a.hot_tokens})"
            half = ct[("clicktrail on SQLite", hot)] / 2
            pg_half = ct.get(("clicktrail on PostgreSQL", hot), 0.0) / 2
            noop_rps = ct[("no-op raw ASGI (uvicorn+httptools+uvloop)", "random")]
            extra_rates = [r for r in (a.target_half_rate,) if r and 2 * r <= noop_rps]
            pg_extra = [r for r in (a.pg_target_half_rate,) if r and 2 * r <= noop_rps]
        else:
            half = a.half_rate
            pg_half = a.pg_half_rate or a.half_rate
            extra_rates, pg_extra = [], []

        # The half rates (20,000/s on SQLite; half of PostgreSQL's 25,000/s), on the
        # anchors, then clicktrail on random tokens (cache misses) and on cached ones.
        rate_rows: list[RateRow] = []
        for rate in [half, *extra_rates]:
            rate_rows += [
                open_loop(nginx, all_tokens, a, rate),
                open_loop(noop, all_tokens, a, rate),
                open_loop(servers["SQLite"], hot_files["SQLite"], a, rate, "hot"),
            ]
            if "SQLite" in shared:
                rate_rows.append(open_loop(shared["SQLite"], hot_files["SQLite"], a, rate, "hot"))
            rate_rows.append(open_loop(servers["SQLite"], token_files["SQLite"], a, rate, "random"))
        if "PostgreSQL" in servers:
            for rate in [r for r in (pg_half, *pg_extra) if r]:
                for srv in (servers["PostgreSQL"], shared.get("PostgreSQL")):
                    if srv is not None:
                        rate_rows.append(open_loop(srv, hot_files["PostgreSQL"], a, rate, "hot"))
        if not a.skip_catch_up:
            for srv in servers.values():
                srv.catch_up()
        report = fmt_report(a, rows, rate_rows, info)
        if CATCH_UP:
            report += (
                "\n\nClassification catch-up (`clicktrail bots process` after the runs, pinned "
                "to the server core): the requests the jobs process had not classified yet.\n\n"
                "| server | requests | seconds | per second |\n|---|---:|---:|---:|\n"
                + "\n".join(
                    f"| {name} | {n:,} | {sec:.1f} | {n / max(sec, 1e-9):,.0f} |"
                    for name, n, sec in CATCH_UP
                )
            )
        print(report)
        if a.out:
            a.out.write_text(report + "\n")
    finally:
        PROCS.stop_all()
        if getattr(a, "db_pinned", None) is not None:
            pin_postgres(f"0-{(os.cpu_count() or 1) - 1}")
        if admin is not None:
            import sqlalchemy as sa

            with admin.connect() as c:
                for db in dbs:
                    if db.scratch_name:
                        c.execute(
                            sa.text(f'DROP DATABASE IF EXISTS "{db.scratch_name}" WITH (FORCE)')
                        )
            admin.dispose()
        if a.keep:
            log(f"scratch folder kept: {scratch}")
        else:
            shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
