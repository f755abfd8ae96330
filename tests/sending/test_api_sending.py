"""Sending jobs over the API (in process, lifespan included) and the CLI commands, on SQLite and
PostgreSQL: a send runs in the server's background; pause, resume and cancel reach it."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from clicktrail.bootstrap import Container
from clicktrail.config import load_settings
from clicktrail.domain.models import Campaign, Workspace
from factories import (
    PYTHONPATH,
    Repos,
    make_api_key,
    make_campaign,
    make_contacts,
    make_domain,
    make_workspace,
)

CLICKTRAIL = str(Path(sys.executable).with_name("clicktrail"))


@dataclass
class Api:
    container: Container
    ws: Workspace
    campaign: Campaign
    key: str
    tmp: Path
    database_url: str

    @property
    def base(self) -> str:
        return f"/v1/campaigns/{self.campaign.slug}"

    def call(self, method: str, path: str, key: str | None = "", **kw: Any) -> httpx.Response:
        """One request through the whole app, lifespan included."""
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
                transport = httpx.ASGITransport(app=app)
                async with httpx.AsyncClient(transport=transport, base_url="http://api") as c:
                    headers = (
                        {"Authorization": f"Bearer {key or self.key}"} if key is not None else {}
                    )
                    return await c.request(method, path, headers=headers, **kw)
            finally:
                await to_app.put({"type": "lifespan.shutdown"})
                assert (await from_app.get())["type"] == "lifespan.shutdown.complete"
                await task

        return asyncio.run(main())

    def outbox(self) -> Counter[str]:
        path = self.tmp / "outbox.jsonl"
        if not path.exists():
            return Counter()
        return Counter(json.loads(x)["to"] for x in path.read_text().splitlines())

    def until(self, state: str, timeout: float = 30) -> dict[str, Any]:
        """Poll GET …/send until the job is in `state` with no sender running."""
        deadline = time.monotonic() + timeout
        while True:
            body: dict[str, Any] = self.call("GET", f"{self.base}/send").json()
            if body["state"] == state and not body["running"]:
                return body
            assert time.monotonic() < deadline, body
            time.sleep(0.1)

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [CLICKTRAIL, *args],
            env={
                "PATH": os.environ.get("PATH", ""), **PYTHONPATH,
                "HOME": str(self.tmp),
                "CLICKTRAIL_DATABASE_URL": self.database_url,
                "CLICKTRAIL_DATA_DIR": str(self.tmp),
                "NO_COLOR": "1",
                "TERM": "dumb",
                "COLUMNS": "200",
            },
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip


@pytest.fixture
def api(database_url: str, tmp_path: Path) -> Iterator[Api]:
    container = Container(
        load_settings(env={"CLICKTRAIL_DATABASE_URL": database_url,
                           "CLICKTRAIL_DATA_DIR": str(tmp_path)})
    )  # fmt: skip
    store = Repos.on(container.engine)
    ws = make_workspace(store)
    make_domain(store, ws)
    make_contacts(store, ws, 15)
    cp = make_campaign(store, ws)
    yield Api(container, ws, cp, make_api_key(store, ws), tmp_path, database_url)
    container.sending.worker.stop()
    container.dispose()


def problem(r: httpx.Response, status: int, field: str | None = None) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = r.json()
    if field is not None:
        assert body.get("field") == field, body
    return body


def quiet_hours_away_from_now(zone: str) -> str:
    """Return a one-hour ``HH:MM-HH:MM`` window that starts 12 hours from now in `zone`.

    A fixed window ("21:00-08:00") made the test depend on the hour it ran at: the send waited
    for the recipients' morning whenever CI ran during their night."""
    local = datetime.now(ZoneInfo(zone)) + timedelta(hours=12)
    return f"{local:%H}:00-{(local + timedelta(hours=1)):%H}:00"


def test_api_send_runs_in_the_background_and_reports(api: Api) -> None:
    assert api.call("GET", f"{api.base}/send").json()["state"] == "not_started"
    problem(api.call("POST", f"{api.base}/pause"), 409)
    quiet = quiet_hours_away_from_now("America/Los_Angeles")  # the factory's +1 415 numbers
    r = api.call("POST", f"{api.base}/send", json={"quiet_hours": quiet})
    body = r.json()
    # A fixed rate of the outbox: none; 15 messages finish within the default wait.
    assert r.status_code == 200, body
    assert (body["state"], body["created"], body["sent"], body["queued"]) == ("done", 15, 15, 0)
    assert body["quiet_hours"] == quiet and body["finished_at"] is not None
    assert set(api.outbox().values()) == {1} and len(api.outbox()) == 15
    problem(api.call("POST", f"{api.base}/send"), 409)
    problem(api.call("POST", f"{api.base}/cancel"), 409)


