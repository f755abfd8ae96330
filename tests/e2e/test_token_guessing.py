"""Token guessing through the real server: a client that misses many tokens is answered 429
without lookups, cheaply, and logged once; other clients and cached links are not affected.

On SQLite uncached lookups run inline on the HTTP fast path; on PostgreSQL they go through ASGI
and the lookup thread pool: both paths are covered by the database matrix."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_fastpath import _connect, _get, _read_responses, _setup

from clicktrail.domain.tokens import new_token
from conftest import Env, Server

pytestmark = pytest.mark.e2e

BURST = 20


def _ask(server: Server, tokens: list[str], client: str) -> list[dict[str, object]]:
    """GET each token over one keep-alive connection, as `client` (X-Forwarded-For)."""
    with _connect(server) as sock:
        sock.sendall(
            b"".join(_get(f"/c/{t}", extra=f"X-Forwarded-For: {client}\r\n") for t in tokens)
        )
        return _read_responses(sock, len(tokens))


def test_a_guessing_client_is_refused_cheaply_and_logged(
    env: Env, tmp_path: Path, server_factory: type[Server]
) -> None:
    real = _setup(env, tmp_path)
    server = server_factory(
        env,
        settings={
            "CLICKTRAIL_REDIRECT_MISS_BURST": str(BURST),
            "CLICKTRAIL_REDIRECT_MISS_RATE": "0.5",
            "CLICKTRAIL_TRUSTED_PROXIES": "127.0.0.1",
        },
    )
    guesses = [new_token() for _ in range(BURST + 30)]
    answers = _ask(server, guesses, "198.51.100.7")
    statuses = [a["status"] for a in answers]
    # The burst is looked up (404: not found); then no more lookups, 429 with Retry-After.
    assert statuses[:BURST] == [404] * BURST
    assert set(statuses[BURST + 1 :]) == {429}
    assert answers[-1]["headers"]["retry-after"] == "30"  # type: ignore[index]

    # A link that is cached (sent recently, prefetched) still redirects for that client.
    (cached,) = _ask(server, [real[0]], "198.51.100.7")
    assert cached["status"] == 302
    # Another client is not affected; an IPv6 client is counted per /64.
    assert {a["status"] for a in _ask(server, guesses[:5], "198.51.100.8")} == {404}
    v6 = _ask(server, guesses[: BURST + 2], "2001:db8:1:2::1")
    assert v6[-1]["status"] == 429
    same_64 = _ask(server, guesses[:1], "2001:db8:1:2:ffff::9")
    assert same_64[0]["status"] == 429
    other_64 = _ask(server, guesses[:1], "2001:db8:1:3::1")
    assert other_64[0]["status"] == 404

    server.stop()  # fails on any traceback in the log
    log = server.log.read_text()
    started = [line for line in log.splitlines() if "token guessing" in line]
    assert len(started) == 2, log  # one line per episode (198.51.100.7 and 2001:db8:1:2::/64)
    assert "198.51.100.7" in started[0] and "2001:db8:1:2::/64" in started[1]
