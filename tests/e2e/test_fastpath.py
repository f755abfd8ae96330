"""The redirect's HTTP fast path (web/fastpath.py) on the wire: raw sockets against
`clicktrail serve`, for what an HTTP client library would hide — pipelining, HEAD framing,
Connection: close, HTTP/1.0, keep-alive expiry, and the click records behind the answers."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from conftest import Env, Server

pytestmark = pytest.mark.e2e

HOST = "sms.example.com"


def _setup(env: Env, tmp_path: Path) -> list[str]:
    csv_path = tmp_path / "r.csv"
    csv_path.write_text("phone\n" + "".join(f"+1415555{i:04d}\n" for i in range(3)), "utf-8")
    env.cli("workspace", "create", "Fast")
    env.cli("domain", "add", HOST)
    env.cli("contacts", "import", str(csv_path))
    env.cli("campaign", "create", "F", "--template", "Go https://shop.example.com/f?a=1 now")
    env.cli("campaign", "send", "f")
    lines = (env.data_dir / "outbox.jsonl").read_text().splitlines()
    return [json.loads(x)["body"].split("/c/")[1].split(" ")[0] for x in lines]


def _get(path: str, *, method: str = "GET", extra: str = "", version: str = "1.1") -> bytes:
    return (
        f"{method} {path} HTTP/{version}\r\nHost: {HOST}\r\nUser-Agent: fastpath-test\r\n"
        f"{extra}\r\n"
    ).encode()


def _read_responses(
    sock: socket.socket, count: int, heads: frozenset[int] = frozenset()
) -> list[dict[str, Any]]:
    """Read `count` responses (those whose index is in `heads` answer a HEAD: no body)."""
    buf = b""
    out: list[dict[str, Any]] = []
    sock.settimeout(5)
    while len(out) < count:
        while b"\r\n\r\n" not in buf:
            chunk = sock.recv(65536)
            if not chunk:
                raise AssertionError(f"connection closed after {len(out)} responses: {buf!r}")
            buf += chunk
        head, buf = buf.split(b"\r\n\r\n", 1)
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        headers = {}
        for line in header_lines:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
        length = 0 if len(out) in heads else int(headers.get("content-length", "0"))
        while len(buf) < length:
            buf += sock.recv(65536)
        body, buf = buf[:length], buf[length:]
        out.append({"status": int(status_line.split()[1]), "headers": headers, "body": body})
    assert buf == b"", f"unexpected bytes after the responses: {buf!r}"
    return out


def _connect(server: Server) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.port), timeout=5)


def _click_count(env: Env) -> int:
    engine = sa.create_engine(env.database_url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with engine.connect() as conn:
            return int(conn.exec_driver_sql("SELECT count(*) FROM clicks").scalar_one())
    finally:
        engine.dispose()


def test_pipelined_keep_alive_head_close_and_http10(
    env: Env, tmp_path: Path, server_factory: type[Server]
) -> None:
    tokens = _setup(env, tmp_path)
    server = server_factory(env)
    a, b, c = tokens

    # Pipelined: a redirect, an API request (answered through ASGI), then redirects again;
    # the fast path must not overtake the ASGI response still being produced.
    with _connect(server) as sock:
        sock.sendall(
            _get(f"/c/{a}") + _get("/healthz") + _get(f"/c/{b}?next=https://evil.example")
            + _get(f"/c/{c}", method="HEAD") + _get("/c/000000000", method="HEAD")
            + _get(f"/c/{a}")
        )  # fmt: skip
        r = _read_responses(sock, 6, heads=frozenset({3, 4}))
    assert [x["status"] for x in r] == [302, 200, 302, 302, 404, 302]
    loc = r[0]["headers"]["location"]
    assert loc.startswith("https://shop.example.com/f?a=1&utm_source=sms")
    # The destination comes from the stored link only, never from the query string.
    assert r[2]["headers"]["location"].startswith("https://shop.example.com/f?a=1&")
    assert "evil" not in r[2]["headers"]["location"]
    for x in (r[0], r[2], r[3]):
        assert x["headers"]["cache-control"] == "private, no-store"
        assert x["headers"]["referrer-policy"] == "no-referrer"
        assert x["headers"]["content-length"] == "0"
        assert "date" in x["headers"]
        assert "set-cookie" not in x["headers"]
    # HEAD on an unknown token: the 404 page's length, and no body (the next response parsed).
    assert int(r[4]["headers"]["content-length"]) > 0
    assert r[0]["headers"]["location"] != r[5]["headers"]["location"]  # a new click id each time

    # Connection: close is honoured on the fast path, and so is HTTP/1.0 without keep-alive.
    for request in (_get(f"/c/{a}", extra="Connection: close\r\n"), _get(f"/c/{b}", version="1.0")):
        with _connect(server) as sock:
            sock.sendall(request)
            (resp,) = _read_responses(sock, 1)
            assert resp["status"] == 302
            assert resp["headers"].get("connection") == "close"
            sock.settimeout(5)
            assert sock.recv(1) == b""  # the server closed the connection

    # A percent-encoded token path is decoded like uvicorn does.
    with _connect(server) as sock:
        sock.sendall(_get(f"/c/%{ord(a[0]):02X}{a[1:]}"))
        assert _read_responses(sock, 1)[0]["status"] == 302

    server.stop()
    # GETs and HEADs on known tokens are stored (HEAD as a probe); 404s are not.
    assert _click_count(env) == 7


def test_idle_keep_alive_connections_are_closed(
    env: Env, tmp_path: Path, server_factory: type[Server]
) -> None:
    tokens = _setup(env, tmp_path)
    server = server_factory(env)
    with _connect(server) as sock:
        sock.sendall(_get(f"/c/{tokens[0]}"))
        assert _read_responses(sock, 1)[0]["status"] == 302
        started = time.monotonic()
        sock.settimeout(15)
        assert sock.recv(1) == b""  # uvicorn's keep-alive timeout (5 s), give or take a second
        idle = time.monotonic() - started
    assert 4.0 <= idle <= 8.0, idle
    server.stop()


def test_a_burst_of_pipelined_redirects_is_answered_in_order_once_recorded(
    env: Env, tmp_path: Path, server_factory: type[Server]
) -> None:
    # More requests in one packet than the fast path syncs the click log for at once (16),
    # mixed with 404s and an API request: every answer in order, every redirect recorded.
    tokens = _setup(env, tmp_path)
    server = server_factory(env)
    requests = []
    for i in range(40):
        if i == 20:
            requests.append(_get("/healthz"))
        elif i % 7 == 3:
            requests.append(_get("/c/000000000"))
        else:
            requests.append(_get(f"/c/{tokens[i % 3]}?n={i}"))
    with _connect(server) as sock:
        sock.sendall(b"".join(requests))
        r = _read_responses(sock, len(requests))
    expected = [200 if i == 20 else 404 if i % 7 == 3 else 302 for i in range(40)]
    assert [x["status"] for x in r] == expected
    click_ids = {x["headers"]["location"].rsplit("ct_cid=", 1)[1] for x in r if x["status"] == 302}
    assert len(click_ids) == expected.count(302)
    server.stop()
    assert _click_count(env) == expected.count(302)


def test_a_malformed_request_behind_a_redirect_does_not_overtake_it(
    env: Env, tmp_path: Path, server_factory: type[Server]
) -> None:
    tokens = _setup(env, tmp_path)
    server = server_factory(env)
    with _connect(server) as sock:
        sock.sendall(_get(f"/c/{tokens[0]}") + b"NOT HTTP AT ALL\r\n\r\n")
        first, second = _read_responses(sock, 2)
    assert (first["status"], second["status"]) == (302, 400)
    server.stop()
    assert _click_count(env) == 1


def test_a_malformed_request_behind_an_asgi_request_does_not_overtake_it(
    env: Env, tmp_path: Path, server_factory: type[Server]
) -> None:
    # The request ahead is answered by the ASGI app (as an uncached token is on PostgreSQL,
    # where the lookup leaves the event loop): the 400 waits for its answer, then closes.
    _setup(env, tmp_path)
    server = server_factory(env)
    with _connect(server) as sock:
        sock.sendall(_get("/healthz") + _get("/healthz") + b"NOT HTTP AT ALL\r\n\r\n")
        first, second, third = _read_responses(sock, 3)
    assert (first["status"], second["status"], third["status"]) == (200, 200, 400)
    server.stop()
