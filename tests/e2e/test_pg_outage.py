"""PostgreSQL goes away for 30 s under load: cached redirects keep working, no click is lost.

The server under test reaches PostgreSQL through a TCP proxy in this process (`tcp_proxy`);
`block()` cuts every connection and refuses new ones, which is what the server sees when the
database is stopped or unreachable — without touching the machine's shared PostgreSQL service.
The CLI and every check in this file talk to PostgreSQL directly.

Each request carries a unique User-Agent (stored with the click), so the test can tell exactly
which redirects reached the client and check each is stored exactly once.
"""

from __future__ import annotations

import json
import random
import re
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from tcp_proxy import TcpProxy

from conftest import Env, Server

pytestmark = [
    pytest.mark.e2e,
    # The outage is a PostgreSQL one (SQLite is a file: it cannot go away).
    pytest.mark.parametrize("database_url", ["postgresql"], indirect=True),
]

OUTAGE_S = 30.0  # how long the database is away (the figure)
AFTER_S = 3.0  # load kept up after the database is back
CATCH_UP_S = 20.0  # time the click writer gets to write the spooled clicks once it is back
WORKERS = 4
UNCACHED = 10  # tokens never requested before the outage
HOST = "sms.example.com"
DESTINATION = "https://shop.example.com/outage"  # plus tracking parameters
_CLICK_ID = re.compile(r"(?<=[?&]ct_cid=)[^&#]*")  # differs per click
SMALL_BODY = 4096


def _setup(env: Env, tmp_path: Path) -> list[str]:
    """Create and send a campaign of 200 messages (CLI, straight to PostgreSQL); its tokens."""
    csv_path = tmp_path / "r.csv"
    csv_path.write_text(
        "phone\n" + "".join(f"+1415555{i:04d}\n" for i in range(200)), encoding="utf-8"
    )
    env.cli("workspace", "create", "Outage")
    env.cli("domain", "add", HOST)
    env.cli("contacts", "import", str(csv_path))
    env.cli("campaign", "create", "O", "--template", f"Go {DESTINATION} now")
    env.cli("campaign", "send", "o")
    lines = (env.data_dir / "outbox.jsonl").read_text().splitlines()
    tokens = [json.loads(x)["body"].split("/c/")[1].split(" ")[0] for x in lines]
    assert len(set(tokens)) == 200
    return tokens


@pytest.fixture
def proxy(database_url: str) -> Iterator[TcpProxy]:
    """A proxy in front of the test's PostgreSQL."""
    url = sa.make_url(database_url)
    with TcpProxy(url.host or "127.0.0.1", url.port or 5432) as p:
        yield p


@pytest.fixture
def direct(database_url: str) -> Iterator[sa.Engine]:
    """An engine straight on the test database (never through the proxy)."""
    engine = sa.create_engine(database_url)
    yield engine
    engine.dispose()


def _through(proxy: TcpProxy, env: Env) -> Env:
    """`env` with its database URL pointing at the proxy."""
    url = sa.make_url(env.database_url).set(host="127.0.0.1", port=proxy.port)
    return Env(url.render_as_string(hide_password=False), env.data_dir)


def _stored_user_agents(engine: sa.Engine) -> list[str]:
    with engine.connect() as conn:
        return list(conn.execute(sa.text("SELECT user_agent FROM clicks")).scalars())


NO_PREFETCH = {"CLICKTRAIL_TOKEN_PREFETCH_INTERVAL": "0"}


def _count(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.text("SELECT count(*) FROM clicks")).scalar_one())


def _spool_lines(data_dir: Path) -> int:
    """Clicks waiting in the spool: lines of every segment file (they come and go)."""
    total = 0
    for path in (data_dir / "spool").glob("clicks-*.jsonl"):
        try:
            total += path.read_bytes().count(b"\n")
        except FileNotFoundError:
            continue  # written to the database and deleted meanwhile
    return total


def _eventually(check: Callable[[], bool], timeout: float, what: str) -> float:
    """Poll `check` until true; return how long it took; fail after `timeout` seconds."""
    start = time.monotonic()
    while not check():
        if time.monotonic() - start > timeout:
            pytest.fail(f"{what}: not within {timeout:.0f} s")
        time.sleep(0.1)
    return time.monotonic() - start


