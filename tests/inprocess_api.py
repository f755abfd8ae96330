"""The whole app in process (httpx ASGI transport, lifespan included) on SQLite and
PostgreSQL: a workspace with a short domain and an API key, helpers to read answers, and the
`api` fixture (imported by the conftest.py of the test folders that use it)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from clicktrail.bootstrap import Container
from clicktrail.config import load_settings
from clicktrail.domain.models import Workspace
from factories import Repos, make_api_key, make_domain, make_workspace
from served import in_process

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

        async def use(c: httpx.AsyncClient) -> list[httpx.Response]:
            out = []
            for method, path, kw in requests:
                kw = dict(kw)
                headers = dict(kw.pop("headers", {}))
                key = kw.pop("key", self.key)
                if key is not None:
                    headers["Authorization"] = f"Bearer {key}"
                out.append(await c.request(method, path, headers=headers, **kw))
            return out

        return in_process(self.container, HOST, use)


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


async def sign_in(c: httpx.AsyncClient, key: str) -> None:
    """Sign in to the dashboard with `key` through its login form."""
    form = await c.get("/dashboard/login")
    token = re.search(r'name="token" value="([^"]+)"', form.text)
    assert token is not None, form.text
    r = await c.post(
        "/dashboard/login", data={"key": key, "token": token[1], "next": "/dashboard/"}
    )
    assert r.status_code == 303 and "ct_session" in r.cookies, r.text


@pytest.fixture
def api(database_url: str, tmp_path: Path) -> Iterator[Api]:
    settings = load_settings(
        env={"CLICKTRAIL_DATABASE_URL": database_url, "CLICKTRAIL_DATA_DIR": str(tmp_path)}
    )
    container = Container(settings)
    ws = make_workspace(Repos.on(container.engine))
    make_domain(Repos.on(container.engine), ws, HOST)
    yield Api(container, ws, make_api_key(Repos.on(container.engine), ws))
    container.dispose()
