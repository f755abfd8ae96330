"""Engagement scores over HTTP (in process) and the command line (a real process), on SQLite and
PostgreSQL: a contact's score explained, settings with bad values named, a recompute."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa

from clicktrail.domain.bots.model import Verdict
from clicktrail.domain.clicks import ClickRecord
from clicktrail.domain.engagement import DAY_US
from clicktrail.services import engagement
from clicktrail.services.clock import now_us
from clicktrail.storage import tables as t
from factories import PYTHONPATH, Repos, make_campaign, make_contacts, send
from inprocess_api import Api, ok, problem

CLICKTRAIL = str(Path(sys.executable).with_name("clicktrail"))
HUMAN = Verdict("human", 5, ())


def _clicks(api: Api, tmp_path: Path, days_ago: list[float]) -> int:
    """Contacts ext-0 and ext-1, a sent campaign, and human clicks of ext-0 that many days
    ago (now: the real clock, as the API scores at it); return the time the clicks count from."""
    store = Repos.on(api.container.engine)
    contacts = make_contacts(store, api.ws, 2)
    cp = make_campaign(store, api.ws, "Sale https://shop.example.com/a")
    send(store, api.ws, cp, tmp_path / "outbox.jsonl")
    with store.engine.connect() as conn:
        mid = conn.execute(
            sa.select(t.messages.c.id).where(t.messages.c.contact_id == contacts[0].id)
        ).scalar_one()
    now = now_us()
    recs = [
        ClickRecord(f"ck{i}", f"tk{i}", cp.id, cp.links[0].id, mid, contacts[0].id,
                    now - round(d * DAY_US), "GET", "203.0.113.7", "Mozilla/5.0", {})
        for i, d in enumerate(days_ago)
    ]  # fmt: skip
    store.clicks.insert_clicks(recs, [HUMAN] * len(recs))
    engagement.refresh_dirty(api.container.engagement, now)
    return now


def test_a_contacts_score_explained(api: Api, tmp_path: Path) -> None:
    _clicks(api, tmp_path, [30, 60])
    r, none, missing = api.calls([
        ("GET", "/v1/contacts/ext-0/engagement", {}),
        ("GET", "/v1/contacts/%2B14155550001/engagement", {}),
        ("GET", "/v1/contacts/ext-9/engagement", {}),
    ])  # fmt: skip
    body = ok(r)
    # 10 · 2^-1 + 10 · 2^-2, a few seconds later: 7.5 (less a hair), at risk.
    assert 7.49 < body["score"] <= 7.5 and body["band"] == "at_risk"
    assert [round(e["value"], 3) for e in body["events"]] == [5.0, 2.5]
    assert body["events"][0]["kind"] == "click" and body["events"][0]["ref"] == "ck0"
    assert (body["clicks"], body["events_total"], body["pending"]) == (2, 2, False)
    assert ok(none)["score"] == 0 and ok(none)["events"] == [] and ok(none)["band"] == "unengaged"
    problem(missing, 404, "contact")


def test_settings_and_bad_values(api: Api) -> None:
    got, put, bad, order, typed, unknown, after = api.calls([
        ("GET", "/v1/engagement/settings", {}),
        ("PUT", "/v1/engagement/settings", {"json": {"click_weight": 12, "half_life_days": 7}}),
        ("PUT", "/v1/engagement/settings", {"json": {"half_life_days": 0}}),
        ("PUT", "/v1/engagement/settings", {"json": {"at_risk_min": 50}}),
        ("PUT", "/v1/engagement/settings", {"json": {"click_weight": "lots"}}),
        ("PUT", "/v1/engagement/settings", {"json": {"decay": 3}}),
        ("GET", "/v1/engagement/settings", {}),
    ])  # fmt: skip
    assert ok(got) == {
        "click_weight": 10.0, "conversion_weight": 30.0, "preview_weight": 1.0,
        "half_life_days": 30.0, "engaged_min": 8.0, "at_risk_min": 2.0, "revision": 0,
        "stale_scores": 0, "rescoring": None, "defaults": True,
    }  # fmt: skip
    assert ok(put)["click_weight"] == 12 and ok(put)["revision"] == 1
    problem(bad, 422, "half_life_days")
    problem(order, 422, "at_risk_min")
    assert "click_weight" in problem(typed, 422)["field"]
    assert "decay" in problem(unknown, 422)["field"]
    assert ok(after) == {**ok(put), "defaults": False}


def _run(database_url: str, tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": os.environ.get("PATH", ""), **PYTHONPATH, "HOME": str(tmp), "NO_COLOR": "1",
        "TERM": "dumb", "COLUMNS": "200", "CLICKTRAIL_DATABASE_URL": database_url,
        "CLICKTRAIL_DATA_DIR": str(tmp / "data"),
    }  # fmt: skip
    return subprocess.run([CLICKTRAIL, *args], cwd=tmp, env=env, capture_output=True, text=True,
                          timeout=60, check=False)  # fmt: skip


def test_cli_show_settings_recompute(api: Api, database_url: str, tmp_path: Path) -> None:
    _clicks(api, tmp_path, [0, 30])
    slug = api.ws.slug
    r = _run(database_url, tmp_path, "engagement", "show", "ext-0", "-w", slug, "--json")
    assert r.returncode == 0, r.stderr
    body = json.loads(r.stdout)
    assert 14.99 < body["score"] <= 15.0 and body["band"] == "engaged"
    r = _run(database_url, tmp_path, "engagement", "show", "ext-0", "-w", slug)
    assert r.returncode == 0 and "score 15.0, engaged" in r.stdout, r.stdout
    r = _run(database_url, tmp_path, "engagement", "show", "ext-7", "-w", slug)
    assert r.returncode == 3 and "ext-7" in r.stderr
    # A bad value: exit 2, the setting named, nothing stored.
    r = _run(database_url, tmp_path, "engagement", "settings", "-w", slug, "--engaged-min", "1")
    assert r.returncode == 2 and "at_risk_min" in r.stderr, r.stderr
    r = _run(database_url, tmp_path, "engagement", "settings", "-w", slug, "--click-weight", "20",
             "--json")  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["stale_scores"] == 1 and json.loads(r.stdout)["revision"] == 1
    assert json.loads(r.stdout)["rescoring"] == {"done": 0, "total": 1}
    r = _run(database_url, tmp_path, "engagement", "settings", "-w", slug)
    assert r.returncode == 0 and "rescoring: 0 of 1 kept scores are current" in r.stdout, r.stdout
    r = _run(database_url, tmp_path, "engagement", "recompute", "-w", slug, "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == {"contacts": 2, "revision": 1, "stale_scores": 0}
    r = _run(database_url, tmp_path, "engagement", "show", "ext-0", "-w", slug, "--json")
    assert 29.99 < json.loads(r.stdout)["score"] <= 30.0


def test_the_jobs_score_again_after_a_change_of_weights(api: Api, tmp_path: Path) -> None:
    """The API says how far the rescore is; the jobs' rescore job (as the jobs process runs
    it) brings the kept score up to the new weights."""
    _clicks(api, tmp_path, [0, 30])
    (put,) = api.calls([("PUT", "/v1/engagement/settings", {"json": {"click_weight": 20}})])
    assert (ok(put)["stale_scores"], ok(put)["rescoring"]) == (1, {"done": 0, "total": 1})
    jobs, _ = api.container.background_jobs()
    (rescore,) = [job for _, job in jobs if getattr(job, "__name__", "") == "rescore_stale"]
    assert rescore() == 1
    got, score = api.calls([
        ("GET", "/v1/engagement/settings", {}),
        ("GET", "/v1/contacts/ext-0/engagement", {}),
    ])  # fmt: skip
    assert (ok(got)["stale_scores"], ok(got)["rescoring"]) == (0, None)
    assert 29.99 < ok(score)["score"] <= 30.0 and not ok(score)["pending"]  # 20 + 20 · 2^-1
