"""The whole app in process (httpx ASGI transport, lifespan included) on SQLite and
PostgreSQL: a workspace with a short domain and an API key, helpers to read answers, and the
`api` fixture (imported by the conftest.py of the test folders that use it)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from clicktrail.bootstrap import Container
from clicktrail.config import load_settings
from clicktrail.domain.models import Workspace
from factories import make_api_key, make_domain, make_workspace

HOST = "sms.example.com"


@dataclass
class Api:
    container: Container
    ws: Workspace
    key: str

    def call(self, method: str, path: str, **kw: Any) -> httpx.Response:
        """One request through the whole app (lifespan included), with our key."""
        (r,) = self.calls([(method, path, kw)])
        return r

    def calls(self, requests: list[tuple[str, str, dict[str, Any]]]) -> list[httpx.Response]:
        """Requests in order through one app run (started and shut down around them)."""
        app = self.container.web_app()

        async def main() -> list[httpx.Response]:
            to_app: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
            from_app: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
            task = asyncio.create_task(
                app({"type": "lifespan", "asgi": {"version": "3.0"}}, to_app.get, from_app.put)
            )
            await to_app.put({"type": "lifespan.startup"})
            assert (await from_app.get())["type"] == "lifespan.startup.complete"
            out = []
            try:
                transport = httpx.ASGITransport(app=app, client=("203.0.113.5", 4242))
                async with httpx.AsyncClient(transport=transport, base_url=f"http://{HOST}") as c:
                    for method, path, kw in requests:
                        kw = dict(kw)
                        headers = dict(kw.pop("headers", {}))
                        key = kw.pop("key", self.key)
                        if key is not None:
                            headers["Authorization"] = f"Bearer {key}"
                        out.append(await c.request(method, path, headers=headers, **kw))
            finally:
                await to_app.put({"type": "lifespan.shutdown"})
                assert (await from_app.get())["type"] == "lifespan.shutdown.complete"
                await task
            return out

        return asyncio.run(main())


def ok(r: httpx.Response, status: int = 200) -> Any:
    assert r.status_code == status, r.text
    return r.json()


def problem(r: httpx.Response, status: int, field: str | None = None) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = r.json()
    if field is not None:
        assert body["field"] == field, body
    return body


@pytest.fixture
def api(database_url: str, tmp_path: Path) -> Iterator[Api]:
    settings = load_settings(
        env={"CLICKTRAIL_DATABASE_URL": database_url, "CLICKTRAIL_DATA_DIR": str(tmp_path)}
    )
    container = Container(settings)
    ws = make_workspace(container.store)
    make_domain(container.store, ws, HOST)
    yield Api(container, ws, make_api_key(container.store, ws))
    container.dispose()
