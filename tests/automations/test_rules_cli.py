"""`clicktrail automations add|list|show|enable|disable|remove`, run as real processes on
SQLite and PostgreSQL: the rule as the API shows it, bad input refused with a message naming
the field, exit 2 (bad input) or 3 (not found), and nothing written."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa

from clicktrail.storage import tables as t
from factories import PYTHONPATH, Repos, make_campaign, make_domain, make_workspace

CLICKTRAIL = str(Path(sys.executable).with_name("clicktrail"))


def _run(database_url: str, tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": os.environ.get("PATH", ""), **PYTHONPATH, "HOME": str(tmp), "NO_COLOR": "1",
        "TERM": "dumb", "COLUMNS": "200", "CLICKTRAIL_DATABASE_URL": database_url,
        "CLICKTRAIL_DATA_DIR": str(tmp / "data"),
    }  # fmt: skip
    return subprocess.run([CLICKTRAIL, *args], cwd=tmp, env=env, capture_output=True, text=True,
                          timeout=60, check=False)  # fmt: skip


def _count(store: Repos) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(t.automations)).scalar_one())


def test_add_list_show_disable_remove(store: Repos, database_url: str, tmp_path: Path) -> None:
    ws = make_workspace(store)
    make_domain(store, ws, "sms.example.com")
    make_campaign(store, ws, name="Sale", slug="sale")
    r = _run(database_url, tmp_path, "automations", "add", "Clicked, no order", "-w", ws.slug,
             "--trigger", "clicked_no_conversion", "--campaign", "sale", "--within", "2d",
             "--delay", "1h", "--quiet-hours", "21:00-08:00", "--cap", "1/week",
             "--send", "Still thinking? https://shop.example.com/cart", "--json")  # fmt: skip
    assert r.returncode == 0, r.stderr
    a = json.loads(r.stdout)
    assert a["trigger"] == {"kind": "clicked_no_conversion", "campaign": "sale", "link": None,
                            "within": 172800}  # fmt: skip
    assert a["delay"] == 3600 and a["conditions"]["frequency_cap"] == {"max": 1, "per": "week"}
    r = _run(database_url, tmp_path, "automations", "list", "-w", ws.slug)
    assert r.returncode == 0 and "clicked_no_conversion sale within 2d, then 1h" in r.stdout, (
        r.stdout
    )
    r = _run(database_url, tmp_path, "automations", "disable", a["id"], "-w", ws.slug, "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["enabled"] is False, r.stderr
    r = _run(database_url, tmp_path, "automations", "show", a["id"], "-w", ws.slug)
    assert {**json.loads(r.stdout), "updated_at": None} == {**a, "enabled": False,
                                                            "updated_at": None}  # fmt: skip
    r = _run(database_url, tmp_path, "automations", "remove", a["id"], "-w", ws.slug)
    assert r.returncode == 0 and _count(store) == 0, r.stderr


def test_bad_input_exits_non_zero_and_writes_nothing(
    store: Repos, database_url: str, tmp_path: Path
) -> None:
    ws = make_workspace(store)
    make_domain(store, ws, "sms.example.com")
    make_campaign(store, ws, name="Sale", slug="sale")
    base = ("automations", "add", "r", "--trigger", "clicked")
    cases = [
        ((*base, "--send", "hi"), 2, "needs a campaign"),
        ((*base, "--campaign", "nope", "--send", "hi"), 3, "campaign 'nope' not found"),
        ((*base, "--campaign", "sale"), 2, "give one action"),
        ((*base, "--campaign", "sale", "--send", "hi", "--cap", "3/month"), 2, "COUNT/day"),
        ((*base, "--campaign", "sale", "--send", "hi", "--quiet-hours", "9-5"), 2, "HH:MM"),
        ((*base, "--campaign", "sale", "--send", "hi {shoe}"), 2, "{shoe}"),
        ((*base, "--campaign", "sale", "--webhook", "ep_nothere"), 3, "not found"),
        ((*base, "--campaign", "sale", "--add-to-segment", "engaged"), 2, "saved filter"),
        ((*base, "--campaign", "sale", "--send", "hi", "--segment", "vip"), 3, "'vip' not found"),
        (("automations", "show", "au_missing"), 3, "not found"),
    ]
    for args, code, words in cases:
        r = _run(database_url, tmp_path, *args, "-w", ws.slug)
        assert r.returncode == code, (args, r.stdout, r.stderr)
        assert words in r.stderr, (args, r.stderr)
    assert _count(store) == 0
