"""The world of the provider tests: a workspace in a container on the test database, the API
called in process with its lifespan, and the CLI run as a process."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from provider_fakes import ACCOUNT_SID, AUTH_TOKEN

from clicktrail.bootstrap import Container
from clicktrail.domain.models import Workspace
from clicktrail.services import providers
from clicktrail.services.providers import ProviderConfig
from factories import NOW_US

HOST = "sms.example.com"
CLICKTRAIL = str(Path(sys.executable).with_name("clicktrail"))


@dataclass
class Env:
    """A workspace (with a domain and an API key) in a container on the test database."""

    container: Container
    ws: Workspace
    key: str
    tmp: Path
    database_url: str

    @property
    def store(self) -> Any:
        return self.container.store

    def add_provider(self, name: str, kind: str, **options: Any) -> ProviderConfig:
        return providers.add_provider(
            self.container.provider_repo, self.container.provider_kinds, self.ws,
            name=name, kind=kind, options=options, now_us=NOW_US,
        )  # fmt: skip

    def call(self, method: str, path: str, key: str | None = "", **kw: Any) -> httpx.Response:
        """One request through the whole app (lifespan included); `key` '' means ours, None
        sends none."""
        app = self.container.web_app()

        async def main() -> httpx.Response:
            to_app: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
            from_app: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
            task = asyncio.create_task(
                app({"type": "lifespan", "asgi": {"version": "3.0"}}, to_app.get, from_app.put)
            )
            await to_app.put({"type": "lifespan.startup"})
            assert (await from_app.get())["type"] == "lifespan.startup.complete"
            try:
                transport = httpx.ASGITransport(app=app, client=("203.0.113.5", 4242))
                async with httpx.AsyncClient(transport=transport, base_url=f"http://{HOST}") as c:
                    headers = dict(kw.pop("headers", {}))
                    if key is not None:
                        headers["Authorization"] = f"Bearer {key or self.key}"
                    return await c.request(method, path, headers=headers, **kw)
            finally:
                await to_app.put({"type": "lifespan.shutdown"})
                assert (await from_app.get())["type"] == "lifespan.shutdown.complete"
                await task

        return asyncio.run(main())

    def cli(
        self, *args: str, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run the `clicktrail` command on this database."""
        return subprocess.run(
            [CLICKTRAIL, *args],
            cwd=self.tmp,
            env={
                "PATH": os.environ.get("PATH", ""),
                "HOME": str(self.tmp),
                "CLICKTRAIL_DATABASE_URL": self.database_url,
                "CLICKTRAIL_DATA_DIR": str(self.tmp / "data"),
                "CLICKTRAIL_WORKSPACE": self.ws.slug,
                "NO_COLOR": "1",
                "TERM": "dumb",
                "COLUMNS": "200",
                **(env or {}),
            },
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )


def problem(r: httpx.Response, status: int, field: str | None = None) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = r.json()
    assert body["status"] == status
    if field is not None:
        assert body["field"] == field, body
    return body


TWILIO_OPTIONS = {"account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN, "from": "+15005550006"}


class Served:
    """clicktrail served by uvicorn on a thread of this process, on a free port of 127.0.0.1."""

    def __init__(self, container: Container) -> None:
        import socket
        import threading

        import uvicorn

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = int(sock.getsockname()[1])
        config = uvicorn.Config(container.web_app(), host="127.0.0.1", port=self.port,
                                log_level="warning", lifespan="on")  # fmt: skip
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Served:
        import time

        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.02)
        return self

    def __exit__(self, *_exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(20)
