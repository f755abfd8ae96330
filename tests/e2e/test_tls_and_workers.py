"""HTTPS with certificate files, several worker processes on one port, and the TLS ask endpoint.

Each test runs on SQLite and PostgreSQL. The certificate is self-signed, made with the
`openssl` command for 127.0.0.1; clients trust exactly that certificate.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import ssl
import subprocess
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from clicktrail.bootstrap import Container
from clicktrail.config import load_settings
from clicktrail.web.redirect import new_click_id
from conftest import Env, Server, free_port
from factories import Repos, make_domain, make_workspace

pytestmark = pytest.mark.e2e

HOST = "sms.example.com"


def _tracked_links(env: Env, tmp_path: Path, n: int) -> list[str]:
    """Create a campaign of `n` messages on HOST; return their tokens."""
    csv_path = tmp_path / "r.csv"
    csv_path.write_text(
        "phone\n" + "".join(f"+1415555{i:04d}\n" for i in range(n)), encoding="utf-8"
    )
    env.cli("workspace", "create", "Secure")
    env.cli("domain", "add", HOST)
    env.cli("contacts", "import", str(csv_path))
    env.cli("campaign", "create", "S", "--template", "Go https://shop.example.com/s now")
    env.cli("campaign", "send", "s")
    lines = (env.data_dir / "outbox.jsonl").read_text().splitlines()
    return [json.loads(x)["body"].split("/c/")[1].split(" ")[0] for x in lines]


def _stored_user_agents(env: Env) -> list[str]:
    engine = sa.create_engine(env.database_url)
    try:
        with engine.connect() as conn:
            return list(conn.execute(sa.text("SELECT user_agent FROM clicks")).scalars())
    finally:
        engine.dispose()


# -- HTTPS with certificate files ---------------------------------------------------------------


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its unencrypted key: (cert file, key file)."""
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is not installed")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return cert, key


def test_serves_https_with_certificate_files(
    env: Env, server_factory: type[Server], tmp_path: Path, certificate: tuple[Path, Path]
) -> None:
    cert, key = certificate
    (token,) = _tracked_links(env, tmp_path, 1)
    trust = ssl.create_default_context(cafile=str(cert))
    server = server_factory(
        env,
        settings={"CLICKTRAIL_TLS_CERTFILE": str(cert), "CLICKTRAIL_TLS_KEYFILE": str(key)},
        verify=trust,
    )
    assert server.base.startswith("https://")
    with httpx.Client(base_url=server.base, verify=trust, timeout=5) as https:
        assert https.get("/healthz").json() == {"status": "ok"}
        r = https.get(f"/c/{token}", headers={"Host": HOST, "User-Agent": "tls-test"})
        assert r.status_code == 302
        assert r.headers["location"].startswith("https://shop.example.com/s")
    with pytest.raises(httpx.TransportError):
        httpx.get(f"http://127.0.0.1:{server.port}/healthz", timeout=5)
    server.stop()
    assert _stored_user_agents(env) == ["tls-test"]


@pytest.mark.parametrize(
    ("given", "named"),
    [
        ({"CLICKTRAIL_TLS_CERTFILE": "cert"}, "tls_keyfile"),
        ({"CLICKTRAIL_TLS_KEYFILE": "key"}, "tls_certfile"),
        (
            {"CLICKTRAIL_TLS_CERTFILE": "nowhere.pem", "CLICKTRAIL_TLS_KEYFILE": "key"},
            "tls_certfile",
        ),
        (
            {"CLICKTRAIL_TLS_CERTFILE": "cert", "CLICKTRAIL_TLS_KEYFILE": "nowhere.pem"},
            "tls_keyfile",
        ),
        ({"CLICKTRAIL_TLS_CERTFILE": "key", "CLICKTRAIL_TLS_KEYFILE": "cert"}, "tls_certfile"),
    ],
    ids=["key-missing", "cert-missing", "cert-not-found", "key-not-found", "swapped"],
)
def test_bad_tls_settings_stop_serve_before_it_starts(
    env: Env, certificate: tuple[Path, Path], given: dict[str, str], named: str
) -> None:
    cert, key = certificate
    files = {"cert": str(cert), "key": str(key)}
    settings = {var: files.get(value, str(env.data_dir / value)) for var, value in given.items()}
    proc = env.cli("serve", "--port", str(free_port()), check=False, settings=settings)
    assert proc.returncode == 2, proc.stderr
    assert named in proc.stderr
    assert "Traceback" not in proc.stderr
    assert "Uvicorn running" not in proc.stderr + proc.stdout