def test_api_input_errors_name_the_field(api: Api) -> None:
    problem(api.call("POST", f"{api.base}/send", json={"quiet_hours": "late"}), 422, "quiet_hours")
    problem(api.call("POST", f"{api.base}/send", json={"rate": -2}), 422, "/rate")
    problem(api.call("POST", f"{api.base}/send", json={"bogus": 1}), 422, "/bogus")
    problem(api.call("POST", f"{api.base}/send?wait=600"), 422, "wait")
    problem(api.call("POST", f"{api.base}/send", json={"provider": "nope"}), 404, "provider")
    problem(api.call("POST", f"{api.base}/release", json={"action": "maybe"}), 422, "/action")
    problem(api.call("POST", f"{api.base}/test-send", json={"to": "12"}), 422, "to")
    problem(api.call("POST", "/v1/campaigns/nope/send"), 404, "campaign")
    problem(api.call("GET", f"{api.base}/send", key=None), 401)
    assert api.call("GET", f"{api.base}/send").json()["state"] == "not_started"  # nothing written
    assert not api.outbox()


def test_api_pause_resume_and_cancel_reach_the_running_send(api: Api) -> None:
    r = api.call("POST", f"{api.base}/send?wait=0", json={"rate": 4})
    assert r.status_code == 202 and r.json()["state"] == "running"
    time.sleep(1.2)
    assert api.call("POST", f"{api.base}/pause").json()["state"] == "paused"
    paused = api.until("paused")
    sent_at_pause = paused["sent"]
    assert 0 < sent_at_pause < 15 and paused["queued"] == 15 - sent_at_pause
    time.sleep(0.6)
    assert sum(api.outbox().values()) == sent_at_pause  # nothing goes out while paused
    assert api.call("POST", f"{api.base}/resume").json()["state"] == "running"
    time.sleep(0.8)
    cancelled = api.call("POST", f"{api.base}/cancel").json()
    assert cancelled["state"] == "cancelled"
    final = api.until("cancelled")
    assert final["sent"] > sent_at_pause and final["cancelled"] == 15 - final["sent"]
    time.sleep(0.6)
    out = api.outbox()
    assert sum(out.values()) == final["sent"] and set(out.values()) == {1}
    problem(api.call("POST", f"{api.base}/resume"), 409)


def test_api_test_send_and_cli_commands(api: Api) -> None:
    r = api.call("POST", f"{api.base}/test-send", json={"to": "+14155559876"})
    body = r.json()
    assert r.status_code == 200, body
    assert (body["to"], body["status"]) == ("+14155559876", "sent")
    assert body["links"][0].startswith("https://sms.example.com/c/")
    assert api.call("GET", f"{api.base}/send").json()["state"] == "not_started"

    cli = api.cli("campaign", "test-send", api.campaign.slug, "--to", "+14155550003", "--json")
    assert cli.returncode == 0, cli.stderr
    assert json.loads(cli.stdout)["status"] == "sent"
    assert api.outbox() == Counter({"+14155559876": 1, "+14155550003": 1})

    bad = api.cli("campaign", "send", api.campaign.slug, "--quiet-hours", "25:00-01:00")
    assert bad.returncode == 2 and "hours go 00-23" in bad.stderr
    paused = api.cli("campaign", "pause", api.campaign.slug)
    assert paused.returncode == 4 and "has not been sent" in paused.stderr
    sent = api.cli("campaign", "send", api.campaign.slug, "--json")
    assert sent.returncode == 0, sent.stderr
    assert json.loads(sent.stdout)["sent"] == 15
    status = api.cli("campaign", "status", api.campaign.slug)
    assert status.returncode == 0
    assert "done" in status.stdout and "skipped: opted out" in status.stdout
    again = api.cli("campaign", "send", api.campaign.slug)
    assert again.returncode == 4 and "already been sent" in again.stderr
    # The recipient of a CLI test send also got the campaign: two lines, one of them a test.
    assert api.outbox()["+14155550003"] == 2
