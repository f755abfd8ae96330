"""The redirect: ``GET /c/<token>`` → 302 to the stored destination, click recorded first.

The hot path, kept to a raw ASGI callable: no framework routing, no middleware, no templates.
Read it top to bottom:

1. the path must start with the prefix, the token must be well-formed (length, alphabet, check
   character) — malformed tokens cost no lookup;
2. the token is resolved (in-process cache, then one indexed query);
3. the request's Host must be the token's own short domain (a token never resolves on another
   workspace's domain);
4. the click (time, IP, user agent, allow-listed headers) is made durable in the click log;
5. 302 with ``Location`` and ``Cache-Control: private, no-store`` (a cached redirect would eat
   clicks).

HEAD and OPTIONS get the same answer and are recorded as probes, never counted as clicks.
Unknown tokens, unknown hosts and malformed tokens get the same small 404 page.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
import threading
import time
from base64 import urlsafe_b64encode
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from clicktrail.domain.errors import StorageUnavailable
from clicktrail.domain.guessing import MissGuard, client_key
from clicktrail.domain.network import Network, client_ip
from clicktrail.domain.tokens import is_well_formed
from clicktrail.services.ports import Target

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

log = logging.getLogger("clicktrail.redirect")

# Headers kept with each click for bot filtering, raw (lowercase names as ASGI gives them).
KEPT_HEADERS = frozenset(
    {
        b"accept",
        b"accept-language",
        b"accept-encoding",
        b"referer",
        b"purpose",
        b"x-purpose",
        b"sec-purpose",
        b"via",
        b"x-forwarded-for",
        b"forwarded",
        b"dnt",
        b"upgrade-insecure-requests",
    }
)
_KEPT_PREFIXES = (b"sec-fetch-", b"sec-ch-ua")
PROBE_METHODS = frozenset({"HEAD", "OPTIONS"})

NOT_FOUND_BODY = (
    b"<!doctype html><html><head><meta charset=utf-8><meta name=viewport "
    b'content="width=device-width"><title>Link not found</title></head><body style="font:16px '
    b'system-ui;margin:3em;text-align:center"><h1>Link not found</h1><p>This link is not valid '
    b"or has expired.</p></body></html>"
)
_NOT_FOUND_START = {
    "type": "http.response.start",
    "status": 404,
    "headers": [
        (b"content-type", b"text/html; charset=utf-8"),
        (b"cache-control", b"no-store"),
        (b"content-length", str(len(NOT_FOUND_BODY)).encode()),
    ],
}
_EMPTY_BODY = {"type": "http.response.body", "body": b""}
UNAVAILABLE_BODY = (
    b"<!doctype html><html><head><meta charset=utf-8><title>Try again</title></head>"
    b'<body style="font:16px system-ui;margin:3em;text-align:center"><h1>Please try again'
    b"</h1><p>This link is busy. Try again in a moment.</p></body></html>"
)
TOO_MANY_BODY = (
    b"<!doctype html><html><head><meta charset=utf-8><title>Too many requests</title></head>"
    b'<body style="font:16px system-ui;margin:3em;text-align:center"><h1>Too many requests'
    b"</h1><p>Too many unknown links from this address. Try again in a minute.</p></body></html>"
)
RETRY_GUESSER_S = 30
_TOO_MANY_START = {
    "type": "http.response.start",
    "status": 429,
    "headers": [
        (b"content-type", b"text/html; charset=utf-8"),
        (b"cache-control", b"no-store"),
        (b"retry-after", str(RETRY_GUESSER_S).encode()),
        (b"content-length", str(len(TOO_MANY_BODY)).encode()),
    ],
}
_UNAVAILABLE_START = {
    "type": "http.response.start",
    "status": 503,
    "headers": [
        (b"content-type", b"text/html; charset=utf-8"),
        (b"cache-control", b"no-store"),
        (b"retry-after", b"5"),
        (b"content-length", str(len(UNAVAILABLE_BODY)).encode()),
    ],
}


def _host(value: bytes) -> str:
    """Return a Host header's host without port or trailing dot, lowercased."""
    host = value.decode("latin-1").lower()
    if host.startswith("["):  # IPv6 literal
        return host.split("]")[0] + "]"
    return host.split(":", 1)[0].rstrip(".")


