"""Local stand-ins for SMS providers: real HTTP servers on 127.0.0.1, each on a thread.

`FakeTwilio` speaks the part of Twilio's Messages API that clicktrail uses, as documented:
``POST/GET /2010-04-01/Accounts/{AccountSid}/Messages.json`` with basic auth (account SID and
auth token), form-encoded creates, JSON message resources, paged lists (newest first, with
``next_page_uri``) and error bodies ``{"code", "message", "more_info", "status"}``. Answers
can be injected for the next creates (429 with Retry-After, 500, 400…), and a create can be
made to store the message and then never answer (a lost response).

`FakeApi` records every request and answers from a queue (or a default answer): the generic
HTTP provider's presets are pointed at it.
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from twilio.request_validator import RequestValidator

from clicktrail.domain.network import parse_networks
from clicktrail.outbound import OutboundPolicy

ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
AUTH_TOKEN = "f" * 32
SERVICE_SID = "MG" + "abcdef0123456789" * 2
# The server sends nothing to loopback or over plain http unless the operator allows it
# (clicktrail.outbound): these fakes listen on 127.0.0.1, so the tests allow them, as an
# operator would allow an aggregator on their network.
LOCAL_NETWORKS = "127.0.0.0/8,::1"
LOCAL_POLICY = OutboundPolicy(parse_networks(LOCAL_NETWORKS), allow_http=True)
LOCAL_SETTINGS = {
    "CLICKTRAIL_OUTBOUND_ALLOW_NETWORKS": LOCAL_NETWORKS,
    "CLICKTRAIL_OUTBOUND_ALLOW_HTTP": "1",
}


@dataclass
class Answer:
    """An injected answer: status, JSON body, headers; `hang` stores the message (unless not
    `keep`) and then holds the connection without answering for that many seconds."""

    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    hang: float = 0.0
    keep: bool = True


@dataclass
class Seen:
    """A request the fake received."""

    method: str
    path: str
    query: dict[str, list[str]]
    form: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    def one(self, name: str) -> str | None:
        values = self.form.get(name)
        return values[-1] if values else None


class _Server(ThreadingHTTPServer):
    daemon_threads = True


class _Base:
    """A ThreadingHTTPServer on a free port of 127.0.0.1 running on a daemon thread."""

    def __init__(self, handler: Callable[[BaseHTTPRequestHandler], None]) -> None:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                handler(self)

            def do_POST(self) -> None:
                handler(self)

            def do_PUT(self) -> None:
                handler(self)

            def log_message(self, *_args: Any) -> None:
                pass

        self._outer = outer
        self.server = _Server(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.seen: list[Seen] = []
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Any:
        self.thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)

    def _read(self, h: BaseHTTPRequestHandler) -> Seen:
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length) if length else b""
        parts = urlsplit(h.path)
        kind = (h.headers.get("Content-Type") or "").split(";")[0]
        form = (
            parse_qs(body.decode(), keep_blank_values=True)
            if kind == "application/x-www-form-urlencoded"
            else {}
        )
        seen = Seen(
            h.command, parts.path, parse_qs(parts.query, keep_blank_values=True), form,
            {k.lower(): v for k, v in h.headers.items()}, body,
        )  # fmt: skip
        with self.lock:
            self.seen.append(seen)
        return seen

    @staticmethod
    def _reply(h: BaseHTTPRequestHandler, answer: Answer) -> None:
        data = b"" if answer.body is None else json.dumps(answer.body).encode()
        try:
            h.send_response(answer.status)
            h.send_header("Content-Type", "application/json")
            h.send_header("Content-Length", str(len(data)))
            for k, v in answer.headers.items():
                h.send_header(k, v)
            h.end_headers()
            h.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a timeout test)


class FakeTwilio(_Base):
    """Twilio's Messages API for one account (see the module docstring)."""

    def __init__(self, account_sid: str = ACCOUNT_SID, auth_token: str = AUTH_TOKEN) -> None:
        super().__init__(self._handle)
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.messages: list[dict[str, Any]] = []  # oldest first
        self.answers: list[Answer] = []

    @property
    def base(self) -> str:
        return f"/2010-04-01/Accounts/{self.account_sid}/Messages.json"

    def inject(self, *answers: Answer) -> None:
        """Answer the next creates with these, in order."""
        with self.lock:
            self.answers.extend(answers)

    def error(self, status: int, code: int, message: str) -> Answer:
        """Twilio's error body."""
        return Answer(status, {"code": code, "message": message, "status": status,
                               "more_info": f"https://www.twilio.com/docs/errors/{code}"})  # fmt: skip

    def add_message(
        self, to: str, body: str, *, from_: str = "+15005550006", created: datetime | None = None,
        status: str = "sent", service: str | None = None, direction: str = "outbound-api",
    ) -> dict[str, Any]:  # fmt: skip
        """Store a message as if it had been created earlier (for reconcile tests)."""
        msg = self._resource(to, body, from_, service, None, created or datetime.now(UTC))
        msg["status"] = status
        msg["direction"] = direction
        with self.lock:
            self.messages.append(msg)
        return msg

    def creates(self) -> list[Seen]:
        """The create requests received."""
        return [s for s in self.seen if s.method == "POST"]

    def _resource(self, to: str, body: str, from_: str | None, service: str | None,
                  callback: str | None, created: datetime) -> dict[str, Any]:  # fmt: skip
        sid = "SM" + secrets.token_hex(16)
        stamp = format_datetime(created.astimezone(UTC))
        return {
            "sid": sid, "account_sid": self.account_sid, "to": to, "from": from_,
            "messaging_service_sid": service, "body": body, "status": "queued",
            "direction": "outbound-api", "num_segments": "1", "num_media": "0",
            "date_created": stamp, "date_updated": stamp, "date_sent": None,
            "error_code": None, "error_message": None, "price": None, "price_unit": "USD",
            "api_version": "2010-04-01", "uri": f"{self.base[:-5]}/{sid}.json",
            "subresource_uris": {}, "status_callback": callback,
        }  # fmt: skip

    def _authorized(self, h: BaseHTTPRequestHandler) -> bool:
        expected = base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        return h.headers.get("Authorization") == f"Basic {expected}"

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        seen = self._read(h)
        if seen.path != self.base:
            self._reply(h, self.error(404, 20404, "The requested resource was not found"))
            return
        if not self._authorized(h):
            self._reply(h, self.error(401, 20003, "Authenticate"))
            return
        if seen.method == "GET":
            self._reply(h, Answer(200, self._page(seen)))
            return
        with self.lock:
            answer = self.answers.pop(0) if self.answers else None
        if answer is not None and not answer.hang:
            self._reply(h, answer)
            return
        to, body = seen.one("To"), seen.one("Body")
        if not to:
            self._reply(h, self.error(400, 21604, "A 'To' phone number is required."))
            return
        if not (seen.one("From") or seen.one("MessagingServiceSid")):
            self._reply(h, self.error(400, 21603, "A 'From' phone number is required."))
            return
        msg = self._resource(to, body or "", seen.one("From"), seen.one("MessagingServiceSid"),
                             seen.one("StatusCallback"), datetime.now(UTC))  # fmt: skip
        if answer is None or answer.keep:
            with self.lock:
                self.messages.append(msg)
        if answer is not None:  # a lost answer: the message exists, the client hears nothing
            time.sleep(answer.hang)
            return
        self._reply(h, Answer(201, msg))

    def _page(self, seen: Seen) -> dict[str, Any]:
        q = {k: v[-1] for k, v in seen.query.items()}
        size = int(q.get("PageSize", "50"))
        page = int(q.get("Page", "0"))
        with self.lock:
            found = [
                m for m in reversed(self.messages)  # newest first, as Twilio lists
                if ("To" not in q or m["to"] == q["To"]) and ("From" not in q or m["from"] == q["From"])
            ]  # fmt: skip
        chunk = found[page * size : (page + 1) * size]
        more = (page + 1) * size < len(found)
        query = urlencode({k: v for k, v in q.items() if k not in ("Page", "PageToken")})
        return {
            "messages": chunk,
            "page": page,
            "page_size": size,
            "start": page * size,
            "end": page * size + len(chunk) - 1,
            "uri": f"{self.base}?{query}&Page={page}",
            "first_page_uri": f"{self.base}?{query}&Page=0",
            "previous_page_uri": None,
            "next_page_uri": f"{self.base}?{query}&Page={page + 1}" if more else None,
        }


