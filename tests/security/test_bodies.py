"""Request bodies are read against their route's limit as they stream, on a real server.

Every route of the app that takes a body (walked from the route table: the API, the webhooks and
the dashboard) gets a body over its limit, declared by Content-Length and chunked without one,
with and without an API key: the answer is 413 ``too_large`` (or 401 before a byte is read,
for a key-only route without a key) and comes while the client is still sending; the server's
memory does not grow with what was sent. JSON nested deeper than `MAX_JSON_DEPTH` is 422 and
the connection stays usable. The server is uvicorn with clicktrail's HTTP protocol (the
redirect's fast path) on a thread of this process, so its memory is this process's.
"""

from __future__ import annotations

import gc
import json
import logging
import re
import select
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from starlette.routing import Mount, Route

from clicktrail.bootstrap import Container
from clicktrail.web.bodies import MAX_JSON_DEPTH, SERVER_MAX_BODY, json_depth_over
from clicktrail.web.fastpath import RedirectProtocol
from factories import Repos, make_campaign
from inprocess_api import HOST, Api
from inprocess_api import api as api
from served import ThreadServer

MiB = 1024 * 1024
SENT = 200 * MiB  # what an attacker sends (the issue: 300 MB raised the server by 550 MB)
GROWTH = 30 * MiB  # what the server may grow by while it refuses it
# Routes that take no body: they answer without reading one (memory is still checked).
IGNORES_BODY = re.compile(r".*/(pause|resume|cancel|finalize)$")
# Routes anyone may call (no API key): they read the body, against their limit, first.
OPEN = ("/v1/webhooks/", "/dashboard/")


@dataclass
class World:
    container: Container
    server: ThreadServer
    key: str


@pytest.fixture
def world(api: Api) -> Iterator[World]:
    """The `api` fixture's workspace and key, served for real; a campaign ``x``."""
    make_campaign(
        Repos.on(api.container.engine), api.ws, slug="x"
    )  # routes under /v1/campaigns/x find it
    server = ThreadServer(api.container)
    server.server.config.http = RedirectProtocol  # as `clicktrail serve` runs it
    with server:
        yield World(api.container, server, api.key)


def body_routes(app: object) -> list[tuple[str, str]]:
    """(method, path) of every route of the served app that accepts a body, path parameters
    filled in."""
    api = app.redirect.fallback  # type: ignore[attr-defined]  # the API, with the dashboard

    def walk(routes: list[object], prefix: str = "") -> Iterator[tuple[str, str]]:
        for route in routes:
            if isinstance(route, Mount):
                inner = route.app
                while not hasattr(inner, "routes") and hasattr(inner, "app"):
                    inner = inner.app  # middleware around a mounted app
                yield from walk(getattr(inner, "routes", []), prefix + route.path)
            elif isinstance(route, Route):
                for method in sorted((route.methods or set()) & {"POST", "PUT", "PATCH"}):
                    yield method, re.sub(r"\{[^}]+\}", "x", prefix + route.path)

    found = sorted(set(walk(api.routes)))
    assert ("POST", "/v1/webhooks/twilio/status") in found and len(found) > 15, found
    return found


class Rss:
    """The peak resident memory of this process while it is watched, sampled every 5 ms."""

    def __init__(self) -> None:
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    @staticmethod
    def now() -> int:
        status = Path("/proc/self/status").read_text()
        return int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1)) * 1024  # type: ignore[union-attr]

    def _watch(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.now())
            time.sleep(0.005)

    def __enter__(self) -> Rss:
        gc.collect()
        self.start = self.now()
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.now())

    @property
    def growth(self) -> int:
        return self.peak - self.start


@dataclass
class Answer:
    status: int
    body: bytes
    sent: int  # body bytes the client had sent when the answer came


def send_body(
    port: int, method: str, path: str, size: int, *, declared: bool, key: str | None
) -> Answer:
    """Send `size` bytes of body, declared by Content-Length or chunked without one, 1 MiB at a
    time, and stop as soon as the server answers; return the answer."""
    head = f"{method} {path} HTTP/1.1\r\nHost: {HOST}\r\nContent-Type: application/json\r\n"
    if key is not None:
        head += f"Authorization: Bearer {key}\r\n"
    head += f"Content-Length: {size}\r\n" if declared else "Transfer-Encoding: chunked\r\n"
    chunk = b"[" * MiB
    piece = chunk if declared else b"%x\r\n" % len(chunk) + chunk + b"\r\n"
    sent = 0
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        sock.sendall(head.encode() + b"\r\n")
        while sent < size:
            readable, writable, _ = select.select([sock], [sock], [], 60)
            if readable:
                break  # answered before the body was all sent
            assert writable, f"{method} {path}: the server neither reads nor answers"
            sock.sendall(piece)
            sent += len(chunk)
        if not declared and sent >= size:
            sock.sendall(b"0\r\n\r\n")
        return Answer(*_read_answer(sock), sent)