# Paths served by the API and pages; every other path is a short link (or a 404 page).
RESERVED_PATHS = (
    "/v1/", "/healthz", "/readyz", "/openapi.json", "/docs", "/dashboard", "/static/",
    "/postback", "/ct.js",
)  # fmt: skip


class LookupOffload:
    """Resolve uncached tokens on a small thread pool with a deadline.

    For storage across the network (PostgreSQL): a server that stops answering then costs one
    503 after `timeout` seconds, while the event loop keeps serving cached links and the API.
    Local SQLite lookups take microseconds and stay on the event loop.
    """

    def __init__(
        self,
        resolve: Callable[[str], Target | None],
        give_up: Callable[[], None],
        timeout: float = 2.0,
        threads: int = 4,
    ) -> None:
        self.lookup = resolve
        self.give_up = give_up
        self.timeout = timeout
        self.pool = ThreadPoolExecutor(threads, thread_name_prefix="clicktrail-lookup")

    async def resolve(self, token: str) -> Target | None:
        """Look `token` up off the event loop; raises on failure or after the deadline."""
        loop = asyncio.get_running_loop()
        try:
            return await asyncio.wait_for(
                loop.run_in_executor(self.pool, self.lookup, token), self.timeout
            )
        except TimeoutError:
            self.give_up()
            raise

    def close(self) -> None:
        """Stop the pool without waiting for stalled lookups."""
        self.pool.shutdown(wait=False, cancel_futures=True)


NOT_OURS = object()  # the path is not a short link: the API and pages answer it
NEEDS_AWAIT = object()  # the token is not cached and its lookup must leave the event loop
GUESSING = object()  # the client has spent its miss budget: 429, no lookup (domain.guessing)


