"""Holdouts through the CLI (`campaign create --holdout`, `campaign send`, `campaign lift`,
`campaign holdout-size`) and the API (`holdout` on campaign creation, `GET …/report/lift`,
`GET /v1/holdout-size`), bad input named, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from clicktrail.bootstrap import Container
from clicktrail.cli import app as root
from clicktrail.config import load_settings
from clicktrail.storage import tables as t
from factories import make_api_key, make_contacts, make_domain, make_workspace
from served import requests_in_process

runner = CliRunner()
HOST = "sms.example.com"


@pytest.fixture
def env(database_url: str, tmp_path: Path) -> dict[str, str]:
    return {"CLICKTRAIL_DATABASE_URL": database_url, "CLICKTRAIL_DATA_DIR": str(tmp_path)}


@pytest.fixture
def container(env: dict[str, str]) -> Container:
    c = Container(load_settings(env=env))
    ws = make_workspace(c)
    make_domain(c, ws, HOST)
    make_contacts(c, ws, 40, attributes={"region": "north"})
    make_contacts(c, ws, 20, start=40, attributes={"region": "south"})
    return c


def cli(env: dict[str, str], *args: str) -> Result:
    return runner.invoke(root, list(args), env=env)


def test_cli_holdout_from_create_to_lift(container: Container, env: dict[str, str]) -> None:
    bad = cli(env, "campaign", "create", "Spring", "--template", "Hi https://s.example.com/x",
              "--holdout", "60%")  # fmt: skip
    assert bad.exit_code == 2
    assert "holdout share must be more than 0 and at most 0.5" in bad.output
    bad = cli(env, "campaign", "create", "Spring", "--template", "Hi https://s.example.com/x",
              "--holdout", "ten")  # fmt: skip
    assert bad.exit_code == 2
    assert "--holdout 'ten'" in bad.output
    bad = cli(env, "campaign", "create", "Spring", "--template", "Hi https://s.example.com/x",
              "--holdout", "10%", "--holdout-stratify", "attribute:tier")  # fmt: skip
    assert bad.exit_code == 2
    assert "no contact has the attribute 'tier'" in bad.output
    assert container.campaigns.list_campaigns(1) == []  # nothing half-written

    made = cli(env, "campaign", "create", "Spring", "--template", "Hi https://s.example.com/x",
               "--holdout", "25%", "--holdout-seed", "11",
               "--holdout-stratify", "attribute:region")  # fmt: skip
    assert made.exit_code == 0, made.output
    early = cli(env, "campaign", "lift", "spring")
    assert early.exit_code == 4
    assert "has not been sent" in early.output

    sent = cli(env, "campaign", "send", "spring")
    assert sent.exit_code == 0, sent.output
    assert "held out 15 contact(s)" in sent.output  # 25 % of 60: 10 north, 5 south
    status = cli(env, "campaign", "status", "spring", "--json")
    assert json.loads(status.stdout)["held_out"] == 15

    lift = cli(env, "campaign", "lift", "spring", "--json")
    assert lift.exit_code == 0, lift.output
    data = json.loads(lift.stdout)
    assert data["holdout"]["held_out"] == 15
    assert data["holdout"]["seed"] == 11
    assert {s["name"]: s["held_out"] for s in data["holdout"]["strata"]} == {
        "north": 10, "south": 5,
    }  # fmt: skip
    assert data["treated"] == {"contacts": 0, "converted": 0}  # the outbox sends no receipts
    assert data["too_small"] is not None
    assert data["window"]["source"] == "default"
    assert data["window"]["seconds"] == 5 * 86400
    # The window is the campaign's attribution click window.
    assert (
        cli(env, "attribution", "set", "--campaign", "spring", "--click-window", "1d").exit_code
        == 0
    )
    window = json.loads(cli(env, "campaign", "lift", "spring", "--json").stdout)["window"]
    assert (window["seconds"], window["source"]) == (86400, "campaign")
    human = cli(env, "campaign", "lift", "spring")
    assert human.exit_code == 0, human.output
    assert "holdout 15 of 60 reachable contacts (25%, seed 11, stratified by" in human.output
    assert "too small a sample to trust" in human.output

    plain = cli(env, "campaign", "create", "Plain", "--template", "Hi https://s.example.com/x")
    assert plain.exit_code == 0, plain.output
    nolift = cli(env, "campaign", "lift", "plain")
    assert nolift.exit_code == 4
    assert "has no holdout" in nolift.output


def test_cli_holdout_size(env: dict[str, str]) -> None:
    ok = cli(env, "campaign", "holdout-size", "--audience", "20000", "--baseline", "4%",
             "--mde", "1%", "--json")  # fmt: skip
    assert ok.exit_code == 0, ok.output
    plan = json.loads(ok.stdout)
    assert plan["reachable"]
    assert plan["holdout"] + plan["treated"] == 20000
    human = cli(env, "campaign", "holdout-size", "--audience", "20000", "--baseline", "0.04",
                "--mde", "0.01")  # fmt: skip
    assert f"hold out {plan['holdout']:,} of 20,000 contacts" in human.output
    short = cli(env, "campaign", "holdout-size", "--audience", "500", "--baseline", "4%",
                "--mde", "1%")  # fmt: skip
    assert short.exit_code == 1
    assert "not reachable" in short.output
    bad = cli(env, "campaign", "holdout-size", "--audience", "500", "--baseline", "4%",
              "--mde", "99%")  # fmt: skip
    assert bad.exit_code == 2
    assert "minimum detectable effect" in bad.output


def test_api_holdout(container: Container) -> None:
    ws = container.workspaces.list_workspaces()[0]
    key = make_api_key(container, ws)
    template = "Hi https://s.example.com/x"
    (bad, bad_strat, made, early, missing, size, bad_size) = requests_in_process(
        container, HOST,
        [
            ("POST", "/v1/campaigns", key,
             {"json": {"name": "A", "template": template, "holdout": {"share": 0.7}}}),
            ("POST", "/v1/campaigns", key,
             {"json": {"name": "A", "template": template,
                       "holdout": {"share": 0.1, "stratify": "segment:x"}}}),
            ("POST", "/v1/campaigns", key,
             {"json": {"name": "A", "template": template,
                       "holdout": {"share": 0.2, "seed": 5, "stratify": "list"}}}),
            ("GET", "/v1/campaigns/a/report/lift", key, {}),
            ("GET", "/v1/campaigns/nope/report/lift", key, {}),
            ("GET", "/v1/holdout-size", key,
             {"params": {"audience": 20000, "baseline": 0.04, "mde": 0.01}}),
            ("GET", "/v1/holdout-size", key,
             {"params": {"audience": 20000, "baseline": "x", "mde": 0.01}}),
        ],
    )  # fmt: skip
    assert bad.status_code == 422
    assert bad.json()["field"] == "/holdout/share"
    assert bad_strat.status_code == 422
    assert bad_strat.json()["field"] == "holdout_stratify"
    assert made.status_code == 201, made.text
    assert made.json()["options"]["holdout"] == {"share": 0.2, "seed": 5, "stratify": "list"}
    assert early.status_code == 409
    assert missing.status_code == 404
    assert size.status_code == 200
    assert size.json()["reachable"] is True
    assert bad_size.status_code == 422
    assert bad_size.json()["field"] == "baseline"

    cp = container.campaigns.find_campaign(ws.id, "a")
    assert cp is not None
    container.sending.send(ws, cp, container.provider("outbox"))
    (lift,) = requests_in_process(
        container, HOST, [("GET", "/v1/campaigns/a/report/lift", key, {"params": {"event": "x"}})]
    )
    assert lift.status_code == 200, lift.text
    body = lift.json()
    assert body["holdout"]["held_out"] == 12  # 20 % of 60
    assert body["event"] == "x"
    with container.engine.connect() as conn:
        held = conn.execute(t.campaign_holdouts.select()).all()
        sent_to = {
            r.contact_id
            for r in conn.execute(t.messages.select().where(t.messages.c.campaign_id == cp.id))
        }
    assert len(held) == 12
    assert not {h.contact_id for h in held} & sent_to