def _location(r: httpx.Response) -> str | None:
    """The response's Location without its per-click id."""
    loc = r.headers.get("location")
    return None if loc is None else _CLICK_ID.sub("", loc)


def _get(http: httpx.Client, token: str, ua: str) -> httpx.Response:
    return http.get(f"/c/{token}", headers={"Host": HOST, "User-Agent": ua})


@dataclass(frozen=True)
class Outcome:
    ua: str
    start: float  # time.monotonic()
    end: float
    result: str  # "302" with the right Location, else what went wrong


class Load:
    """Threads sending keep-alive GETs until stopped; every outcome is kept.

    `locations` maps each token to load to the Location its redirect must have.
    """

    def __init__(self, base: str, locations: dict[str, str]) -> None:
        self.base = base
        self.locations = locations
        self.tokens = sorted(locations)
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.outcomes: list[Outcome] = []
        self.threads = [threading.Thread(target=self._run, args=(i,)) for i in range(WORKERS)]

    def _run(self, worker: int) -> None:
        rng = random.Random(worker)
        n = 0
        with httpx.Client(base_url=self.base, timeout=5) as http:
            while not self.stop.is_set():
                ua = f"outage-test/{worker}/{n}"
                n += 1
                start = time.monotonic()
                try:
                    token = rng.choice(self.tokens)
                    r = _get(http, token, ua)
                    if r.status_code != 302:
                        result = f"{r.status_code} {r.text[:200]!r}"
                    elif _location(r) != self.locations[token]:
                        result = f"302 to {r.headers.get('location')!r}"
                    else:
                        result = "302"
                except httpx.HTTPError as exc:
                    result = repr(exc)
                with self.lock:
                    self.outcomes.append(Outcome(ua, start, time.monotonic(), result))

    def snapshot(self) -> list[Outcome]:
        with self.lock:
            return list(self.outcomes)

    def __enter__(self) -> Load:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(timeout=30)
        assert not any(t.is_alive() for t in self.threads), "a load thread is stuck"


def _stop(server: Server) -> tuple[int, str]:
    """SIGTERM and wait; return the exit code and the log (the log may hold outage errors)."""
    server.proc.send_signal(signal.SIGTERM)
    code = server.proc.wait(timeout=30)
    server.kill()  # closes the log file; the process is gone already
    return code, server.log.read_text()


