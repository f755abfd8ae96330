"""API keys are looked up in the thread pool, never on the event loop the redirect shares: the
report routes and the dashboard's pages and login (issue 16), with their answers unchanged
(SQLite and PostgreSQL, the whole app in process)."""

from __future__ import annotations

import threading
from typing import Any

import httpx
import pytest

from clicktrail.domain.models import Workspace
from clicktrail.services.keys import ApiKey
from factories import Repos, make_campaign
from inprocess_api import HOST, Api, sign_in
from served import in_process


def test_report_routes_and_dashboard_look_keys_up_off_the_event_loop(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    cp = make_campaign(Repos.on(api.container.engine), api.ws, "Hi https://shop.example.com/a",
                       slug="spring")  # fmt: skip
    lookups: list[int] = []
    store = api.container.keys
    real = store.api_key_for_hash

    def recorded(key_hash: str) -> tuple[Workspace, ApiKey] | None:
        lookups.append(threading.get_ident())
        return real(key_hash)

    monkeypatch.setattr(store, "api_key_for_hash", recorded)
    auth = {"Authorization": f"Bearer {api.key}"}
    loop_thread: list[int] = []
    answers: dict[str, Any] = {}

    async def use(c: httpx.AsyncClient) -> None:
        loop_thread.append(threading.get_ident())
        for path in (f"/v1/campaigns/{cp.slug}/report", f"/v1/campaigns/{cp.slug}/report/full",
                     f"/v1/campaigns/{cp.slug}/recipients", "/v1/reports/compare"):  # fmt: skip
            r = await c.get(path, headers=auth)
            answers[path] = (r.status_code, r.json())
        answers["unknown"] = (await c.get("/v1/campaigns/nope/report", headers=auth)).status_code
        answers["bad key"] = (
            await c.get(f"/v1/campaigns/{cp.slug}/report", headers={"Authorization": "Bearer x"})
        ).status_code
        await sign_in(c, api.key)  # the login's key check
        answers["page"] = (await c.get(f"/dashboard/campaigns/{cp.slug}")).status_code
        answers["missing page"] = (await c.get("/dashboard/campaigns/nope")).status_code

    in_process(api.container, HOST, use)
    report = answers[f"/v1/campaigns/{cp.slug}/report"]
    assert report[0] == 200 and report[1]["campaign"] == cp.public_id and report[1]["messages"] == 0
    assert answers[f"/v1/campaigns/{cp.slug}/report/full"][0] == 200
    assert answers[f"/v1/campaigns/{cp.slug}/recipients"] == (
        200, {"items": [], "next_cursor": None, "total": 0}
    )  # fmt: skip
    assert answers["/v1/reports/compare"][0] == 200
    assert (answers["unknown"], answers["bad key"]) == (404, 401)
    assert (answers["page"], answers["missing page"]) == (200, 404)
    # 4 reports + unknown campaign + bad key (its hash is looked up too) + login + 2 pages,
    # + the 404 page's own session check.
    assert len(lookups) >= 9, lookups
    assert loop_thread[0] not in lookups
