"""`clicktrail opt-outs` as a real process on SQLite and PostgreSQL: manual changes, a
suppression list, the history and keyword replies."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from factories import PYTHONPATH, Repos, make_contacts, make_workspace, phone

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


def test_opt_outs_commands(store: Repos, database_url: str, tmp_path: Path) -> None:
    ws = make_workspace(store)
    make_contacts(store, ws, 2)

    def cli(*args: str) -> str:
        r = run(database_url, tmp_path, "opt-outs", *args)
        assert r.returncode == 0, (r.stdout, r.stderr)
        return r.stdout

    assert "opted out (changed)" in cli("add", "ext-0", "--note", "called us")
    assert store.contacts.find_contact(ws.id, phone(0)).opted_out  # type: ignore[union-attr]
    assert "opted in (changed)" in cli("remove", phone(0))
    history = json.loads(cli("history", phone(0), "--json"))
    assert history["opted_out"] is False
    assert [(e["opted_out"], e["source"]) for e in history["events"]] == [
        (False, "cli"), (True, "cli"),
    ]  # fmt: skip
    assert history["events"][1]["note"] == "called us"

    lst = tmp_path / "suppress.csv"
    lst.write_text(f"name,phone\nA,{phone(1)}\nX,(415) 555-0177\n")
    assert "2 phone(s): 2 opted out now" in cli("import", str(lst), "--region", "US")
    assert store.contacts.find_contact(ws.id, "+14155550177").opted_out  # type: ignore[union-attr]
    assert json.loads(cli("history", phone(1), "--json"))["events"][0]["source"] == "import"
    lst.write_text(f"{phone(1)}\nnot a phone\n")
    r = run(database_url, tmp_path, "opt-outs", "import", str(lst))
    assert r.returncode == 2 and "line 2" in r.stderr

    r = run(database_url, tmp_path, "opt-outs", "remove", "+14155550199")
    assert r.returncode == 2 and "no contact has the phone" in " ".join(r.stderr.split())

    cli("replies", "--help-reply", "Acme: help at acme.com. STOP to stop.")
    replies = json.loads(cli("replies", "--opt-out-reply", "Bye", "--json"))
    assert replies == {"help": "Acme: help at acme.com. STOP to stop.", "opt_out": "Bye",
                       "opt_in": None}  # fmt: skip
    assert json.loads(cli("replies", "--help-reply", "", "--json"))["help"] is None
