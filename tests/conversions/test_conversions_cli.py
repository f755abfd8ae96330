"""`clicktrail conversions list|import|rejected|event-mode`, `postback-secret` and
`publishable-key`, run as real processes (this worktree's code) on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from conversion_world import make_world

from inprocess_api import Api, ok

CLICKTRAIL = str(Path(sys.executable).with_name("clicktrail"))


def run(api: Api, tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": os.environ.get("PATH", ""), "HOME": str(tmp), "NO_COLOR": "1", "TERM": "dumb",
        "COLUMNS": "250", "PYTHONPATH": os.environ.get("PYTHONPATH", ""),
        "CLICKTRAIL_DATABASE_URL": api.container.settings.resolved_database_url,
        "CLICKTRAIL_DATA_DIR": str(tmp / "data"), "CLICKTRAIL_WORKSPACE": api.ws.slug,
    }  # fmt: skip
    return subprocess.run([CLICKTRAIL, *args], cwd=tmp, env=env, capture_output=True, text=True,
                          timeout=60, check=False)  # fmt: skip


def test_import_checks_every_line_first_then_counts(api: Api, tmp_path: Path) -> None:
    w = make_world(api, tmp_path)
    cid, cid2 = w.clicks(2)
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "click_id,contact_external_id,event,value,currency,txn\n"
        f"{cid},,purchase,10,USD,o-1\n"
        "AAAAAAAAAAAAAAAA,,purchase,5,USD,o-2\n"
        f"{cid2},,purchase,5,DOLLARS,o-3\n"
        ",ext-2,signup,,,\n"
    )
    r = run(api, tmp_path, "conversions", "import", str(bad))
    assert r.returncode == 2, r.stderr
    assert "2 bad line(s); nothing was imported" in r.stderr
    assert "line 3: click_id" in r.stderr and "unknown_click" in r.stderr
    assert "line 4: currency" in r.stderr
    assert ok(api.call("GET", "/v1/conversions"))["items"] == []
    good = tmp_path / "good.jsonl"
    good.write_text(
        json.dumps({"click_id": cid, "event": "purchase", "value": "10", "currency": "USD",
                    "txn": "o-1"}) + "\n\n"
        + json.dumps({"contact": {"external_id": "ext-2"}, "event": "signup"}) + "\n"
    )  # fmt: skip
    r = run(api, tmp_path, "conversions", "import", str(good), "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == {"lines": 2, "accepted": 2}
    r = run(api, tmp_path, "conversions", "import", str(good))
    assert r.returncode == 0 and "2 line(s): 2 duplicate" in r.stdout, r.stdout + r.stderr
    r = run(api, tmp_path, "conversions", "list", "--json", "--source", "import")
    assert [(x["event"], x["value"], x["contact"]) for x in json.loads(r.stdout)] == [
        ("purchase", "10", "ext-0"), ("signup", None, "ext-2")
    ]  # fmt: skip
    assert "purchase" in run(api, tmp_path, "conversions", "list").stdout
    r = run(api, tmp_path, "conversions", "import", str(tmp_path / "nope.csv"))
    assert r.returncode != 0
    odd = tmp_path / "odd.csv"
    odd.write_text("click_id,amount\nx,1\n")
    r = run(api, tmp_path, "conversions", "import", str(odd))
    assert r.returncode == 2 and "unknown column 'amount'" in r.stderr
    # Unreadable lines are named with the others, in file order (one reader: services/imports).
    mixed = tmp_path / "mixed.jsonl"
    mixed.write_text(
        '{"click_id": "' + cid2 + '", "event": "x", "value": "1", "currency": "DOLLARS"}\n{oops\n'
    )
    r = run(api, tmp_path, "conversions", "import", str(mixed))
    assert r.returncode == 2 and "2 bad line(s); nothing was imported" in r.stderr, r.stderr
    assert r.stderr.index("line 1: currency") < r.stderr.index("line 2: not JSON")
    extra = tmp_path / "extra.csv"
    extra.write_text("click_id,event\nx,signup,surplus\n")
    r = run(api, tmp_path, "conversions", "import", str(extra))
    assert r.returncode == 2 and "line 2: more cells than the header has columns" in r.stderr
    assert len(ok(api.call("GET", "/v1/conversions"))["items"]) == 2


def test_event_modes_secrets_and_the_rejected_log(api: Api, tmp_path: Path) -> None:
    r = run(api, tmp_path, "conversions", "event-mode", "Renewal", "count")
    assert r.returncode == 0 and r.stdout.strip() == "renewal: count", r.stderr
    assert run(api, tmp_path, "conversions", "event-mode", "renewal").stdout.strip() == (
        "renewal: count"
    )
    assert run(api, tmp_path, "conversions", "event-mode", "lead").stdout.strip() == "lead: ignore"
    r = run(api, tmp_path, "conversions", "event-mode", "lead", "twice")
    assert r.returncode == 2 and "twice" in r.stderr
    r = run(api, tmp_path, "postback-secret", "create", "tune", "--default-currency", "usd")
    assert r.returncode == 0, r.stderr
    secret = r.stdout.strip()
    assert secret.startswith("pbs_") and "not shown again" in r.stderr
    (listed,) = json.loads(run(api, tmp_path, "postback-secret", "list", "--json").stdout)
    assert listed["default_currency"] == "USD" and secret not in json.dumps(listed)
    unknown, wrong = api.calls([
        ("GET", f"/postback?cid=AAAAAAAAAAAAAAAA&secret={secret}", {"key": None}),
        ("GET", "/postback?cid=x&secret=wrong", {"key": None}),
    ])  # fmt: skip
    assert (unknown.status_code, wrong.status_code) == (422, 401)
    (row,) = json.loads(run(api, tmp_path, "conversions", "rejected", "--json").stdout)
    assert row["reason"] == "unknown_click" and secret not in row["query"]
    (anon,) = json.loads(run(api, tmp_path, "conversions", "rejected", "--no-workspace",
                             "--json").stdout)  # fmt: skip
    assert anon["reason"] == "unauthorized" and "secret=***" in anon["query"]
    r = run(api, tmp_path, "postback-secret", "revoke", listed["id"])
    assert r.returncode == 0 and "revoked" in r.stdout
    assert run(api, tmp_path, "postback-secret", "revoke", "pbk_nope").returncode == 3
    r = run(api, tmp_path, "publishable-key", "create", "site")
    assert r.returncode == 0 and r.stdout.startswith("pk_")
    assert "site" in run(api, tmp_path, "publishable-key", "list").stdout
