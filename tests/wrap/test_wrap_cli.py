"""`clicktrail wrap` as a real process on SQLite and PostgreSQL: JSON lines in, one result line
out per line; running it again returns the same messages; a bad line names itself and nothing
is written."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa

from clicktrail.storage import tables
from factories import PYTHONPATH, Repos, make_contacts, make_domain, make_workspace

CLICKTRAIL = str(Path(sys.executable).with_name("clicktrail"))


def run(database_url: str, tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": os.environ.get("PATH", ""), **PYTHONPATH, "HOME": str(tmp), "NO_COLOR": "1", "TERM": "dumb",
        "COLUMNS": "200", "CLICKTRAIL_DATABASE_URL": database_url,
        "CLICKTRAIL_DATA_DIR": str(tmp / "data"),
    }  # fmt: skip
    return subprocess.run(
        [CLICKTRAIL, *args], cwd=tmp, env=env, capture_output=True, text=True, timeout=60,
        check=False,
    )  # fmt: skip


def messages(store: Repos) -> int:
    with store.engine.connect() as conn:
        return int(
            conn.execute(sa.select(sa.func.count()).select_from(tables.messages)).scalar_one()
        )


def test_wrap_json_lines(store: Repos, database_url: str, tmp_path: Path) -> None:
    ws = make_workspace(store)
    make_domain(store, ws, "sms.example.com")
    make_contacts(store, ws, 1)  # ext-0
    lines = tmp_path / "in.jsonl"
    lines.write_text(
        json.dumps({"to": "+14155550100", "text": "A https://a.example.com/1", "client_ref": "1"})
        + "\n\n"
        + json.dumps({"external_id": "ext-0", "text": "B https://a.example.com/2"})
        + "\n"
        + json.dumps({"to": "4155550102", "text": "C"})
        + "\n"
    )
    args = ["wrap", str(lines), "--campaign", "orders", "--create", "Orders", "--region", "US"]
    r = run(database_url, tmp_path, *args)
    assert r.returncode == 0, r.stderr
    out = [json.loads(x) for x in r.stdout.splitlines()]
    assert [x["line"] for x in out] == [1, 3, 4]
    assert [x["to"] for x in out] == ["+14155550100", "+14155550000", "+14155550102"]
    assert out[0]["text"] == "A " + out[0]["links"][0]["short_url"]
    assert out[0]["links"][0]["short_url"].startswith("https://sms.example.com/c/")
    assert all(x["created"] and x["status"] == "queued" for x in out)
    assert "3 wrapped" in " ".join(r.stderr.split())
    again = run(database_url, tmp_path, *args)
    assert again.returncode == 0, again.stderr
    same = [json.loads(x) for x in again.stdout.splitlines()]
    assert [x["message_id"] for x in same] == [x["message_id"] for x in out]
    assert not any(x["created"] for x in same)
    assert messages(store) == 3


def test_bad_lines_are_named_and_nothing_is_wrapped(
    store: Repos, database_url: str, tmp_path: Path
) -> None:
    ws = make_workspace(store)
    make_domain(store, ws, "sms.example.com")
    lines = tmp_path / "in.jsonl"
    lines.write_text('{"to": "+14155550100", "text": "ok"}\n{"to": "12", "text": "x"}\n'
                     '{"to": "+14155550101", "txt": "typo"}\nnot json\n')  # fmt: skip
    r = run(database_url, tmp_path, "wrap", str(lines), "-c", "orders", "--create", "Orders")
    assert r.returncode == 2, (r.stdout, r.stderr)
    msg = " ".join(r.stderr.split())
    assert "line 3: txt" in msg and "line 4" in msg and "Traceback" not in r.stderr
    r = run(database_url, tmp_path, "wrap", str(lines.with_name("none.jsonl")), "-c", "x")
    assert r.returncode == 2
    lines.write_text('{"to": "+14155550100", "text": "ok"}\n{"to": "12", "text": "x"}\n')
    r = run(database_url, tmp_path, "wrap", str(lines), "-c", "orders", "--create", "Orders")
    assert r.returncode == 2 and "line 2: to" in " ".join(r.stderr.split())
    assert messages(store) == 0
    lines.write_text('{"to": "+14155550100", "text": "ok"}\n')
    r = run(database_url, tmp_path, "wrap", str(lines), "-c", "nope")
    assert r.returncode == 3 and "campaign 'nope' not found" in r.stderr  # no --create
    assert messages(store) == 0