def test_cached_redirects_survive_a_postgres_outage_and_clicks_arrive_after(
    env: Env,
    proxy: TcpProxy,
    direct: sa.Engine,
    server_factory: type[Server],
    tmp_path: Path,
) -> None:
    tokens = _setup(env, tmp_path)
    cached, uncached = tokens[:-UNCACHED], tokens[-UNCACHED:]
    # No token prefetch: one token must stay uncached to show how an uncached lookup fails.
    server = server_factory(_through(proxy, env), settings=NO_PREFETCH)

    # Warm the cache: one click per cached token, written through the proxy.
    warm, locations = set(), {}
    with httpx.Client(base_url=server.base, timeout=5) as http:
        for i, token in enumerate(cached):
            r = _get(http, token, f"warm/{i}")
            assert r.status_code == 302, r.text
            assert r.headers["location"].startswith(DESTINATION + "?")
            warm.add(f"warm/{i}")
            locations[token] = _location(r)
    _eventually(lambda: _count(direct) == len(warm), 10, "warm-up clicks written")

    with Load(server.base, locations) as load:
        _eventually(lambda: len(load.snapshot()) >= 500, 30, "load going")

        # -- the outage ---------------------------------------------------------------------
        proxy.block()
        t_block = time.monotonic()
        time.sleep(1.0)  # a COMMIT already on its way at the cut may still land
        before = _count(direct)
        samples = [(time.monotonic(), before, _spool_lines(env.data_dir))]

        # A token not in the cache needs the database: it must get a quick, sane answer.
        with httpx.Client(base_url=server.base, timeout=15) as http:
            start = time.monotonic()
            try:
                r = _get(http, uncached[0], "uncached-during-outage")
                uncached_result = (
                    f"{r.status_code} ({len(r.content)} bytes, {r.headers.get('content-type')})"
                )
                uncached_status, uncached_location = r.status_code, r.headers.get("location")
                uncached_size = len(r.content)
            except httpx.TimeoutException:
                uncached_result, uncached_status, uncached_location = "timeout", 0, None
                uncached_size = 0
            uncached_s = time.monotonic() - start
            health = []
            while time.monotonic() < t_block + OUTAGE_S:
                time.sleep(min(2.0, max(0.0, t_block + OUTAGE_S - time.monotonic())))
                health.append(http.get("/healthz").status_code)
                samples.append((time.monotonic(), _count(direct), _spool_lines(env.data_dir)))
        proxy.unblock()
        t_unblock = time.monotonic()
        while time.monotonic() < t_unblock + AFTER_S:
            time.sleep(0.25)
            samples.append((time.monotonic(), _count(direct), _spool_lines(env.data_dir)))
    t_load_end = time.monotonic()

    outcomes = load.snapshot()
    print(
        f"\nuncached token during the outage: {uncached_result} in {uncached_s:.2f} s; "
        f"proxy: {proxy.accepted} forwarded, {proxy.cut} cut, {proxy.refused} refused"
    )

    # Every cached redirect was answered, before, during and after the outage.
    failed = [o for o in outcomes if o.result != "302"]
    assert not failed, (
        f"{len(failed)} of {len(outcomes)} requests on cached tokens failed, first: "
        + "; ".join(f"t={o.start - t_block:+.2f}s {o.result}" for o in failed[:5])
    )
    during = [o for o in outcomes if t_block <= o.start and o.end <= t_unblock]
    assert len(during) >= 100, f"only {len(during)} redirects during the outage"
    slowest = max(o.end - o.start for o in during)
    assert slowest < 2.0, f"a cached redirect took {slowest:.2f} s during the outage"
    print(
        f"{len(outcomes)} cached redirects, {len(during)} during the outage, "
        f"slowest during the outage {slowest * 1000:.0f} ms"
    )
    for lo in range(-2, int(OUTAGE_S + AFTER_S) + 1, 3):
        bucket = [o for o in outcomes if lo <= o.start - t_block < lo + 3]
        if bucket:
            lat = sorted(o.end - o.start for o in bucket)
            print(
                f"  t={lo:+3d}..{lo + 3:+3d}s: {len(bucket):6d} req, "
                f"p50 {lat[len(lat) // 2] * 1000:6.1f} ms, max {lat[-1] * 1000:6.1f} ms"
            )
    print(
        "  samples (t, db count, spool lines):",
        [(round(t - t_block, 1), c, n) for t, c, n in samples],
    )
    assert health and all(s == 200 for s in health), health

    # The uncached token neither hung nor was sent anywhere: a quick 503 (or 404), small page.
    assert uncached_result != "timeout", "an uncached token hung during the outage"
    assert uncached_s < 10, f"an uncached token took {uncached_s:.1f} s during the outage"
    assert uncached_status in (503, 404) and uncached_location is None, uncached_result
    assert uncached_size <= SMALL_BODY, uncached_result

    # While the database was away nothing reached it and the spool grew.
    assert all(count == before for t, count, _lines in samples if t < t_unblock), samples
    in_outage = [x for x in samples if x[0] < t_unblock]
    assert in_outage[-1][2] > in_outage[0][2] + 100, samples
    spooled_during = sum(1 for o in during if o.start > t_block + 1 and o.end < in_outage[-1][0])
    assert in_outage[-1][2] >= spooled_during, (in_outage[-1], spooled_during)
    assert proxy.refused > 0, "the server never tried to reach the database during the outage"

    # The database is back: the resolver reconnects for tokens not in the cache.
    with httpx.Client(base_url=server.base, timeout=5) as http:
        r = _get(http, uncached[1], "uncached-after-outage")
        assert r.status_code == 302, r.text
        assert r.headers["location"].startswith(DESTINATION + "?")
    received = warm | {o.ua for o in outcomes if o.result == "302"} | {"uncached-after-outage"}

    # The click writer catches up on its own, with the server still running.
    def caught_up() -> bool:
        return _spool_lines(env.data_dir) == 0 and received <= set(_stored_user_agents(direct))

    catch_up_s = _eventually(caught_up, CATCH_UP_S, "spooled clicks written once PG is back")
    print(
        f"caught up {time.monotonic() - t_unblock:.1f} s after the database came back "
        f"({catch_up_s:.1f} s after the load stopped, {t_load_end - t_unblock:.1f} s of load "
        "after it came back)"
    )
    log_mark = server.log.stat().st_size

    code, log = _stop(server)
    assert code in (0, -signal.SIGTERM), log
    assert "Traceback" not in log[log_mark:], log[log_mark:]
    # The outage was seen, and said once (by the server, and by the jobs process if it tried),
    # without a traceback per failed request or retry.
    said = re.findall(r"storage unavailable: .*", log)
    assert len([x for x in said if not x.endswith("[clicktrail-jobs]")]) == 1, log[:3000]
    assert len(said) <= 2, log[:3000]
    assert "Traceback" not in log, log[:3000]

    stored = _stored_user_agents(direct)
    assert len(stored) == len(set(stored)), "a click was stored twice"
    missing = received - set(stored)
    assert not missing, f"{len(missing)} redirected clicks lost, e.g. {sorted(missing)[:3]}"
    # At most the 302s we saw plus the request on the uncached token during the outage.
    extra = set(stored) - received - {"uncached-during-outage"}
    assert not extra, f"clicks stored that nobody got a redirect for: {sorted(extra)[:3]}"
    assert not list((env.data_dir / "spool").glob("clicks-*.jsonl")), "spool not emptied"