class FakeApi(_Base):
    """An SMS API that records requests and answers from a queue (else `default`)."""

    def __init__(self, default: Callable[[Seen], Answer]) -> None:
        super().__init__(self._handle)
        self.default = default
        self.answers: list[Answer] = []

    def inject(self, *answers: Answer) -> None:
        with self.lock:
            self.answers.extend(answers)

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        seen = self._read(h)
        with self.lock:
            answer = self.answers.pop(0) if self.answers else None
        if answer is not None and answer.hang:
            time.sleep(answer.hang)  # the client has given up by then
        self._reply(h, answer or self.default(seen))


def vonage_answer(seen: Seen) -> Answer:
    """Vonage's answer to an accepted SMS."""
    return Answer(200, {"message-count": "1", "messages": [{
        "to": seen.one("to"), "message-id": uuid.uuid4().hex[:16].upper(), "status": "0",
        "remaining-balance": "3.14", "message-price": "0.0333", "network": "23410",
    }]})  # fmt: skip


def plivo_answer(_seen: Seen) -> Answer:
    """Plivo's answer to an accepted message."""
    return Answer(202, {"message": "message(s) queued", "message_uuid": [str(uuid.uuid4())],
                        "api_id": str(uuid.uuid4())})  # fmt: skip


def twilio_signature(url: str, params: dict[str, str], token: str = AUTH_TOKEN) -> str:
    """The X-Twilio-Signature Twilio would send for a form post of `params` to `url`."""
    return str(RequestValidator(token).compute_signature(url, params))


def days_ago(n: float) -> datetime:
    return datetime.now(UTC) - timedelta(days=n)