class RedirectApp:
    """ASGI app answering short links ``<domain prefix><token>``; `fallback` serves the rest.

    Each domain has its own path prefix (``/c/`` by default): the token is the last path
    segment and the rest of the path must be its domain's prefix.

    The logic is in `lookup` and `answer`, which do no I/O of their own beyond the lookup and
    the click log: the ASGI `__call__` below and the HTTP fast path (`web.fastpath`) both use
    them, so both answer every request the same way.
    """

    def __init__(
        self,
        resolve: Callable[[str], Target | None],
        record: Callable[[tuple[Any, ...]], None],
        fallback: ASGIApp,
        *,
        cached: Callable[[str], Target | None] = lambda _token: None,
        fallback_url_for: Callable[[str], str | None] = lambda _host: None,
        trusted_proxies: Sequence[Network] = (),
        lookup_offload: LookupOffload | None = None,
        append: Callable[[tuple[Any, ...]], None] | None = None,
        sync: Callable[[], None] | None = None,
        miss_guard: MissGuard | None = None,
    ) -> None:
        self.resolve = resolve
        self.guard = miss_guard
        self._sweep_at = 0.0
        self.cached = cached
        self.offload = lookup_offload
        self.record = record
        # Batched recording for the HTTP fast path: `append` each click, `sync` once (one
        # spool write), then answer them all. Without both, the fast path records one by one.
        self.append = append if append is not None and sync is not None else record
        self.sync = sync if append is not None and sync is not None else _nothing
        self.fallback = fallback
        self.fallback_url_for = fallback_url_for
        self.trusted_proxies = tuple(trusted_proxies)

    def lookup(
        self,
        path: str,
        client: tuple[str, int] | None = None,
        headers: Sequence[tuple[bytes, bytes]] = (),
    ) -> Target | object | None:
        """Return the target of the short link at `path` without waiting on the network.

        None: malformed or unknown token; `NOT_OURS`: an API or page path; `NEEDS_AWAIT`: the
        token must be looked up off the event loop (`LookupOffload`); `GUESSING`: the client
        (`client` and, behind trusted proxies, its forwarding `headers`) has missed too many
        tokens and this uncached one is not looked up. Raises when storage fails.
        """
        if path == "/" or path.startswith(RESERVED_PATHS):
            return NOT_OURS
        token = path[path.rfind("/") + 1 :]
        # A cached token is well-formed: look in the cache before checking the token.
        hit = self.cached(token)
        if hit is not None:
            return hit
        if not is_well_formed(token):
            return None
        guard = self.guard
        if guard is not None and guard.open_episodes and not self._allowed(client, headers):
            return GUESSING
        if self.offload is not None:
            return NEEDS_AWAIT
        target = self.resolve(token)
        if target is None and self.guard is not None:
            self.missed(client, headers)
        return target

    # -- token guessing (domain.guessing): only on lookups of uncached tokens ----------------

    def _client_key(
        self, client: tuple[str, int] | None, headers: Sequence[tuple[bytes, bytes]]
    ) -> str:
        ip = client[0] if client else None
        if self.trusted_proxies and ip is not None:
            forwarded = x_forwarded_for = None
            for name, value in headers:
                if name == b"forwarded":
                    forwarded = value.decode("latin-1")
                elif name == b"x-forwarded-for":
                    x_forwarded_for = value.decode("latin-1")
            ip = client_ip(ip, forwarded, x_forwarded_for, self.trusted_proxies)
        return client_key(ip)

    def _allowed(
        self, client: tuple[str, int] | None, headers: Sequence[tuple[bytes, bytes]]
    ) -> bool:
        assert self.guard is not None
        now = time.monotonic()
        if self.guard.allows(self._client_key(client, headers), now):
            return True
        self._report_ended(now)
        return False

    def missed(
        self, client: tuple[str, int] | None, headers: Sequence[tuple[bytes, bytes]]
    ) -> None:
        """Count a lookup that found no token against the client's miss budget."""
        if self.guard is None:
            return
        now = time.monotonic()
        started = self.guard.miss(self._client_key(client, headers), now)
        if started is not None:
            log.warning(
                "client %s missed %d unknown tokens in a burst (token guessing?): its lookups "
                "of uncached tokens are refused with 429 until it slows down%s",
                started.client,
                int(self.guard.burst),
                ""
                if self.trusted_proxies or not _is_local(started.client)
                else " (if this is your proxy, list it in trusted_proxies: every client "
                "behind it shares its budget now)",
            )
        self._report_ended(now)

    def _report_ended(self, now: float) -> None:
        # At most every few seconds, on a miss or a refusal: a log line per ended episode.
        if self.guard is None or now < self._sweep_at:
            return
        self._sweep_at = now + 5.0
        for ep in self.guard.ended(now):
            log.warning(
                "client %s stopped guessing tokens after %.0f s: %d more misses, %d lookups "
                "refused (%d misses and %d refusals from every client since start)",
                ep.client,
                (ep.ended or now) - ep.started,
                ep.misses,
                ep.refused,
                self.guard.misses,
                self.guard.refused,
            )

    def answer(
        self,
        path: str,
        target: Target | None,
        method: str,
        headers: list[tuple[bytes, bytes]],
        client: tuple[str, int] | None,
        http_version: str,
        batched: bool = False,
    ) -> tuple[int, bytes]:
        """Return (status, Location or b"") for a request on a short link, recording the click.

        302 with the destination, 302 to the domain's fallback URL, or 404. The click is in
        the click log (durable) when this returns; with `batched`, only once `sync` has run,
        which the caller must call before it sends the answer.
        """
        if method != "GET" and method not in PROBE_METHODS:
            return 404, b""
        # One pass over the headers: the Host, and the signals kept with the click.
        host = ""
        user_agent = None
        forwarded = x_forwarded_for = None
        kept: dict[str, str] = {}
        for name, value in headers:
            if name == b"host":
                host = _host(value)
            elif name == b"user-agent":
                user_agent = value.decode("latin-1")
            elif name in KEPT_HEADERS or name.startswith(_KEPT_PREFIXES):
                text = value.decode("latin-1")
                kept[name.decode("latin-1")] = text
                if name == b"forwarded":
                    forwarded = text
                elif name == b"x-forwarded-for":
                    x_forwarded_for = text
        cut = path.rfind("/") + 1
        if target is None or host != target.host or target.path_prefix != path[:cut]:
            fallback_url = self.fallback_url_for(host)
            return (404, b"") if fallback_url is None else (302, fallback_url.encode())
        kept["_http"] = http_version
        if user_agent is None:
            kept["_ua"] = "missing"  # tells a missing header from an empty one
        ip = client[0] if client else None
        if self.trusted_proxies:
            ip = client_ip(ip, forwarded, x_forwarded_for, self.trusted_proxies)
        click_id = new_click_id()
        # A plain tuple in `domain.clicks.CLICK_FIELDS` order (cheaper than building the
        # record); storage reads it back with that module's codec.
        row = (
            click_id, path[cut:], target.campaign_id, target.link_id, target.message_id,
            target.contact_id, time.time_ns() // 1000, method, ip, user_agent, kept,
        )  # fmt: skip
        (self.append if batched else self.record)(row)
        if target.add_click_id:
            return 302, (target.cid_head + click_id + target.cid_tail).encode()
        return 302, target.destination.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope["path"] if scope["type"] == "http" else "/"
        if path == "/" or path.startswith(RESERVED_PATHS):
            # The API and pages, outside the lookup's `try`: their errors are theirs (a 500
            # from the API must never be followed by the redirect's 503).
            await self.fallback(scope, receive, send)
            return
        try:
            target = self.lookup(path, scope.get("client"), scope["headers"])
            if target is NEEDS_AWAIT:
                assert self.offload is not None
                target = await self.offload.resolve(path[path.rfind("/") + 1 :])
                if target is None:
                    self.missed(scope.get("client"), scope["headers"])
        except Exception as exc:
            # Storage unreachable and the token not cached: the link may well be valid, so
            # no 404; ask the client to retry. An outage is logged once per episode by
            # storage (no traceback per request); anything else is a bug worth one.
            if not isinstance(exc, StorageUnavailable | TimeoutError):
                log.exception("token lookup failed")
            await send(_UNAVAILABLE_START)
            await send({"type": "http.response.body", "body": UNAVAILABLE_BODY})
            return
        if target is GUESSING:
            await send(_TOO_MANY_START)
            await send({"type": "http.response.body", "body": TOO_MANY_BODY})
            return
        assert target is None or isinstance(target, Target)
        status, location = self.answer(
            path, target, scope["method"], scope["headers"], scope.get("client"),
            scope.get("http_version", ""),
        )  # fmt: skip
        if status == 302:
            await _redirect(send, location)
        else:
            await _not_found(send)