DROP_S = 6.0  # how long the database stops answering in the partition test
DROP_PROBE_TIMEOUT_S = 3.0


def test_cached_redirects_keep_working_while_postgres_stops_answering(
    env: Env, proxy: TcpProxy, server_factory: type[Server], tmp_path: Path
) -> None:
    """A partition, not a stop: PostgreSQL's packets are dropped, no connection is closed."""
    tokens = _setup(env, tmp_path)
    cached, uncached = tokens[:-UNCACHED], tokens[-UNCACHED:]
    # No token prefetch: one token must stay uncached to show how an uncached lookup fails.
    server = server_factory(_through(proxy, env), settings=NO_PREFETCH)
    locations = {}
    with httpx.Client(base_url=server.base, timeout=5) as http:
        for i, token in enumerate(cached):
            r = _get(http, token, f"warm/{i}")
            assert r.status_code == 302, r.text
            locations[token] = _location(r)

    with Load(server.base, locations) as load:
        _eventually(lambda: len(load.snapshot()) >= 500, 30, "load going")
        proxy.block(drop=True)
        t_block = time.monotonic()
        try:
            time.sleep(0.5)
            with httpx.Client(base_url=server.base, timeout=DROP_PROBE_TIMEOUT_S) as http:
                start = time.monotonic()
                try:
                    r = _get(http, uncached[0], "uncached-during-partition")
                    uncached_result = f"{r.status_code} in {time.monotonic() - start:.2f} s"
                except httpx.TimeoutException:
                    uncached_result = f"no answer within {DROP_PROBE_TIMEOUT_S:.0f} s"
                try:
                    health = str(http.get("/healthz").status_code)
                except httpx.TimeoutException:
                    health = f"no answer within {DROP_PROBE_TIMEOUT_S:.0f} s"
            time.sleep(max(0.0, t_block + DROP_S - time.monotonic()))
        finally:
            proxy.unblock()
        t_unblock = time.monotonic()
        time.sleep(1.0)
    outcomes = load.snapshot()
    failed = [o for o in outcomes if o.result != "302"]
    during = [o for o in outcomes if t_block <= o.start and o.end <= t_unblock]
    print(
        f"\npartition: uncached token {uncached_result}; /healthz {health}; "
        f"{len(during)} cached redirects completed inside the {DROP_S:.0f} s partition, "
        f"{len(failed)} failed, e.g. {[o.result for o in failed[:2]]}"
    )
    assert uncached_result.startswith(("503", "404")), uncached_result
    assert health == "200", health
    assert not failed, f"{len(failed)} requests on cached tokens failed, e.g. {failed[0].result}"


STORAGE_OUTAGE_S = 8.0  # long enough for hundreds of refused requests


def _signed_in(http: httpx.Client, key: str) -> None:
    """Sign `http` in to the dashboard with `key` (the login form's own token)."""
    page = http.get("/dashboard/login")
    token = re.search(r'name="token" value="([^"]+)"', page.text)
    assert token, page.text
    r = http.post("/dashboard/login", data={"key": key, "token": token.group(1), "next": ""})
    assert r.status_code == 303, r.text


