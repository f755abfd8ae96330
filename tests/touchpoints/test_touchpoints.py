"""POST /v1/touchpoints and `clicktrail touchpoints import` through the whole app on SQLite and
PostgreSQL: single and batch, one outcome per item, idempotency on the touch id (in a batch
and across requests), structural errors refusing the batch with nothing stored, another
workspace's contacts, and the CLI's all-or-nothing import with its per-line errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from clicktrail.cli import app as cli_app
from clicktrail.storage import tables as t
from factories import Repos, make_contacts, make_workspace
from inprocess_api import Api, ok, problem

AT = "2026-11-20T10:00:00Z"
AT_US = 1_795_168_800_000_000


def stored(api: Api) -> list[dict[str, Any]]:
    tp = t.touchpoints
    q = sa.select(tp.c.public_id, tp.c.channel, tp.c.contact_id, tp.c.occurred_us,
                  tp.c.campaign, tp.c.source, tp.c.touch_id, tp.c.meta,
                  tp.c.workspace_id).order_by(tp.c.id)  # fmt: skip
    with api.container.engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(q)]


def test_one_touch_is_stored_once_per_touch_id(api: Api) -> None:
    (c0, _c1) = make_contacts(Repos.on(api.container.engine), api.ws, 2)
    body = {"channel": "Email", "contact": {"external_id": "ext-0"}, "occurred_at": AT,
            "campaign": "bf-newsletter", "source": "mailchimp", "touch_id": "em-1",
            "metadata": {"subject": "Sale"}}  # fmt: skip
    first, again = api.calls([("POST", "/v1/touchpoints", {"json": body})] * 2)
    made = ok(first, 201)
    assert made["outcome"] == "accepted" and made["id"].startswith("tch_")
    assert ok(again) == {"outcome": "duplicate", "id": made["id"]}
    (row,) = stored(api)
    assert row == {
        "public_id": made["id"], "channel": "email", "contact_id": c0.id, "occurred_us": AT_US,
        "campaign": "bf-newsletter", "source": "mailchimp", "touch_id": "em-1",
        "meta": {"subject": "Sale"}, "workspace_id": api.ws.id,
    }  # fmt: skip
    # Without a touch id every post is a touch of its own.
    plain = {"channel": "web", "contact": {"phone": "+14155550001"}, "occurred_at": AT}
    a, b = api.calls([("POST", "/v1/touchpoints", {"json": plain})] * 2)
    assert ok(a, 201)["id"] != ok(b, 201)["id"]
    assert len(stored(api)) == 3


def test_a_batch_answers_each_item_in_order(api: Api) -> None:
    make_contacts(Repos.on(api.container.engine), api.ws, 2)
    items: list[Any] = [
        {"channel": "email", "contact": {"external_id": "ext-0"}, "occurred_at": AT,
         "touch_id": "t-1"},
        {"channel": "paid_social", "contact": {"phone": "+14155550001"}, "touch_id": "t-1"},
        {"channel": "sms", "contact": {"external_id": "ext-0"}},
        {"channel": "web", "contact": {"external_id": "nobody"}},
        {"channel": "web", "contact": {"external_id": "ext-1"}, "occurred_at": "soon"},
        {"channel": "Web Site", "contact": {"external_id": "ext-1"}},
        {"channel": "web"},
        {"channel": "web", "contact": {"external_id": "ext-1"}, "campaign": "x" * 129},
        {"channel": "web", "contact": {"external_id": "ext-1"}, "metadata": {"a": [1]}},
        {"channel": "web", "contact": {"external_id": "ext-1"}, "colour": "red"},
        "not an object",
        {"channel": "paid_social", "contact": {"external_id": "ext-1"}, "source": "meta"},
    ]  # fmt: skip
    out = ok(api.call("POST", "/v1/touchpoints", json={"touchpoints": items}))
    got = [(r["outcome"], r.get("field")) for r in out["results"]]
    assert got == [
        ("accepted", None),
        ("duplicate", None),
        ("invalid", "/touchpoints/2/channel"),
        ("unknown_contact", "/touchpoints/3/contact"),
        ("invalid", "/touchpoints/4/occurred_at"),
        ("invalid", "/touchpoints/5/channel"),
        ("invalid", "/touchpoints/6/contact"),
        ("invalid", "/touchpoints/7/campaign"),
        ("invalid", "/touchpoints/8/metadata/a"),
        ("invalid", "/touchpoints/9/colour"),
        ("invalid", "/touchpoints/10"),
        ("accepted", None),
    ]
    assert out["results"][1]["id"] == out["results"][0]["id"]
    assert "no contact with external id 'nobody'" in out["results"][3]["detail"]
    assert out["counts"] == {"accepted": 2, "duplicate": 1, "invalid": 8, "unknown_contact": 1}
    rows = stored(api)
    assert [(r["channel"], r["touch_id"], r["source"]) for r in rows] == [
        ("email", "t-1", None), ("paid_social", None, "meta")]  # fmt: skip


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"touchpoints": []}, "touchpoints"),
        ({"touchpoints": {"channel": "web"}}, "touchpoints"),
        ({"touchpoints": [{"channel": "web"}], "extra": 1}, "extra"),
        ([{"channel": "web"}], "body"),
        ({"touchpoints": [{"channel": "web", "contact": {"external_id": "ext-0"}}] * 1001},
         "touchpoints"),
    ],
)  # fmt: skip
def test_a_batch_of_the_wrong_shape_is_refused_whole(api: Api, body: Any, field: str) -> None:
    make_contacts(Repos.on(api.container.engine), api.ws, 1)
    problem(api.call("POST", "/v1/touchpoints", json=body), 422, field)
    assert stored(api) == []


def test_single_refusals_are_problems(api: Api) -> None:
    make_contacts(Repos.on(api.container.engine), api.ws, 1)
    r = api.call(
        "POST", "/v1/touchpoints", json={"channel": "email", "contact": {"external_id": "nobody"}}
    )
    assert problem(r, 422, "contact")["code"] == "unknown_contact"
    r = api.call("POST", "/v1/touchpoints", json={"channel": "email", "contact": {}})
    problem(r, 422, "contact")
    r = api.call("POST", "/v1/touchpoints", content=b"{not json",
                 headers={"content-type": "application/json"})  # fmt: skip
    problem(r, 422, "body")
    assert stored(api) == []


def test_another_workspaces_contact_is_unknown(api: Api) -> None:
    other = make_workspace(Repos.on(api.container.engine))
    make_contacts(Repos.on(api.container.engine), other, 1)
    r = api.call(
        "POST", "/v1/touchpoints", json={"channel": "email", "contact": {"external_id": "ext-0"}}
    )
    assert problem(r, 422, "contact")["code"] == "unknown_contact"
    assert stored(api) == []


def _cli(api: Api, tmp_path: Path, monkeypatch: Any, *args: str) -> Any:
    monkeypatch.setenv("CLICKTRAIL_DATABASE_URL", api.container.settings.database_url)
    monkeypatch.setenv("CLICKTRAIL_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("CLICKTRAIL_WORKSPACE", api.ws.slug)
    return CliRunner().invoke(cli_app, ["touchpoints", "import", *args])


def test_the_cli_imports_csv_and_json_lines(api: Api, tmp_path: Path, monkeypatch: Any) -> None:
    make_contacts(Repos.on(api.container.engine), api.ws, 2)
    csv_file = tmp_path / "touches.csv"
    csv_file.write_text(
        "channel,external_id,phone,occurred_at,campaign,source,touch_id\n"
        f"email,ext-0,,{AT},bf,mailchimp,e-1\n"
        f"web,,+14155550001,{AT},,,\n"
        f"email,ext-0,,{AT},bf,mailchimp,e-1\n"
    )
    r = _cli(api, tmp_path, monkeypatch, str(csv_file))
    assert r.exit_code == 0, r.output
    assert "2 touchpoints imported, 1 duplicates" in r.output
    lines = tmp_path / "touches.jsonl"
    lines.write_text(
        '{"channel": "paid_social", "contact": {"external_id": "ext-1"}, "touch_id": "ad-9"}\n'
        "\n"
        '{"channel": "email", "contact": {"external_id": "ext-0"}, "touch_id": "e-1"}\n'
    )
    r = _cli(api, tmp_path, monkeypatch, str(lines))
    assert r.exit_code == 0, r.output
    assert "1 touchpoints imported, 1 duplicates" in r.output
    assert [(x["channel"], x["touch_id"]) for x in stored(api)] == [
        ("email", "e-1"), ("web", None), ("paid_social", "ad-9")]  # fmt: skip


def test_the_cli_import_is_all_or_nothing(api: Api, tmp_path: Path, monkeypatch: Any) -> None:
    make_contacts(Repos.on(api.container.engine), api.ws, 2)
    lines = tmp_path / "touches.jsonl"
    lines.write_text(
        '{"channel": "email", "contact": {"external_id": "ext-0"}}\n'
        '{"channel": "email", "contact": {"external_id": "ghost"}}\n'
        "{oops\n"
        '{"channel": "sms", "contact": {"external_id": "ext-1"}}\n'
    )
    r = _cli(api, tmp_path, monkeypatch, str(lines))
    assert r.exit_code == 1
    assert "line 2: contact: no contact with external id 'ghost'" in r.output
    assert "line 3: not JSON" in r.output
    assert "line 4: channel: sms touches" in r.output
    assert "3 bad lines: nothing imported" in r.output
    bad_csv = tmp_path / "bad.csv"
    bad_csv.write_text("channel,email_address\nemail,a@example.com\n")
    r = _cli(api, tmp_path, monkeypatch, str(bad_csv))
    assert r.exit_code == 2 and "unknown column 'email_address'" in r.output
    extra = tmp_path / "extra.csv"
    extra.write_text("channel,external_id\nemail,ext-0,surplus\n")
    r = _cli(api, tmp_path, monkeypatch, str(extra))
    assert r.exit_code == 1 and "line 2: more cells than the header has columns" in r.output
    assert stored(api) == []