def _read_answer(sock: socket.socket) -> tuple[int, bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        more = sock.recv(65536)
        assert more, f"connection closed without an answer: {data!r}"
        data += more
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(re.search(rb"(?i)content-length: (\d+)", head).group(1))  # type: ignore[union-attr]
    while len(body) < length:
        body += sock.recv(65536)
    return int(head.split()[1]), body


def test_every_body_is_refused_at_its_limit_while_the_server_memory_stays_flat(
    world: World,
) -> None:
    port = world.server.port
    failures = []
    for method, path in body_routes(world.server.server.config.app):
        for declared in (True, False):
            for key in (world.key, None):
                # Over every route limit (the CSV import's is the server's cap: over it).
                size = SERVER_MAX_BODY + 32 * MiB if path == "/v1/contacts/import" else SENT
                with Rss() as rss:
                    answer = send_body(port, method, path, size, declared=declared, key=key)
                what = (
                    f"{method} {path} {'Content-Length' if declared else 'chunked'} "
                    f"{'with' if key else 'without'} key: {answer.status} after "
                    f"{answer.sent // MiB} MiB sent, server +{rss.growth // MiB} MiB"
                )
                limit = _limit(answer)
                allowed = GROWTH + 2 * (limit if limit and limit > 5 * MiB else 0)
                if rss.growth > allowed:
                    failures.append(what + " (memory)")
                if IGNORES_BODY.match(path):
                    ok = answer.status < 500
                elif key is None and not path.startswith(OPEN):
                    ok = answer.status in (401, 413)  # 401: refused before reading the body
                elif path.startswith("/dashboard/"):
                    ok = answer.status == 413  # an HTML page
                else:
                    ok = answer.status == 413 and _code(answer) == "too_large"
                if not ok or answer.sent >= size:
                    failures.append(what)
    assert not failures, "\n".join(failures)


def _code(answer: Answer) -> str | None:
    try:
        return str(json.loads(answer.body).get("code"))
    except ValueError:
        return None


def _limit(answer: Answer) -> int | None:
    try:
        limit = json.loads(answer.body).get("limit")
    except ValueError:
        return None
    return limit if isinstance(limit, int) else None


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/c/AAAAAAAAA"), ("GET", "/c/AAAAAAAAA"), ("POST", "/nowhere"), ("PUT", "/v1/x")],
)
def test_bodies_sent_to_links_and_unknown_paths_are_not_kept(
    world: World, method: str, path: str
) -> None:
    """The redirect and 404s never read a body; what arrives is thrown away, not buffered."""
    size = 64 * MiB
    with Rss() as rss:
        answer = send_body(world.server.port, method, path, size, declared=True, key=None)
    assert answer.status == 404, answer
    assert rss.growth < GROWTH, f"server +{rss.growth // MiB} MiB for a {size // MiB} MiB body"


def test_the_server_cap_refuses_a_declared_length_over_every_route_limit(world: World) -> None:
    answer = send_body(
        world.server.port, "POST", "/v1/nowhere", SERVER_MAX_BODY + 1, declared=True, key=None
    )
    assert (answer.status, _code(answer), _limit(answer)) == (413, "too_large", SERVER_MAX_BODY)
    assert answer.sent < 16 * MiB  # what the sockets took before the answer


def deep(levels: int) -> bytes:
    return b"[" * levels + b"]" * levels


@pytest.mark.parametrize(
    "path", ["/v1/messages/status", "/v1/webhooks/http/x/status", "/v1/wrap", "/v1/domains"]
)
def test_json_nested_too_deep_is_422_naming_the_limit_and_the_connection_stays_usable(
    world: World, path: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    headers = {"Authorization": f"Bearer {world.key}", "Content-Type": "application/json"}
    with httpx.Client(base_url=world.server.url, headers={"Host": HOST}) as http:
        r = http.post(path, content=deep(20_000), headers=headers)
        assert r.status_code == 422, r.text
        problem = r.json()
        assert (problem["code"], problem["field"]) == ("invalid_input", "body")
        assert f"more than {MAX_JSON_DEPTH} levels" in problem["detail"]
        # The same connection answers the next request.
        assert http.get("/healthz").json() == {"status": "ok"}
    assert "token lookup failed" not in caplog.text
    assert not [rec for rec in caplog.records if rec.levelno >= logging.ERROR], caplog.text


def test_json_as_deep_as_allowed_is_not_refused_for_its_depth(world: World) -> None:
    body = b'{"receipts": ' + deep(MAX_JSON_DEPTH - 1) + b"}"
    r = httpx.post(
        world.server.url + "/v1/messages/status",
        content=body,
        headers={"Host": HOST, "Authorization": f"Bearer {world.key}"},
    )
    assert r.status_code == 422, r.text  # not receipts, but not refused for its depth
    assert "levels" not in r.json()["detail"]


def _reference_depth(data: str) -> int:
    depth = deepest = 0
    in_string = escaped = False
    for ch in data:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    return deepest


_PIECES = st.sampled_from(["[", "{", "]", "}", '"a[{b"', '"\\"[["', '"\\\\"', ",", "1", ":"])


@given(st.lists(_PIECES, max_size=400).map("".join), st.integers(0, 12))
def test_the_depth_scan_agrees_with_a_character_by_character_count(text: str, limit: int) -> None:
    assert json_depth_over(text.encode(), limit) == (_reference_depth(text) > limit)


@given(
    st.recursive(
        st.none() | st.integers() | st.text(),
        lambda kids: st.lists(kids) | st.dictionaries(st.text(), kids),
    )
)
def test_the_depth_scan_measures_real_json(value: object) -> None:
    text = json.dumps(value)
    depth = _reference_depth(text)
    assert json_depth_over(text.encode(), max(depth - 1, 0)) == (depth > 0)
    assert not json_depth_over(text.encode(), depth)


def test_a_lone_surrogate_in_receipts_is_422_not_a_server_error(api: Api) -> None:
    body = b'{"receipts": [{"message_id": "\\ud8e5x", "status": "failed"}]}'
    r = api.call("POST", "/v1/messages/status", content=body)
    assert r.status_code == 422, r.text
    assert r.json()["field"] == "body"
