"""A real HTTP receiver for webhook tests: a threaded server on 127.0.0.1 that records every
request (headers as sent, body bytes) and answers from a script of statuses (200 once the
script runs out), optionally slowly."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks import Webhook


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def event(self) -> dict[str, Any]:
        out: dict[str, Any] = json.loads(self.body)
        return out

    def verify(self, secret: str) -> dict[str, Any]:
        """The body as the spec's library verifies it with `secret` (raises otherwise)."""
        out: dict[str, Any] = Webhook(secret).verify(self.body, self.headers)
        return out


@dataclass
class Receiver:
    statuses: list[int] = field(default_factory=list)  # answers in order, then 200
    delay: float = 0.0
    got: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def wait_for(self, n: int, timeout: float = 20.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        while len(self.got) < n and time.monotonic() < deadline:
            time.sleep(0.02)
        return list(self.got)


def serve() -> Iterator[Receiver]:
    """Run a receiver until the generator is closed (a fixture's body)."""
    rec = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            with rec.lock:
                rec.got.append(Received(self.path, dict(self.headers.items()), body))
                status = rec.statuses.pop(0) if rec.statuses else 200
            if rec.delay:
                time.sleep(rec.delay)
            self.send_response(status)
            self.send_header("content-length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *_args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    rec.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield rec
    finally:
        server.shutdown()
        server.server_close()