def test_an_outage_is_503_with_retry_after_everywhere_logged_once_and_readyz_follows_it(
    env: Env, proxy: TcpProxy, server_factory: type[Server], tmp_path: Path
) -> None:
    tokens = _setup(env, tmp_path)
    key = env.cli("keys", "create").stdout.strip()
    server = server_factory(_through(proxy, env), settings=NO_PREFETCH)
    auth = {"Authorization": f"Bearer {key}"}
    receipt = [{"message_id": "msg_nope", "status": "delivered", "at": "2026-01-01T00:00:00Z"}]
    api = [
        ("GET", "/v1/campaigns", None),
        ("GET", "/v1/campaigns/o", None),
        ("GET", "/v1/contacts", None),
        ("GET", "/v1/workspace", None),
        ("GET", "/v1/campaigns/o/report", None),
        ("POST", "/v1/messages/status?skip_unknown=true", receipt),
        ("POST", "/v1/domains", {"host": "other.example.com"}),
    ]
    with httpx.Client(base_url=server.base, timeout=10) as http:
        _signed_in(http, key)
        assert http.get("/readyz").json() == {"status": "ready"}
        assert http.get("/dashboard/").status_code == 200
        assert [http.request(m, p, json=b, headers=auth).status_code for m, p, b in api[:5]] == [
            200
        ] * 5
        mark = server.log.stat().st_size

        proxy.block()
        t_block = time.monotonic()
        answers: list[tuple[str, httpx.Response]] = []
        while time.monotonic() < t_block + STORAGE_OUTAGE_S:
            for method, path, body in api:
                answers.append((path, http.request(method, path, json=body, headers=auth)))
            answers.append(("dashboard", http.get("/dashboard/")))
            answers.append(("link", _get(http, tokens[0], "outage")))  # not cached: 503
        start = time.monotonic()
        ready_during = http.get("/readyz")
        ready_s = time.monotonic() - start
        live_during = http.get("/healthz").status_code
        proxy.unblock()
        t_unblock = time.monotonic()
        _eventually(lambda: http.get("/readyz").status_code == 200, 15, "/readyz 200 again")
        back_s = time.monotonic() - t_unblock
        assert http.get("/v1/campaigns", headers=auth).status_code == 200
        assert http.get("/dashboard/").status_code == 200

    wrong = [
        f"{what}: {r.status_code} {r.headers.get('retry-after')} {r.text[:120]!r}"
        for what, r in answers
        if r.status_code != 503 or not r.headers.get("retry-after", "").isdigit()
    ]
    assert not wrong, f"{len(wrong)} of {len(answers)} answers were not 503: " + "; ".join(
        wrong[:5]
    )
    problems = [r.json() for what, r in answers if what not in ("dashboard", "link")]
    assert {p["code"] for p in problems} == {"storage_unavailable"}
    assert not any("5432" in p["detail"] or str(proxy.port) in p["detail"] for p in problems)
    assert ready_during.status_code == 503 and ready_during.headers["retry-after"].isdigit()
    assert ready_during.json()["code"] == "storage_unavailable"
    assert ready_s < 3.0, f"/readyz took {ready_s:.1f} s while the database was away"
    assert live_during == 200  # liveness: the process is up
    print(
        f"\n{len(answers)} requests in {STORAGE_OUTAGE_S:.0f} s of outage, all 503; /readyz 503 "
        f"in {ready_s * 1000:.0f} ms, 200 again {back_s:.1f} s after the database came back"
    )

    code, log = _stop(server)
    assert code in (0, -signal.SIGTERM), log
    outage_log = log[mark:]
    assert "Traceback" not in outage_log, outage_log[:3000]
    said = re.findall(r"storage unavailable: .*", outage_log)
    assert len([x for x in said if not x.endswith("[clicktrail-jobs]")]) == 1, outage_log[:3000]
    # The server's line (the jobs process's ends with its name).
    back = re.findall(
        r"storage back after \d+ s; ([\d,]+) operations refused[^[\n]*$", outage_log, re.M
    )
    assert len(back) == 1, outage_log[:3000]
    assert int(back[0].replace(",", "")) >= len(answers) - 10, (back, len(answers))
    assert len(outage_log.splitlines()) < 20, outage_log[:3000]
