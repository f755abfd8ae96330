"""`clicktrail serve`: run the server (uvicorn, httptools, uvloop), in one or several processes.

With ``workers`` > 1 this process migrates the database and seeds the demo once, binds the port,
then supervises that many worker processes sharing the listening socket (uvicorn's
`Multiprocess`: the kernel hands each new connection to one of them). Every worker builds its
own app through `bootstrap.create_app` (its own pools, resolver cache and click log) and drains
its clicks on SIGTERM, which the supervisor forwards to each of them when it gets one.

Beside the server process(es), one jobs process (`clicktrail.jobs.process`, niced) classifies new
clicks and finalizes verdicts; it is stopped last, after a final pass over what the servers
drained. Short links are answered by `web.fastpath.RedirectProtocol` without an ASGI cycle.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import os
import socket
import ssl
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import uvicorn
from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors import Multiprocess

from clicktrail.bootstrap import (
    Container,
    configure_logging,
    create_app,
    tune_malloc,
)
from clicktrail.config import Settings
from clicktrail.domain.errors import Conflict, InvalidInput
from clicktrail.jobs.process import JobsProcess
from clicktrail.services import demo
from clicktrail.services.clock import now_us
from clicktrail.web.fastpath import RedirectProtocol


def run_server(settings: Settings, *, demo_mode: bool = False) -> None:
    """Check settings, migrate, optionally seed the demo, print where to go, and serve until
    Ctrl-C/SIGTERM, in `settings.workers` processes.

    Raises `InvalidInput` (before anything starts) for a bad worker count or TLS setting, and
    `Conflict` when the port is taken (`check_port`).
    """
    tls = tls_files(settings)
    settings.jobs_cpu_set()  # a bad CPU list stops serve before anything starts
    if settings.workers < 1:
        raise InvalidInput(f"workers must be at least 1, got {settings.workers}", field="workers")
    check_port(settings.host, settings.port)  # before the banner, its links and its key
    configure_logging(settings.log_level)
    tune_malloc()  # this process serves when workers == 1 (the others call create_app)
    container = Container(settings)
    container.engine  # noqa: B018 - building the engine migrates, once for every worker
    if demo_mode:
        info = demo.seed_demo(
            container, container.provider("outbox"), host=settings.host, port=settings.port,
            scheme="https" if tls else "http", clock=now_us,
        )  # fmt: skip
        _print_banner(container, info)
    options: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "loop": "uvloop" if sys.platform != "win32" else "asyncio",
        # uvicorn's httptools protocol, answering short links without an ASGI cycle.
        "http": RedirectProtocol,
        "lifespan": "on",
        "access_log": settings.access_log,
        "log_level": settings.log_level,
        "server_header": False,
        # clicktrail reads forwarding headers itself, only from `trusted_proxies`; uvicorn's
        # own handling would trust loopback peers by default and cost every request.
        "proxy_headers": False,
        "timeout_graceful_shutdown": 10,
        "ssl_certfile": tls[0] if tls else None,
        "ssl_keyfile": tls[1] if tls else None,
    }
    # Classification and verdict finalization run in a process of their own at a lower CPU
    # priority: they never hold the server's GIL, and on a busy core redirects come first.
    jobs = JobsProcess(settings)
    try:
        if settings.workers == 1:
            app = container.web_app(jobs_in_process=False)
            jobs.start()
            _Server(uvicorn.Config(app, **options), before_exit=jobs.stop).run()
            return
        container.dispose()  # the workers open their own connections
        jobs.start()
        # A picklable factory (spawned workers unpickle it) carrying this process's settings,
        # command-line options included; the schema is already migrated.
        factory = functools.partial(
            create_app, settings, run_migrations=False, jobs_in_process=False
        )
        config = uvicorn.Config(factory, factory=True, workers=settings.workers, **options)
        supervisor = Multiprocess(config, sockets=[config.bind_socket()])
        supervisor.run()
        if any(p.exitcode == STARTUP_FAILURE for p in supervisor.processes):
            # A worker could not start (see its log); uvicorn stopped the others.
            raise SystemExit(STARTUP_FAILURE)
    finally:
        jobs.stop()
        container.dispose()


class _Server(uvicorn.Server):
    """uvicorn's server, running `before_exit` once it has shut down and before it re-raises
    the signal that stopped it (which ends this process with the signal's default action)."""

    def __init__(self, config: uvicorn.Config, before_exit: Callable[[], None]) -> None:
        super().__init__(config)
        self.before_exit = before_exit

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        with super().capture_signals():
            try:
                yield
            finally:
                self.before_exit()


def tls_files(settings: Settings) -> tuple[str, str] | None:
    """Return (certificate file, key file) when HTTPS is configured, None for plain HTTP.

    Raises `InvalidInput` naming the setting when only one is set, a file is missing or
    unreadable, or the pair does not load (not PEM, key not matching, key encrypted).
    """
    cert, key = settings.tls_certfile, settings.tls_keyfile
    if not cert and not key:
        return None
    if not cert or not key:
        given, missing = (
            ("tls_certfile", "tls_keyfile") if cert else ("tls_keyfile", "tls_certfile")
        )
        raise InvalidInput(
            f"{given} is set but {missing} is not (CLICKTRAIL_{missing.upper()}): "
            "set both to serve HTTPS, or neither",
            field=missing,
        )
    for name, value in (("tls_certfile", cert), ("tls_keyfile", key)):
        if not os.path.isfile(value):
            raise InvalidInput(f"{name}: {value} does not exist or is not a file", field=name)
        if not os.access(value, os.R_OK):
            raise InvalidInput(f"{name}: {value} is not readable by this user", field=name)
    # Load the pair now: uvicorn would fail later with a traceback (per worker). The password
    # callback keeps OpenSSL from prompting on the terminal for an encrypted key.
    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(
            cert, key, password=lambda: b""
        )
    except ssl.SSLError as exc:
        raise InvalidInput(
            f"tls_certfile {cert} and tls_keyfile {key} do not load as a PEM certificate chain "
            f"and its unencrypted private key: {exc.reason or exc}",
            field="tls_certfile",
        ) from None
    return cert, key


def check_port(host: str, port: int) -> None:
    """Check that the server can listen on `host`:`port`, before anything is printed.

    Raises `Conflict` (field ``port``) when the port is taken or not allowed, naming a free
    port and how to choose it; `InvalidInput` (field ``host``) when `host` is no address of
    this machine.
    """
    try:
        _bind_test(host, port)
    except socket.gaierror as exc:
        raise InvalidInput(f"host {host!r}: {exc.strerror}", field="host") from None
    except OSError as exc:
        raise _listen_error(host, port, exc) from None


def _bind_test(host: str, port: int) -> None:
    # Bind a socket to every address of `host` as uvicorn will (SO_REUSEADDR, so a port with
    # connections in TIME_WAIT is free), then close it. Raises OSError.
    for family, kind, proto, _name, address in socket.getaddrinfo(
        host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    ):
        with socket.socket(family, kind, proto) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(address)


def _listen_error(host: str, port: int, exc: OSError) -> InvalidInput | Conflict:
    if exc.errno == errno.EADDRNOTAVAIL:
        return InvalidInput(
            f"host {host!r} is not an address of this machine: choose one with --host or "
            "CLICKTRAIL_HOST (127.0.0.1 for this machine only, 0.0.0.0 for every interface)",
            field="host",
        )
    why = (
        "is already in use (another clicktrail, or another program, is listening there)"
        if exc.errno == errno.EADDRINUSE
        else f"cannot be used: {exc.strerror}"
    )
    free = next((p for p in range(port + 1, min(port + 50, 65536)) if _free(host, p)), None)
    other = free or port + 1
    return Conflict(
        f"port {port} on {host} {why}. Stop that program, or pick another port"
        + (f", e.g. {free} (free now)" if free else "")
        + f": `clicktrail serve --port {other}`, or `CLICKTRAIL_PORT={other} make run`",
        field="port",
    )


def _free(host: str, port: int) -> bool:
    try:
        _bind_test(host, port)
    except OSError:
        return False
    return True


def _print_banner(container: Container, info: demo.DemoInfo) -> None:
    s = container.settings
    scheme = "https" if s.tls_certfile else "http"
    base = f"{scheme}://{s.host}:{s.port}"
    lines = ["", "clicktrail is starting with a DEMO workspace (sample data, fictional numbers)."]
    if not info.workspace.is_demo:
        lines.append(f"The database already has workspaces; showing {info.workspace.slug!r}.")
    else:
        campaign = container.campaigns.find_campaign(info.workspace.id, info.campaign_slug)
        if campaign is not None:
            lines += [
                f"  database     {s.database_label}",
                f"  outbox       {s.resolved_outbox_path}  (the demo's 'sent' messages)",
                f"  health       {base}/healthz",
                f"  API docs     {base}/docs",
                "",
                "Try a tracked link (each recipient has their own; it 302s to the real URL):",
            ]
            for token, phone, dest in container.messages.sample_links(campaign.id, 2):
                lines.append(f"  {base}/c/{token}    ({phone} → {dest})")
            key, key_file, minted = demo_key(container, info)
            lines += [
                "",
                "Open one in a browser on this machine: that is a counted click. `curl -i` shows the",
                "302 too, but curl is not a person: the report lists its request as filtered (bot),",
                "not as a click.",
                "",
                "Then read the report:",
                f"  .venv/bin/clicktrail report {info.campaign_slug} -w demo",
                f"  curl -H 'Authorization: Bearer {key}' {base}/v1/campaigns/{info.campaign_slug}/report",
                f"  or open {base}/dashboard and sign in with the API key {key}",
                f"  ({'new key, kept' if minted else 'the same key as before, kept'} in {key_file}"
                " for the next start)",
                "",
                "Press Ctrl-C to stop. Your own data: see README (workspace create, domain add, …).",
            ]
    print("\n".join(lines), flush=True)


DEMO_KEY_FILE = "demo-api-key"


def demo_key(container: Container, info: demo.DemoInfo) -> tuple[str, Path, bool]:
    """Return (the demo workspace's API key, the file that keeps it, whether it is new).

    The key in `<data_dir>/demo-api-key` (mode 0600) is reused while it is an active key of
    the demo workspace; otherwise (first start, new database, key revoked) a new one is made
    and written there.
    """
    path = Path(container.settings.data_dir) / DEMO_KEY_FILE
    try:
        saved: str | None = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        saved = None
    key, minted = demo.demo_api_key(
        container.keys, info.workspace, saved, mint=lambda: container_key(container, info)
    )
    if minted:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as f:
            f.write(key + "\n")
        os.replace(tmp, path)
    return key, path, minted


def container_key(container: Container, info: demo.DemoInfo) -> str:
    """Create a fresh API key for the demo workspace (keys are stored hashed, never re-shown)."""
    from clicktrail.services.keys import create_key

    return create_key(container.keys, info.workspace, "demo (make run)", now_us()).secret