# -- several workers ----------------------------------------------------------------------------

REQUESTS = 240
THREADS = 8


def test_workers_share_the_port_and_drain_every_click_on_sigterm(
    env: Env, server_factory: type[Server], tmp_path: Path
) -> None:
    tokens = _tracked_links(env, tmp_path, 20)
    # Clicks are not written to the database before the stop (one write a minute), so the
    # drain on SIGTERM is what puts every one of them there, and each worker's spool segment
    # shows which process answered.
    server = server_factory(
        env, "--workers", "2", settings={"CLICKTRAIL_CLICK_FLUSH_INTERVAL": "60"}
    )
    statuses: Counter[int] = Counter()
    lock = threading.Lock()

    def hammer(worker: int, first: int) -> None:
        for n in range(first + worker, first + REQUESTS, THREADS):
            # A fresh connection per request, so the kernel picks a process every time.
            r = httpx.get(
                f"{server.base}/c/{tokens[n % len(tokens)]}",
                headers={"Host": HOST, "User-Agent": f"workers-test/{n}"},
                timeout=10,
            )
            with lock:
                statuses[r.status_code] += 1

    def clicks_by_pid() -> Counter[int]:
        counts: Counter[int] = Counter()
        for seg in (env.data_dir / "spool").glob("clicks-*.jsonl"):
            counts[int(seg.name.split("-")[1])] += len(seg.read_bytes().splitlines())
        return counts

    # Rounds of REQUESTS clicks until both workers have answered some: on a busy machine the
    # second worker may still be importing while the first answers a whole round.
    sent = 0
    deadline = time.monotonic() + 60
    while True:
        threads = [threading.Thread(target=hammer, args=(i, sent)) for i in range(THREADS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        sent += REQUESTS
        by_pid = clicks_by_pid()
        if len([pid for pid, n in by_pid.items() if n]) >= 2 or time.monotonic() > deadline:
            break
    assert statuses == {302: sent}
    assert server.proc.pid not in by_pid  # the parent only supervises
    assert sum(by_pid.values()) == sent
    serving = [pid for pid, n in by_pid.items() if n]
    assert len(serving) == 2, f"clicks per worker process: {dict(by_pid)}"

    server.stop()
    stored = Counter(_stored_user_agents(env))
    assert set(stored) == {f"workers-test/{n}" for n in range(sent)}
    assert max(stored.values()) == 1
    assert list((env.data_dir / "spool").glob("clicks-*.jsonl")) == []


def _jobs_process(server_pid: int, timeout: float = 30) -> int:
    """Return the pid of the server's jobs process once it runs its jobs (niced)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for child in Path(f"/proc/{server_pid}/task/{server_pid}/children").read_text().split():
            cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
            if b"spawn_main" in cmdline and os.getpriority(os.PRIO_PROCESS, int(child)) == 10:
                return int(child)
        time.sleep(0.1)
    pytest.fail("no jobs process started")


def test_jobs_cpus_puts_the_jobs_process_on_its_own_cpus(
    env: Env, server_factory: type[Server]
) -> None:
    last = (os.cpu_count() or 1) - 1
    server = server_factory(env, settings={"CLICKTRAIL_JOBS_CPUS": str(last)})
    jobs = _jobs_process(server.proc.pid)
    assert os.sched_getaffinity(jobs) == {last}
    # Its threads (the periodic jobs run in one) started after the change: they have it too.
    for tid in os.listdir(f"/proc/{jobs}/task"):
        assert os.sched_getaffinity(int(tid)) == {last}
    assert os.sched_getaffinity(server.proc.pid) == os.sched_getaffinity(0)
    server.stop()


def test_the_jobs_process_stops_at_once_when_the_server_dies_mid_backlog(
    env: Env, server_factory: type[Server], tmp_path: Path
) -> None:
    (token,) = _tracked_links(env, tmp_path, 1)
    server = server_factory(env, settings={"CLICKTRAIL_CLICK_FLUSH_INTERVAL": "0.05"})
    jobs = _jobs_process(server.proc.pid)
    os.kill(jobs, signal.SIGSTOP)  # so the click waits in the inbox
    r = httpx.get(f"{server.base}/c/{token}", headers={"Host": HOST}, timeout=10)
    assert r.status_code == 302
    engine = sa.create_engine(env.database_url)
    try:
        deadline = time.monotonic() + 10
        raw = None
        while raw is None and time.monotonic() < deadline:
            with engine.connect() as conn:
                raw = conn.execute(sa.text("SELECT raw FROM click_inbox")).scalar()
            time.sleep(0.05)
        assert raw is not None, "the click never reached the inbox"
        # A backlog of copies of that click (fresh click ids): minutes of classification.
        line = json.loads(raw.splitlines()[0])
        batches = []
        for _ in range(40):
            copies = [json.dumps([new_click_id(), *line[1:]]) for _ in range(5000)]
            batches.append({"n": len(copies), "raw": "\n".join(copies) + "\n"})
        with engine.begin() as conn:
            conn.execute(sa.text("INSERT INTO click_inbox (n, raw) VALUES (:n, :raw)"), batches)
    finally:
        engine.dispose()
    os.kill(jobs, signal.SIGCONT)
    time.sleep(1.5)  # it is now in a pass over the backlog
    server.kill()
    deadline = time.monotonic() + 5
    while _running(jobs) and time.monotonic() < deadline:
        time.sleep(0.05)
    if _running(jobs):
        os.kill(jobs, signal.SIGKILL)
        pytest.fail("the jobs process outlived its server by 5 s")


def _running(pid: int) -> bool:
    """True while `pid` exists and has not exited (a zombie waits to be reaped by init)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def test_a_bad_jobs_cpus_stops_serve_before_it_starts(env: Env) -> None:
    proc = env.cli(
        "serve", "--port", str(free_port()), check=False, settings={"CLICKTRAIL_JOBS_CPUS": "1-x"}
    )
    assert proc.returncode == 2, proc.stderr
    assert "jobs_cpus: '1-x' is not a CPU number or range" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert "Uvicorn running" not in proc.stderr + proc.stdout


# -- the on-demand TLS ask endpoint (in process) ------------------------------------------------


@pytest.mark.parametrize(
    ("domain", "status"),
    [
        ("sms.example.com", 200),
        ("SMS.Example.COM", 200),
        ("sms.example.com.", 200),
        ("sms.example.com:443", 200),
        ("xn--bcher-kva.example.com", 200),
        ("bücher.example.com", 200),
        ("other.example.com", 404),
        ("example.com", 404),
        ("not a host", 404),
    ],
)
def test_tls_ask_endpoint_allows_registered_short_domains_only(
    database_url: str, tmp_path: Path, domain: str, status: int
) -> None:
    settings = load_settings(
        env={"CLICKTRAIL_DATABASE_URL": database_url, "CLICKTRAIL_DATA_DIR": str(tmp_path)}
    )
    container = Container(settings)
    ws = make_workspace(Repos.on(container.engine))
    make_domain(Repos.on(container.engine), ws, HOST)
    make_domain(Repos.on(container.engine), ws, "bücher.example.com")

    async def ask(params: dict[str, str]) -> httpx.Response:
        transport = httpx.ASGITransport(app=container.web_app())
        # Caddy asks over plain HTTP on the loopback, with no API key.
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as c:
            return await c.get("/v1/tls/allowed", params=params)

    try:
        r = asyncio.run(ask({"domain": domain}))
        assert r.status_code == status
        if status == 200:
            assert r.json() == {"allowed": True}
        else:
            assert r.headers["content-type"] == "application/problem+json"
            assert domain not in r.text
        for params in ({}, {"domain": ""}):
            r = asyncio.run(ask(params))
            assert r.status_code == 400
            assert r.headers["content-type"] == "application/problem+json"
            assert r.json()["field"] == "domain"
    finally:
        container.dispose()
