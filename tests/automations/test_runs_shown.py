"""An automation's runs as the API (`GET /v1/automations/{id}/runs`), the CLI (`clicktrail
automations runs`, a real process) and the dashboard (the rule's page) show them, on SQLite and
PostgreSQL: what fired with its message, what is pending, what was cancelled and why; another
workspace's automation answers 404; a bad state is named."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
from autofire_kit import HOUR, world
from test_rules_cli import _run

from clicktrail.domain.automations import Action, Conditions, Trigger, check_rule
from clicktrail.services.clock import now_us
from clicktrail.services.optouts import OptChange
from factories import Repos, make_api_key, make_workspace, phone
from inprocess_api import HOST, Api, ok, problem, sign_in
from served import in_process

RULE = check_rule(Trigger("clicked", "sale"), HOUR, Conditions(),
                  Action("send", template="Back? https://x.example.com/b"))  # fmt: skip


def _three_runs(api: Api, tmp_path: Path) -> tuple[str, dict[str, str]]:
    """A rule with a fired, a pending and a cancelled run; its id and phone → state."""
    w = world(api, tmp_path, n=3)
    a = w.rule("Follow up", RULE)
    for i in range(3):
        w.click(phone(i))
    w.tick()
    runs = {r.phone: r for r in w.runs()}
    at = now_us()
    api.container.optout_queries.record_opt_changes(
        api.ws.id, [OptChange(phone(2), True, at, "api")], at
    )
    with api.container.engine.begin() as conn:  # phone(0)'s run is due now
        from clicktrail.storage import tables as t

        conn.execute(
            t.automation_runs.update()
            .where(t.automation_runs.c.id == runs[phone(0)].id)
            .values(due_us=at)
        )
    w.clock.at = at + 1
    w.tick()
    states = {r.phone: r.state for r in w.runs()}
    assert states == {phone(0): "fired", phone(1): "pending", phone(2): "cancelled"}
    return a.public_id, states


def test_the_api_pages_an_automations_runs(api: Api, tmp_path: Path) -> None:
    aid, _ = _three_runs(api, tmp_path)
    page = ok(api.call("GET", f"/v1/automations/{aid}/runs"))
    by = {x["phone"]: x for x in page["items"]}
    assert [x["phone"] for x in page["items"]] == [phone(2), phone(1), phone(0)]  # newest first
    assert by[phone(0)]["state"] == "fired" and by[phone(0)]["message"].startswith("msg_")
    assert by[phone(0)]["fired_at"] is not None
    assert by[phone(1)]["state"] == "pending" and by[phone(1)]["message"] is None
    assert (by[phone(2)]["state"], by[phone(2)]["reason"]) == ("cancelled", "the contact opted out")
    first = ok(api.call("GET", f"/v1/automations/{aid}/runs?limit=2"))
    assert len(first["items"]) == 2 and first["next_cursor"]
    rest = ok(api.call("GET", f"/v1/automations/{aid}/runs?limit=2&cursor={first['next_cursor']}"))
    assert [x["phone"] for x in rest["items"]] == [phone(0)] and rest["next_cursor"] is None
    pending = ok(api.call("GET", f"/v1/automations/{aid}/runs?state=pending"))
    assert [x["phone"] for x in pending["items"]] == [phone(1)]
    problem(api.call("GET", f"/v1/automations/{aid}/runs?state=done"), 422, "state")
    other = make_api_key(Repos.on(api.container.engine), make_workspace(Repos.on(api.container.engine)))  # fmt: skip
    problem(api.call("GET", f"/v1/automations/{aid}/runs", key=other), 404, "automation")


def test_the_cli_and_the_dashboard_show_the_runs(
    api: Api, tmp_path: Path, database_url: str
) -> None:
    aid, _ = _three_runs(api, tmp_path)
    r = _run(database_url, tmp_path, "automations", "runs", aid, "-w", api.ws.slug, "--json")
    assert r.returncode == 0, r.stderr
    got = {x["phone"]: (x["state"], x["reason"]) for x in json.loads(r.stdout)}
    assert got[phone(2)] == ("cancelled", "the contact opted out")
    assert got[phone(0)][0] == "fired" and got[phone(1)][0] == "pending"
    r = _run(database_url, tmp_path, "automations", "runs", aid, "-w", api.ws.slug)
    assert r.returncode == 0 and "the contact opted out" in r.stdout and "msg_" in r.stdout
    r = _run(database_url, tmp_path, "automations", "runs", aid, "-w", api.ws.slug,
             "--state", "nope")  # fmt: skip
    assert r.returncode == 2 and "state" in r.stderr
    r = _run(database_url, tmp_path, "automations", "runs", "au_nope", "-w", api.ws.slug)
    assert r.returncode == 3

    async def use(c: httpx.AsyncClient) -> str:
        await sign_in(c, api.key)
        r = await c.get(f"/dashboard/automations/{aid}")
        assert r.status_code == 200, r.text
        listing = await c.get("/dashboard/automations")
        assert f'href="/dashboard/automations/{aid}"' in listing.text
        return r.text

    page = in_process(api.container, HOST, use)
    assert page.count("data-run=") == 3
    assert "the contact opted out" in page and "fired" in page and "pending" in page
