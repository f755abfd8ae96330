"""Helpers for end-to-end tests: run the real `clicktrail` CLI and server as processes."""

from __future__ import annotations

import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

CLI = [sys.executable, "-m", "clicktrail"]


def free_port() -> int:
    """Return a TCP port that was free a moment ago on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Env:
    """An isolated clicktrail installation: its database, data folder and environment."""

    database_url: str
    data_dir: Path

    @property
    def vars(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CLICKTRAIL_")}
        env.update(
            CLICKTRAIL_DATABASE_URL=self.database_url,
            CLICKTRAIL_DATA_DIR=str(self.data_dir),
            CLICKTRAIL_LOG_LEVEL="warning",
        )
        return env

    def cli(
        self,
        *args: str,
        check: bool = True,
        stdin: str | None = None,
        settings: dict[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run `clicktrail ARGS…` (`settings`: extra environment); with `check`, fail the test
        on a non-zero exit."""
        proc = subprocess.run(
            [*CLI, *args],
            env={**self.vars, **(settings or {})},
            capture_output=True,
            text=True,
            input=stdin,
            timeout=300,
        )
        if check and proc.returncode != 0:
            pytest.fail(f"clicktrail {' '.join(args)} exited {proc.returncode}:\n{proc.stderr}")
        return proc


class Server:
    """A `clicktrail serve` process on a free port.

    With `verify` (the context trusting its certificate) the server is expected to speak HTTPS:
    `base` is then an https URL and `verify` is what clients should pass to httpx.
    """

    def __init__(
        self,
        env: Env,
        *extra: str,
        settings: dict[str, str] | None = None,
        verify: ssl.SSLContext | None = None,
    ) -> None:
        self.port = free_port()
        self.base = f"{'https' if verify else 'http'}://127.0.0.1:{self.port}"
        self.verify: ssl.SSLContext | bool = verify or True
        self.log = env.data_dir / f"server-{self.port}.log"
        self._log = self.log.open("w")
        self.proc = subprocess.Popen(
            [*CLI, "serve", "--port", str(self.port), *extra],
            env={**env.vars, **(settings or {})},
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"server exited with {self.proc.returncode}:\n{self.log.read_text()}")
            try:
                r = httpx.get(self.base + "/healthz", timeout=1, verify=self.verify)
                if r.status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.1)
        self.kill()
        pytest.fail("server did not answer /healthz within 30 s")

    def stop(self) -> None:
        """Stop gracefully (SIGTERM); fail unless the server shut down cleanly."""
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=30)
        self._log.close()
        # uvicorn re-raises the signal after a clean shutdown, so -SIGTERM is a clean exit.
        log = self.log.read_text()
        assert code in (0, -signal.SIGTERM), log
        assert "Traceback" not in log, log

    def kill(self) -> None:
        """Kill with SIGKILL (no chance to flush anything)."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self._log.close()


@pytest.fixture
def env(database_url: str, tmp_path: Path) -> Env:
    """A clicktrail installation on the test database (SQLite and PostgreSQL in turn)."""
    return Env(database_url, tmp_path)


@pytest.fixture
def server_factory(env: Env) -> Iterator[type[Server]]:
    """Start servers with `server_factory(env)`; any left running are killed at the end."""
    started: list[Server] = []

    class _Tracked(Server):
        def __init__(
            self,
            e: Env,
            *extra: str,
            settings: dict[str, str] | None = None,
            verify: ssl.SSLContext | None = None,
        ) -> None:
            super().__init__(e, *extra, settings=settings, verify=verify)
            started.append(self)

    yield _Tracked
    for s in started:
        s.kill()


# -- a real browser: Debian's Chromium under Playwright (never a downloaded browser build) --------

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's Chromium under Playwright (never a downloaded browser build)."""
    ci = os.environ.get("CI", "").lower() in ("1", "true", "yes")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        if ci:
            pytest.fail("playwright is not installed (make test installs the dev dependencies)")
        pytest.skip("playwright is not installed: run `make test`")
    if not CHROMIUM.exists():
        if ci:
            pytest.fail(f"{CHROMIUM} is missing in CI (make test installs Debian's chromium)")
        pytest.skip(f"{CHROMIUM} is missing: `make test` installs it (apt-get install chromium)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield b
        b.close()
