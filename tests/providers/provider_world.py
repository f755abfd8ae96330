"""The world of the provider tests: a workspace in a container on the test database, the API
called in process with its lifespan, and the CLI run as a process."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from provider_fakes import ACCOUNT_SID, AUTH_TOKEN, LOCAL_SETTINGS

from clicktrail.bootstrap import Container
from clicktrail.domain.models import Workspace
from clicktrail.services import providers
from clicktrail.services.providers import ProviderConfig
from factories import NOW_US, PYTHONPATH, Repos
from served import ThreadServer, in_process

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
        return Repos.on(self.container.engine)

    def add_provider(self, name: str, kind: str, **options: Any) -> ProviderConfig:
        """Configure a provider as the operator does (``${CLICKTRAIL_PROVIDER_…}`` allowed)."""
        return providers.add_provider(
            self.container.provider_repo, self.container.provider_kinds, self.ws,
            name=name, kind=kind, options=options, now_us=NOW_US,
            env_prefix=providers.DEFAULT_ENV_PREFIX,
        )  # fmt: skip

    def call(self, method: str, path: str, key: str | None = "", **kw: Any) -> httpx.Response:
        """One request through the whole app (lifespan included); `key` '' means ours, None
        sends none."""

        async def use(c: httpx.AsyncClient) -> httpx.Response:
            headers = dict(kw.pop("headers", {}))
            if key is not None:
                headers["Authorization"] = f"Bearer {key or self.key}"
            return await c.request(method, path, headers=headers, **kw)

        return in_process(self.container, HOST, use)

    def cli(
        self, *args: str, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run the `clicktrail` command on this database."""
        return subprocess.run(
            [CLICKTRAIL, *args],
            cwd=self.tmp,
            env={
                "PATH": os.environ.get("PATH", ""),
                **PYTHONPATH,
                "HOME": str(self.tmp),
                "CLICKTRAIL_DATABASE_URL": self.database_url,
                "CLICKTRAIL_DATA_DIR": str(self.tmp / "data"),
                "CLICKTRAIL_WORKSPACE": self.ws.slug,
                "NO_COLOR": "1",
                "TERM": "dumb",
                "COLUMNS": "200",
                **LOCAL_SETTINGS,
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


Served = ThreadServer  # clicktrail on a uvicorn thread, real HTTP on 127.0.0.1