def _is_local(client: str) -> bool:
    """True for a loopback or private address (or IPv6 /64): likely a proxy of the operator."""
    try:
        return ipaddress.ip_network(client, strict=False).is_private
    except ValueError:
        return False


def _nothing() -> None:
    pass


def new_click_id() -> str:
    """Return a new click id: 16 URL-safe characters, 6 bytes of time then 6 random bytes.

    The time prefix (milliseconds) keeps ids made close together close in the unique index,
    so inserting them touches few pages, and the random part (48 bits per millisecond and
    process) keeps them unique; a collision would only make a replay skip a click.
    """
    global _random_pos, _random_pool
    with _random_lock:  # the event loop's thread, mostly; tests call it from others
        pos = _random_pos
        if pos >= len(_random_pool):
            # One getrandom(2) per 4096 ids instead of one per click.
            _random_pool, pos = os.urandom(6 * 4096), 0
        _random_pos = pos + 6
        rand = _random_pool[pos : pos + 6]
    stamp = (time.time_ns() // 1_000_000).to_bytes(6, "big")
    return urlsafe_b64encode(stamp + rand).decode()


_random_pool = b""
_random_pos = 0
_random_lock = threading.Lock()


async def _redirect(send: Send, location: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 302,
            "headers": [
                (b"location", location),
                (b"cache-control", b"private, no-store"),
                (b"referrer-policy", b"no-referrer"),
                (b"content-length", b"0"),
            ],
        }
    )
    await send(_EMPTY_BODY)


async def _not_found(send: Send) -> None:
    await send(_NOT_FOUND_START)
    await send({"type": "http.response.body", "body": NOT_FOUND_BODY})
