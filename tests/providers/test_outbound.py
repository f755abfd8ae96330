"""The outbound policy on real connections (clicktrail.outbound), for both HTTP stacks the
server sends with (httpx: the HTTP provider, webhooks; requests: the Twilio SDK): every
connection is checked after DNS, redirects included, and a refused one sends nothing."""

from __future__ import annotations

import shutil
import ssl
import subprocess
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import requests

from clicktrail import outbound
from clicktrail.domain.network import parse_networks
from clicktrail.outbound import ForbiddenDestination, OutboundPolicy, policy_session


class Recorder:
    """An HTTP server on `host` that records paths and answers 200, or 302 to `redirect`."""

    def __init__(self, host: str, redirect: str | None = None) -> None:
        self.paths: list[str] = []
        self.hosts: list[str] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                owner.paths.append(self.path)
                owner.hosts.append(self.headers.get("Host", ""))
                self.send_response(302 if redirect else 200)
                if redirect:
                    self.send_header("Location", redirect)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer((host, 0), Handler)
        self.url = f"http://{host}:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def pair() -> Iterator[tuple[Recorder, Recorder]]:
    """An allowed server (127.0.0.1) that redirects to a forbidden one (127.0.0.2)."""
    inner = Recorder("127.0.0.2")
    outer = Recorder("127.0.0.1", redirect=inner.url + "/metadata")
    yield outer, inner
    outer.close()
    inner.close()


ONLY_OUTER = OutboundPolicy(parse_networks("127.0.0.1/32"), allow_http=True)


def via_httpx(policy: OutboundPolicy, url: str) -> int:
    with httpx.Client(transport=policy.httpx_transport(), follow_redirects=True) as c:
        return c.get(url).status_code


def via_requests(policy: OutboundPolicy, url: str) -> int:
    with policy_session(policy, requests.Session()) as s:
        return s.get(url, timeout=5).status_code


STACKS = [via_httpx, via_requests]


@pytest.mark.parametrize("get", STACKS)
def test_a_followed_redirect_to_a_forbidden_address_is_refused(
    pair: tuple[Recorder, Recorder], get: Callable[[OutboundPolicy, str], int]
) -> None:
    outer, inner = pair
    with pytest.raises(ForbiddenDestination, match=r"127\.0\.0\.2"):
        get(ONLY_OUTER, outer.url + "/start")
    assert outer.paths == ["/start"]
    assert inner.paths == []


@pytest.mark.parametrize("get", STACKS)
def test_the_socket_connects_to_the_address_that_was_checked(
    pair: tuple[Recorder, Recorder], get: Callable[[OutboundPolicy, str], int]
) -> None:
    """No second lookup between the check and the connection (DNS rebinding): the name below
    exists only in the policy's resolver, and the request reaches the address it answered, with
    the name kept in the Host header."""
    outer, inner = pair
    asked: list[str] = []

    def resolver(host: str, port: int) -> list[str]:
        asked.append(host)
        return ["127.0.0.1"]

    policy = OutboundPolicy(parse_networks("127.0.0.1/32"), allow_http=True, resolver=resolver)
    port = outer.url.rsplit(":", 1)[1]
    with pytest.raises(ForbiddenDestination, match=r"127\.0\.0\.2"):
        get(policy, f"http://only-in-the-resolver.test:{port}/start")  # then the redirect
    assert asked == ["only-in-the-resolver.test"]
    assert outer.paths == ["/start"]
    assert outer.hosts == [f"only-in-the-resolver.test:{port}"]
    assert inner.paths == []


@pytest.mark.parametrize("get", STACKS)
def test_plain_http_is_refused_before_any_connection(
    pair: tuple[Recorder, Recorder], get: Callable[[OutboundPolicy, str], int]
) -> None:
    outer, _ = pair
    strict = OutboundPolicy(parse_networks("127.0.0.0/8"))
    with pytest.raises(ForbiddenDestination, match="https"):
        get(strict, outer.url + "/x")
    assert outer.paths == []


@pytest.mark.parametrize("get", STACKS)
def test_the_allow_list_lets_requests_through(
    pair: tuple[Recorder, Recorder], get: Callable[[OutboundPolicy, str], int]
) -> None:
    outer, inner = pair
    both = OutboundPolicy(parse_networks("127.0.0.0/8"), allow_http=True)
    assert get(both, outer.url + "/go") == 200
    assert inner.paths == ["/metadata"]


# -- TLS: the connection goes to the checked address, the certificate is checked for the name --


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """An https server on 127.0.0.1 whose certificate names only api.tenant.test."""
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is not installed")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2",
         "-subj", "/CN=api.tenant.test", "-addext", "subjectAltName=DNS:api.tenant.test"],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    plain = Recorder("127.0.0.1")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    plain.server.socket = context.wrap_socket(plain.server.socket, server_side=True)
    yield plain.url.rsplit(":", 1)[1], cert
    plain.close()


def test_tls_verifies_the_name_of_the_url_on_the_checked_address(
    tls_server: tuple[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    port, cert = tls_server
    trust = ssl.create_default_context(cafile=str(cert))
    monkeypatch.setattr(outbound, "_tls_context", lambda: trust)
    policy = OutboundPolicy(
        parse_networks("127.0.0.1/32"), resolver=lambda _host, _port: ["127.0.0.1"]
    )
    with httpx.Client(transport=policy.httpx_transport()) as c:
        assert c.get(f"https://api.tenant.test:{port}/ok").status_code == 200
        # Same address, another name: the certificate does not match it.
        with pytest.raises(httpx.ConnectError, match="certificate"):
            c.get(f"https://other.tenant.test:{port}/no")


def test_tls_through_requests_keeps_the_name_too(tls_server: tuple[str, Path]) -> None:
    port, cert = tls_server
    policy = OutboundPolicy(
        parse_networks("127.0.0.1/32"), resolver=lambda _host, _port: ["127.0.0.1"]
    )
    with policy_session(policy, requests.Session()) as s:
        assert s.get(f"https://api.tenant.test:{port}/ok", verify=str(cert)).status_code == 200
        with pytest.raises(requests.exceptions.SSLError):
            s.get(f"https://other.tenant.test:{port}/no", verify=str(cert))
