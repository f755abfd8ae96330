"""Destination macros (docs/conversions.md#destination-macros): `{click_id}` filled by the redirect
with each click's id where the link says, `{campaign}`, `{contact_id}` and `{sub1}`…`{sub5}`
at wrap time; bad uses refused. Through the API and a real click, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import sqlalchemy as sa
from conversion_world import BROWSER
from typer.testing import CliRunner

from clicktrail.cli import app as cli_app
from clicktrail.domain.destinations import redirect_location
from clicktrail.services import campaigns
from clicktrail.storage import tables as t
from factories import Repos, make_contacts, send, tokens_of
from inprocess_api import Api, ok, problem

OFFER = (
    "https://network.example/aff_c?offer_id=7&aff_sub={click_id}&aff_sub2={sub1}"
    "&aff_sub3={campaign}&aff_sub4={contact_id}"
)


def test_the_click_id_goes_where_the_link_says(api: Api, tmp_path: Path) -> None:
    make_contacts(Repos.on(api.container.engine), api.ws, 2, list_name="all")
    made = ok(api.call("POST", "/v1/campaigns", json={
        "name": "Offer", "template": f"Deal: {OFFER} bye", "list": "all",
        "subs": {"sub1": "spring", "sub5": "x"}}), 201)  # fmt: skip
    assert made["options"]["subs"] == {"sub1": "spring", "sub5": "x"}
    preview = ok(api.call("GET", f"/v1/campaigns/{made['slug']}/preview"))
    assert "aff_sub={click_id}&aff_sub2=spring&aff_sub3=offer" in preview["links"][0]["destination"]
    cp = campaigns.get_campaign(api.container.campaigns, api.ws, made["slug"])
    send(Repos.on(api.container.engine), api.ws, cp, tmp_path / "outbox.jsonl")
    token = sorted(tokens_of(Repos.on(api.container.engine), cp), key=lambda x: x[1])[0][0]
    r = api.call("GET", f"/c/{token}", key=None, headers=BROWSER)
    assert r.status_code == 302
    location = r.headers["location"]
    q = parse_qs(urlsplit(location).query)
    with api.container.engine.connect() as conn:
        (stored,) = conn.execute(sa.select(t.clicks.c.click_id)).scalars().all()
    assert q["aff_sub"] == [stored] and "{" not in location
    assert (q["aff_sub2"], q["aff_sub3"], q["aff_sub4"]) == (["spring"], ["offer"], ["ext-0"])
    assert "ct_cid" not in q  # the link placed the click id itself
    # The network hands it back: it is the workspace's click.
    conv = ok(api.call("POST", "/v1/conversions", json={"click_id": stored}), 201)["conversion"]
    assert conv["campaign"] == "offer" and conv["contact"] == "ext-0"


def test_macros_are_refused_where_they_cannot_work(api: Api) -> None:
    answers = api.calls([
        ("POST", "/v1/campaigns", {"json": {"name": "A", "template": "Your id {click_id} https://a.example/"}}),
        ("POST", "/v1/campaigns", {"json": {"name": "B", "template": "https://a.example/?v={variant}"}}),
        ("POST", "/v1/campaigns", {"json": {"name": "C", "template": "https://a.example/", "subs": {"sub6": "x"}}}),
        ("POST", "/v1/campaigns", {"json": {"name": "D", "template": "https://a.example/", "subs": {"sub1": "a\nb"}}}),
    ])  # fmt: skip
    assert "belongs in a link" in problem(answers[0], 422, "template")["detail"]
    assert "variant" in problem(answers[1], 422, "template")["detail"]
    problem(answers[2], 422)
    assert problem(answers[3], 422, "subs")


def test_redirect_location_places_the_click_id() -> None:
    _, head, tail, add = redirect_location("https://n.example/c?s={click_id}#f", {}, "ct_cid")
    assert (head, tail, add) == ("https://n.example/c?s=", "#f", True)
    # A URL that had to be percent-encoded keeps its macro findable.
    _, head, tail, add = redirect_location("https://n.example/é?s={click_id}&x=1", {"u": "1"}, "")
    assert add and head.endswith("?s=") and tail == "&x=1&u=1"
    # Without the macro, the parameter as before.
    _, head, tail, add = redirect_location("https://n.example/", {}, "ct_cid")
    assert (head, tail, add) == ("https://n.example/?ct_cid=", "", True)


def test_subs_can_be_changed_after_creation(api: Api, tmp_path: Path, monkeypatch: Any) -> None:
    """PATCH /v1/campaigns/{campaign} (and `campaign update`) sets and clears sub1 … sub5; the
    messages wrapped afterwards carry the new values; bad changes write nothing."""
    make_contacts(Repos.on(api.container.engine), api.ws, 1, list_name="all")
    made = ok(api.call("POST", "/v1/campaigns", json={
        "name": "Offer", "template": f"Deal: {OFFER}&s2={{sub2}} bye", "list": "all",
        "subs": {"sub1": "spring", "sub2": "vip"}}), 201)  # fmt: skip
    url = f"/v1/campaigns/{made['slug']}"
    changed = ok(api.call("PATCH", url, json={"subs": {"sub1": "summer", "sub2": None,
                                                        "sub3": "new"}}))  # fmt: skip
    assert changed["options"]["subs"] == {"sub1": "summer", "sub3": "new"}
    assert {k: v for k, v in changed.items() if k != "options"} == {
        k: v for k, v in made.items() if k != "options"}  # fmt: skip
    cleared = ok(api.call("PATCH", url, json={"subs": {"sub3": ""}}))
    assert cleared["options"]["subs"] == {"sub1": "summer"}
    bad = api.calls([
        ("PATCH", url, {"json": {"subs": {}}}),
        ("PATCH", url, {"json": {"subs": {"sub6": "x"}}}),
        ("PATCH", url, {"json": {"subs": {"sub1": "a\nb"}}}),
        ("PATCH", url, {"json": {"subs": {"sub1": "x" * 201}}}),
        ("PATCH", url, {"json": {"name": "Other"}}),
        ("PATCH", "/v1/campaigns/nope", {"json": {"subs": {"sub1": "x"}}}),
    ])  # fmt: skip
    assert problem(bad[0], 422)["field"].startswith("/subs")
    assert problem(bad[1], 422)["field"].startswith("/subs")
    assert "printable" in problem(bad[2], 422, "subs")["detail"]
    assert problem(bad[3], 422)["field"].startswith("/subs")
    problem(bad[4], 422)
    problem(bad[5], 404, "campaign")
    assert ok(api.call("GET", url))["options"]["subs"] == {"sub1": "summer"}
    # The CLI: set one, clear one; nothing to change is refused (exit 2).
    monkeypatch.setenv("CLICKTRAIL_DATABASE_URL", api.container.settings.database_url)
    monkeypatch.setenv("CLICKTRAIL_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("CLICKTRAIL_WORKSPACE", api.ws.slug)
    r = CliRunner().invoke(cli_app, ["campaign", "update", made["slug"], "--sub", "sub2=vip2",
                                     "--sub", "sub1=", "--json"])  # fmt: skip
    assert r.exit_code == 0, r.output
    assert json.loads(r.output) == {"id": made["id"], "slug": "offer", "subs": {"sub2": "vip2"}}
    r = CliRunner().invoke(cli_app, ["campaign", "update", made["slug"], "--sub", "sub9=x"])
    assert r.exit_code == 2 and "sub9" in r.output
    assert CliRunner().invoke(cli_app, ["campaign", "update", made["slug"]]).exit_code == 2
    r = CliRunner().invoke(cli_app, ["campaign", "update", made["slug"], "--sub", "sub1=summer"])
    assert r.exit_code == 0 and "subs sub1=summer, sub2=vip2" in r.output, r.output
    # Messages wrapped now carry the values in force.
    cp = campaigns.get_campaign(api.container.campaigns, api.ws, made["slug"])
    send(Repos.on(api.container.engine), api.ws, cp, tmp_path / "outbox.jsonl")
    (token,) = [x[0] for x in tokens_of(Repos.on(api.container.engine), cp)]
    r = api.call("GET", f"/c/{token}", key=None, headers=BROWSER)
    q = parse_qs(urlsplit(r.headers["location"]).query)
    assert (q["aff_sub2"], q["s2"]) == (["summer"], ["vip2"])
