"""Requests the server sends on a tenant's behalf (SMS provider APIs, later webhooks): where
they may go.

A workspace names the URL of its provider, so without a rule any API key could make the server
call its own loopback services, its private network or its cloud's metadata endpoint (SSRF).
The rule, `OutboundPolicy`:

* https only, unless the operator allows plain http (``outbound_allow_http``);
* never an address `domain.network.forbidden_reason` refuses (loopback, private, link-local
  and metadata, CGNAT, multicast, reserved, and the IPv6 forms that embed those), unless it is
  in the operator's ``outbound_allow_networks``.

It is checked twice. When a provider is configured (`check_url`, a 422 naming the option): the
scheme and a host written as an address (``127.1``, ``2130706433``, ``[::ffff:127.0.0.1]``,
``localhost``). And on every connection (`httpx_transport`, `requests_adapter`): the host is
resolved, every address it resolves to is checked, and the socket is opened to a checked
address, so a DNS answer that changes between the check and the connection (rebinding) cannot
slip through; TLS still verifies the certificate for the name in the URL. A redirect opens a new
connection and is checked like the first (the HTTP provider does not follow redirects at all).
Requests go direct: environment proxies (``HTTPS_PROXY``) are not used, since a proxy would
make the connection for us, out of reach of the check.
"""

from __future__ import annotations

import functools
import ipaddress
import socket
import ssl
import threading
import typing
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpcore
import httpx
import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import NameResolutionError, NewConnectionError

from clicktrail.domain.errors import InvalidInput
from clicktrail.domain.network import Network, forbidden_reason, literal_address

Resolver = Callable[[str, int], list[str]]


class ForbiddenDestination(InvalidInput):
    """The server may not send this request: a plain-http URL, or a host that is (or resolves
    to) an address the outbound policy refuses. Nothing was sent."""


def system_resolver(host: str, port: int) -> list[str]:
    """Return the addresses `host` resolves to (the system's resolver). Raises
    `socket.gaierror` when it resolves to nothing."""
    found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in found))


@dataclass(frozen=True)
class OutboundPolicy:
    """Where the server may send requests: `allow_networks` and `allow_http` are the operator's
    exceptions to the rule of the module docstring; `resolver` turns a name into addresses."""

    allow_networks: tuple[Network, ...] = ()
    allow_http: bool = False
    resolver: Resolver = system_resolver

    def check_url(self, url: str, field: str) -> str:
        """Return `url` if it may be a destination as far as can be told without DNS: its
        scheme, and its host when the host is an address. Raises `InvalidInput` naming
        `field`."""
        parts = urlsplit(url)
        if parts.scheme != "https" and not (parts.scheme == "http" and self.allow_http):
            raise InvalidInput(
                f"{field}: {url!r} must be an https URL (plain http only where the operator "
                "allows it: outbound_allow_http)",
                field=field,
            )
        why = self._refused_host(parts.hostname or "")
        if why:
            raise InvalidInput(f"{field}: {why}", field=field)
        return url

    def check_scheme(self, scheme: str, url: str) -> None:
        """Raise `ForbiddenDestination` unless requests to `url` (scheme `scheme`) may go."""
        if scheme != "https" and not (scheme == "http" and self.allow_http):
            raise ForbiddenDestination(
                f"refused to send to {url}: only https is allowed (outbound_allow_http)",
                field="url",
            )

    def addresses(self, host: str, port: int) -> list[str]:
        """Return the addresses to connect to for `host`, each one checked.

        Raises `ForbiddenDestination` when any address the host resolves to is refused (a name
        that also points at loopback is not trusted for its other addresses), `socket.gaierror`
        when it resolves to nothing.
        """
        literal = literal_address(host)
        found = [str(literal)] if literal is not None else self.resolver(host, port)
        for text in found:
            why = forbidden_reason(ipaddress.ip_address(text.split("%", 1)[0]), self.allow_networks)
            if why:
                raise ForbiddenDestination(
                    f"refused to connect to {host} ({text}): a {why} address; the operator "
                    "can allow a network with outbound_allow_networks",
                    field="url",
                )
        return found

    def _refused_host(self, host: str) -> str | None:
        literal = literal_address(host)
        if literal is None:
            return None if host else "the URL has no host"
        why = forbidden_reason(literal, self.allow_networks)
        if why is None:
            return None
        return (
            f"{host} is a {why} address; the server does not send requests there unless the "
            "operator allows the network (outbound_allow_networks)"
        )

    # -- enforcement at connection time

    def httpx_transport(self) -> httpx.BaseTransport:
        """Return an httpx transport that applies this policy to every request and connection
        (certificates verified, environment proxies never used)."""
        return _PolicyTransport(self)

    def requests_adapter(self) -> HTTPAdapter:
        """Return a `requests` adapter that applies this policy to every request and connection
        (mount it on ``http://`` and ``https://``)."""
        return _PolicyAdapter(self)


# -- httpx: a network backend that resolves, checks, then connects to the checked address ----


