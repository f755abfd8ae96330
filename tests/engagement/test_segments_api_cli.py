"""Segments over HTTP (in process) and the command line (a real process), on SQLite and
PostgreSQL, on the hand-built workspace of test_segments.py (scored months before the real
clock: every score has decayed to "unengaged" by now)."""

from __future__ import annotations

import json
from pathlib import Path

from test_engagement_api_cli import _run
from test_segments import _world

from factories import Repos
from inprocess_api import Api, ok, problem


def test_segments_over_http(api: Api, tmp_path: Path) -> None:
    _world(Repos.on(api.container.engine), tmp_path, api.ws)
    listed, bad_days, bad_band, bad_campaign, unknown, created = api.calls([
        ("GET", "/v1/segments", {}),
        ("POST", "/v1/segments", {"json": {"name": "x", "filter": {"no_click_days": 0}}}),
        ("POST", "/v1/segments", {"json": {"name": "x", "filter": {"band": "hot"}}}),
        ("POST", "/v1/segments", {"json": {"name": "x",
                                           "filter": {"clicked_campaign": "nope"}}}),
        ("POST", "/v1/segments", {"json": {"name": "x", "filter": {"colour": "red"}}}),
        ("POST", "/v1/segments", {"json": {"name": "UK gold", "filter": {
            "country": ["gb"], "attributes": {"plan": ["gold", "silver"]}}}}),
    ])  # fmt: skip
    sizes = {x["slug"]: x["size"] for x in ok(listed)["items"]}
    assert sizes == {"at-risk": 0, "engaged": 0, "never-clicked": 4, "unengaged": 7}
    problem(bad_days, 422, "/filter/no_click_days")
    problem(bad_band, 422, "/filter/band")
    problem(bad_campaign, 422, "/filter/clicked_campaign")
    problem(unknown, 422, "/filter/colour")
    body = ok(created, 201)
    assert body["slug"] == "uk-gold" and body["size"] == 1 and body["sendable"]
    assert body["filter"]["country"] == ["GB"]
    vip, unknown_member, members, csv, jsonl, camp, out_seg, out_camp = api.calls([
        ("POST", "/v1/segments", {"json": {"name": "VIP", "kind": "static"}}),
        ("POST", "/v1/segments/vip/members", {"json": {"add": ["ext-0", "nobody"]}}),
        ("POST", "/v1/segments/vip/members", {"json": {"add": ["ext-0", "ext-5"]}}),
        ("GET", "/v1/segments/vip/export", {}),
        ("GET", "/v1/segments/vip/export?format=jsonl&phone=omit", {}),
        ("POST", "/v1/campaigns", {"json": {"name": "Nudge", "segment": "never-clicked",
                                            "template": "Hi https://shop.example.com/n"}}),
        ("POST", "/v1/segments", {"json": {"name": "Gone", "filter": {"opted_in": False}}}),
        ("POST", "/v1/campaigns", {"json": {"name": "Bad", "segment": "gone",
                                            "template": "Hi https://shop.example.com/n"}}),
    ])  # fmt: skip
    assert ok(vip, 201)["size"] == 0
    problem(unknown_member, 422, "/add/1")
    assert ok(members) == {"added": 2, "removed": 0, "size": 1}  # ext-5 is opted out
    lines = csv.text.splitlines()
    assert lines[0].startswith("external_id,phone,first_name,country,opted_out,score")
    assert lines[1].startswith("ext-0,+14155550000,N0,US,false,")
    (row,) = [json.loads(x) for x in jsonl.text.splitlines()]
    assert row["external_id"] == "ext-0" and "phone" not in row and row["clicks"] == 1
    assert ok(camp, 201)["slug"] == "nudge" and ok(camp, 201)["segment"] == "never-clicked"
    assert ok(out_seg, 201)["sendable"] is False and ok(out_seg, 201)["size"] == 1
    problem(out_camp, 422, "segment")
    used, own, gone, after = api.calls([
        ("DELETE", "/v1/segments/never-clicked", {}),
        ("DELETE", "/v1/segments/uk-gold", {}),
        ("DELETE", "/v1/segments/vip", {}),
        ("GET", "/v1/segments/vip", {}),
    ])  # fmt: skip
    problem(used, 409, "segment")
    assert own.status_code == 204 and gone.status_code == 204
    problem(after, 404, "segment")


def test_segments_cli(api: Api, database_url: str, tmp_path: Path) -> None:
    _world(Repos.on(api.container.engine), tmp_path, api.ws)
    slug = api.ws.slug
    r = _run(database_url, tmp_path, "segments", "list", "-w", slug, "--json")
    assert r.returncode == 0, r.stderr
    assert {x["slug"]: x["size"] for x in json.loads(r.stdout)}["never-clicked"] == 4
    r = _run(database_url, tmp_path, "segments", "create", "Late", "-w", slug, "--filter",
             '{"no_click_days": "soon"}')  # fmt: skip
    assert r.returncode == 2 and "/filter/no_click_days" in r.stderr, r.stderr
    r = _run(database_url, tmp_path, "segments", "create", "Late", "-w", slug, "--filter", "{")
    assert r.returncode == 2 and "--filter" in r.stderr
    r = _run(database_url, tmp_path, "segments", "create", "Gold", "-w", slug, "--filter",
             '{"attributes": {"plan": "gold"}, "clicked": true}', "--json")  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["size"] == 2  # c0 and c2 (c4, c6 never clicked)
    r = _run(database_url, tmp_path, "segments", "create", "Picked", "--static", "-w", slug)
    assert r.returncode == 0, r.stderr
    r = _run(database_url, tmp_path, "segments", "add", "picked", "ext-1", "ext-9", "-w", slug)
    assert r.returncode == 2 and "ext-9" in r.stderr
    r = _run(database_url, tmp_path, "segments", "add", "picked", "ext-1", "ext-2", "-w", slug)
    assert r.returncode == 0 and "2 added" in r.stdout, r.stderr
    out = tmp_path / "picked.csv"
    r = _run(database_url, tmp_path, "segments", "export", "picked", "-w", slug, "-o", str(out))
    assert r.returncode == 0, r.stderr
    assert [x.split(",")[0] for x in out.read_text().splitlines()] == ["external_id", "ext-1",
                                                                       "ext-2"]  # fmt: skip
    r = _run(database_url, tmp_path, "segments", "delete", "engaged", "-w", slug)
    assert r.returncode == 4
    r = _run(database_url, tmp_path, "segments", "show", "nothing", "-w", slug)
    assert r.returncode == 3
