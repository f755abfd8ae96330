"""The redirect's HTTP fast path: short links answered inside uvicorn's HTTP protocol.

Through ASGI, every request costs a scope dict, a `RequestResponseCycle`, an asyncio task and
two `send` messages: about 17 µs of the 25 µs a request may take at 40,000 redirects/s on one
core (bench/RESULTS.md). `RedirectProtocol` is uvicorn's httptools protocol with one change:
when a parsed request is a GET or HEAD on a short link whose token resolves without waiting
(cached, or SQLite), it asks `RedirectApp.answer` — the same code the ASGI path runs — and
writes the response bytes itself. Everything else (the API, the dashboard, uncached tokens on
PostgreSQL, pipelined requests behind an ASGI response, upgrades) goes through uvicorn's
ASGI handling unchanged. See docs/adr/0006-redirect-fast-path.md.

It relies on uvicorn's protocol internals (`on_headers_complete` and friends, as uvicorn 0.30
to 0.54 have them), so pyproject pins uvicorn below the next minor release and the redirect's
HTTP tests run through this class.
"""

from __future__ import annotations

import urllib.parse
from typing import Any, ClassVar

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from clicktrail.domain.errors import StorageUnavailable
from clicktrail.web.redirect import (
    GUESSING,
    NEEDS_AWAIT,
    NOT_FOUND_BODY,
    NOT_OURS,
    RETRY_GUESSER_S,
    TOO_MANY_BODY,
    UNAVAILABLE_BODY,
    RedirectApp,
    log,
)

_FOUND = b"HTTP/1.1 302 Found\r\nlocation: "
_FOUND_TAIL = (
    b"\r\ncache-control: private, no-store\r\nreferrer-policy: no-referrer\r\ncontent-length: 0\r\n"
)
_NOT_FOUND = (
    b"HTTP/1.1 404 Not Found\r\ncontent-type: text/html; charset=utf-8\r\n"
    b"cache-control: no-store\r\ncontent-length: " + str(len(NOT_FOUND_BODY)).encode() + b"\r\n"
)
_UNAVAILABLE = (
    b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/html; charset=utf-8\r\n"
    b"cache-control: no-store\r\nretry-after: 5\r\n"
    b"content-length: " + str(len(UNAVAILABLE_BODY)).encode() + b"\r\n"
)
_TOO_MANY = (
    b"HTTP/1.1 429 Too Many Requests\r\ncontent-type: text/html; charset=utf-8\r\n"
    b"cache-control: no-store\r\nretry-after: " + str(RETRY_GUESSER_S).encode() + b"\r\n"
    b"content-length: " + str(len(TOO_MANY_BODY)).encode() + b"\r\n"
)
_CLOSE = b"connection: close\r\n"
_FAILED = object()  # the lookup raised: answer 503 (the link may well be valid)


def redirect_app_of(app: Any) -> RedirectApp | None:
    """Return the `RedirectApp` inside the loaded ASGI app, if it has one at its top."""
    found = getattr(app, "redirect", None)
    return found if isinstance(found, RedirectApp) else None


class RedirectProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, answering short links without an ASGI cycle."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.redirector = redirect_app_of(self.app)
        self._fast: tuple[str, Any, str, str] | None = None
        self._default_headers: object = None
        self._default_bytes = b""
        # Keep-alive after a fast response: no timer per response (a `call_later` costs about
        # as much as the rest of the redirect); `_sweep` closes connections idle too long.
        self._idle_since: float | None = None
        self._deferred_400: str | None = None  # see send_400_response

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        _Sweeper.watch(self)
        if self.redirector is not None:
            self._answers = _Answers.of(self)

    def shutdown(self) -> None:
        # Answers waiting for this turn's spool write go out before uvicorn closes idle
        # connections (it does not know about them).
        if self.redirector is not None:
            self._answers.flush()
        super().shutdown()

    def send_400_response(self, msg: str) -> None:
        # A malformed request pipelined behind other requests: their answers first. Those of
        # the fast path are flushed now; one in the ASGI app (an API request, or an uncached
        # token on PostgreSQL) answers later, so the 400 waits for it (uvicorn's own would
        # overtake it and close the connection before it is answered).
        if self.redirector is not None:
            self._answers.flush()
        if self.cycle is not None and not self.cycle.response_complete:
            self._deferred_400 = msg
            self.flow.pause_reading()
            return
        super().send_400_response(msg)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        msg = self._deferred_400
        if msg is not None and not self.pipeline and self.cycle.response_complete:
            self._deferred_400 = None
            if not self.transport.is_closing():
                super().send_400_response(msg)

    # -- parser callbacks -------------------------------------------------------------------

    def on_message_begin(self) -> None:
        # uvicorn's builds the ASGI scope here; only requests that go through ASGI need it.
        self._fast = None
        self._idle_since = None
        self.url = b""
        self.expect_100_continue = False
        self.headers = []

    def on_headers_complete(self) -> None:
        if self.redirector is not None and (self.cycle is None or self.cycle.response_complete):
            method = self.parser.get_method()
            url = self.url
            if (method == b"GET" or method == b"HEAD") and url[:1] == b"/":
                fast = self._lookup(url, method)
                if fast is not None:
                    self._fast = fast
                    return
        self._asgi_scope()
        super().on_headers_complete()

    def _asgi_scope(self) -> None:
        # What uvicorn's on_message_begin does (uvicorn 0.30–0.54).
        self.scope = {  # type: ignore[typeddict-item]
            "type": "http",
            "asgi": {"version": self.asgi_version, "spec_version": "2.3"},
            "http_version": "1.1",
            "server": self.server,
            "client": self.client,
            "scheme": self.scheme,  # type: ignore[typeddict-item]
            "root_path": self.root_path,
            "headers": self.headers,
            "state": self.app_state.copy(),
        }

    def on_body(self, body: bytes) -> None:
        if self._fast is None:
            super().on_body(body)

    def on_message_complete(self) -> None:
        if self._fast is None:
            super().on_message_complete()
            return
        path, target, method, version = self._fast
        self._fast = None
        keep_alive = self.parser.should_keep_alive()  # of this request (pipelining)
        if target is _FAILED:
            self._answers.add(self, _UNAVAILABLE, UNAVAILABLE_BODY, method, keep_alive)
            return
        if target is GUESSING:
            self._answers.add(self, _TOO_MANY, TOO_MANY_BODY, method, keep_alive)
            return
        assert self.redirector is not None
        status, location = self.redirector.answer(
            path, target, method, self.headers, self.client, version, batched=True
        )
        if self.access_log:
            self.access_logger.info(
                '%s - "%s %s HTTP/%s" %d',
                "%s:%d" % self.client if self.client else "-",  # noqa: UP031 (uvicorn's format)
                method, path, version, status,
            )  # fmt: skip
        # Answered once the click is durable: `_Answers` syncs the click log once for every
        # request answered in this turn of the event loop, then writes their responses.
        if status == 302:
            self._answers.add(self, _FOUND + location + _FOUND_TAIL, b"", method, keep_alive)
        else:
            self._answers.add(self, _NOT_FOUND, NOT_FOUND_BODY, method, keep_alive)

    # -- internals ------------------------------------------------------------------------

    def _lookup(self, url: bytes, method: bytes) -> tuple[str, Any, str, str] | None:
        """Return what `on_message_complete` needs to answer, or None to go through ASGI."""
        assert self.redirector is not None
        q = url.find(b"?")
        raw = url if q < 0 else url[:q]
        try:
            path = raw.decode("ascii")
        except UnicodeDecodeError:
            return None
        if "%" in path:
            path = urllib.parse.unquote(path)
        try:
            target = self.redirector.lookup(path, self.client, self.headers)
        except StorageUnavailable:
            target = _FAILED  # logged once per outage by storage, no traceback per request
        except Exception:
            log.exception("token lookup failed")
            target = _FAILED
        if target is NOT_OURS or target is NEEDS_AWAIT:
            return None
        version = self.parser.get_http_version()
        return path, target, method.decode("ascii"), version

    def _write(self, head: bytes, body: bytes, method: str, keep_alive: bool) -> None:
        keep_alive = keep_alive and not self.transport.is_closing()
        defaults = self.server_state.default_headers
        if defaults is not self._default_headers:  # uvicorn renews them (Date) every second
            self._default_headers = defaults
            self._default_bytes = b"".join(n + b": " + v + b"\r\n" for n, v in defaults)
        parts = head + self._default_bytes + (b"\r\n" if keep_alive else _CLOSE + b"\r\n")
        self.transport.write(parts if method == "HEAD" or not body else parts + body)
        self.server_state.total_requests += 1
        if not keep_alive:
            self.transport.close()
        else:
            self._idle_since = _Sweeper.now