class _PolicyBackend(httpcore.NetworkBackend):
    def __init__(self, policy: OutboundPolicy) -> None:
        self.policy = policy
        self.inner = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        try:
            addresses = self.policy.addresses(host, port)
        except socket.gaierror as exc:
            raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from exc
        last: Exception | None = None
        for address in addresses:
            try:
                # httpcore keeps the URL's host for TLS (SNI, certificate) and the Host header.
                return self.inner.connect_tcp(address, port, timeout, local_address, socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last = exc
        assert last is not None
        raise last

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        raise ForbiddenDestination("refused to connect to a unix socket", field="url")

    def sleep(self, seconds: float) -> None:
        self.inner.sleep(seconds)


@functools.cache
def _tls_context() -> ssl.SSLContext:
    # Loading the CA bundle takes about 45 ms; a sender builds a transport per batch, so the
    # context (thread-safe once built) is made once per process.
    return httpx.create_ssl_context(trust_env=False)


class _PolicyTransport(httpx.HTTPTransport):
    def __init__(self, policy: OutboundPolicy) -> None:
        context = _tls_context()
        super().__init__(verify=context, trust_env=False)
        self.policy = policy
        # httpx builds its connection pool without a way to pass a network backend: build the
        # same pool with ours (httpx's `_pool` is what `handle_request` sends through).
        self._pool = httpcore.ConnectionPool(
            ssl_context=context, network_backend=_PolicyBackend(policy)
        )

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.policy.check_scheme(request.url.scheme, str(request.url.copy_with(query=None)))
        return super().handle_request(request)


# -- requests (the Twilio SDK): connections that resolve, check, then connect ----------------


class _GuardedConnection(HTTPConnection):
    """A urllib3 connection that resolves its host through `policy`, checks every address and
    connects to a checked one (TLS keeps using ``self.host``: SNI, certificate)."""

    policy: OutboundPolicy = OutboundPolicy()

    def _new_conn(self) -> socket.socket:
        host = self._dns_host
        try:
            addresses = self.policy.addresses(host, self.port)
        except socket.gaierror as exc:
            raise NameResolutionError(self.host, self, exc) from exc
        last: NewConnectionError | None = None
        try:
            for address in addresses:
                self._dns_host = address
                try:
                    return super()._new_conn()
                except NewConnectionError as exc:
                    last = exc
        finally:
            self._dns_host = host
        assert last is not None
        raise last


class _GuardedTlsConnection(_GuardedConnection, HTTPSConnection):
    pass


class _PolicyAdapter(HTTPAdapter):
    def __init__(self, policy: OutboundPolicy) -> None:
        self.policy = policy
        super().__init__()

    def init_poolmanager(self, *args: typing.Any, **kwargs: typing.Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        http = type("PolicyConnection", (_GuardedConnection,), {"policy": self.policy})
        https = type("PolicyTlsConnection", (_GuardedTlsConnection,), {"policy": self.policy})
        self.poolmanager.pool_classes_by_scheme = {
            "http": type("GuardedPool", (HTTPConnectionPool,), {"ConnectionCls": http}),
            "https": type("GuardedTlsPool", (HTTPSConnectionPool,), {"ConnectionCls": https}),
        }

    def send(
        self, request: requests.PreparedRequest, *args: typing.Any, **kwargs: typing.Any
    ) -> requests.Response:
        url = request.url or ""
        self.policy.check_scheme(urlsplit(url).scheme, url.split("?", 1)[0])
        return super().send(request, *args, **kwargs)


def policy_session(policy: OutboundPolicy, session: requests.Session) -> requests.Session:
    """Return `session` with `policy` mounted for every URL and environment proxies off."""
    session.trust_env = False
    adapter = policy.requests_adapter()
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


# -- webhooks: one POST, its status and the start of its answer --------------------------------


class WebhookPoster:
    """Posts webhook requests under an `OutboundPolicy` (services/deliveries.py's `Send`).

    One pooled httpx client per thread (connections to a receiver are reused); redirects are
    not followed; at most `MAX_RESPONSE` bytes of an answer are read.
    """

    MAX_RESPONSE = 1024

    def __init__(self, policy: OutboundPolicy) -> None:
        self.policy = policy
        self._local = threading.local()

    def _client(self) -> httpx.Client:
        client: httpx.Client | None = getattr(self._local, "client", None)
        if client is None:
            client = httpx.Client(transport=self.policy.httpx_transport(), follow_redirects=False)
            self._local.client = client
        return client

    def __call__(
        self, url: str, headers: typing.Mapping[str, str], body: bytes, timeout: float
    ) -> tuple[int | None, str]:
        """POST `body` to `url`; return (status, the answer's first bytes as text) or (None,
        why there is no answer: refused by the policy, timeout, connection error)."""
        try:
            with self._client().stream(
                "POST", url, headers=dict(headers), content=body, timeout=timeout
            ) as r:
                got = b""
                for chunk in r.iter_raw():
                    got += chunk
                    if len(got) >= self.MAX_RESPONSE:
                        break
                return r.status_code, got[: self.MAX_RESPONSE].decode("utf-8", "replace")
        except ForbiddenDestination as exc:
            return None, str(exc)
        except httpx.TimeoutException:
            return None, f"no answer within {timeout:g} s"
        except httpx.HTTPError as exc:
            return None, f"{type(exc).__name__}: {exc}"