class _Answers:
    """Responses of the fast path waiting for their clicks to be durable.

    A spool write costs about 2 µs whatever its size, so rather than one per click, the
    clicks of every request parsed in one turn of the event loop are written at once (at the
    end of the turn, or every `BATCH` requests so that no answer waits long), and only then
    are their responses sent. One per uvicorn server (each runs on one event loop).
    """

    BATCH = 16

    def __init__(self, loop: Any, sync: Any) -> None:
        self.loop = loop
        self.sync = sync
        self.pending: list[tuple[RedirectProtocol, bytes, bytes, str, bool]] = []
        self.scheduled = False

    @classmethod
    def of(cls, protocol: RedirectProtocol) -> _Answers:
        """Return the server's instance (made on its first connection)."""
        state = protocol.server_state
        answers: _Answers | None = getattr(state, "clicktrail_answers", None)
        if answers is None:
            assert protocol.redirector is not None
            answers = cls(protocol.loop, protocol.redirector.sync)
            state.clicktrail_answers = answers  # type: ignore[attr-defined]
        return answers

    def add(
        self, protocol: RedirectProtocol, head: bytes, body: bytes, method: str, keep_alive: bool
    ) -> None:
        """Send this response once the click log is synced (soon, in this turn)."""
        self.pending.append((protocol, head, body, method, keep_alive))
        if len(self.pending) >= self.BATCH:
            self.flush()
        elif not self.scheduled:
            self.scheduled = True
            self.loop.call_soon(self.flush)

    def flush(self) -> None:
        """Sync the click log once, then send every pending response."""
        self.scheduled = False
        pending, self.pending = self.pending, []
        if not pending:
            return
        try:
            self.sync()
        except Exception:
            # Not durable: no redirect for them (the links are fine; the client retries).
            log.exception("could not write clicks to the spool")
            for protocol, _head, _body, method, keep_alive in pending:
                if not protocol.transport.is_closing():
                    protocol._write(_UNAVAILABLE, UNAVAILABLE_BODY, method, keep_alive)
            return
        for protocol, head, body, method, keep_alive in pending:
            if protocol.transport.is_closing():  # the client left; its click still counts
                continue
            try:
                protocol._write(head, body, method, keep_alive)
            except Exception:  # one broken connection must not strand the others' answers
                log.exception("writing a redirect failed")
                protocol.transport.close()


class _Sweeper:
    """Closes connections left idle after a fast response for longer than uvicorn's
    keep-alive timeout; checks every second, so the timeout is kept within a second."""

    now = 0.0  # loop time, renewed each second: cheap to read on every response
    _watched: ClassVar[dict[int, tuple[Any, set[Any]]]] = {}

    @classmethod
    def watch(cls, protocol: RedirectProtocol) -> None:
        key = id(protocol.server_state)
        if key not in cls._watched:
            cls._watched[key] = (protocol.loop, protocol.connections)
            cls.now = protocol.loop.time()
            protocol.loop.call_later(1.0, cls._sweep, key)

    @classmethod
    def _sweep(cls, key: int) -> None:
        loop, connections = cls._watched[key]
        cls.now = now = loop.time()
        for conn in list(connections):
            since = getattr(conn, "_idle_since", None)
            if since is not None and now - since > conn.timeout_keep_alive:
                conn._idle_since = None
                conn.timeout_keep_alive_handler()
        loop.call_later(1.0, cls._sweep, key)
