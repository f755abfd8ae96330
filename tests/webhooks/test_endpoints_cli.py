"""`clicktrail webhooks add|list|show|update|disable|enable|rotate-secret|remove`, run as real
processes on SQLite and PostgreSQL: the secret printed alone on stdout, lists without secrets,
bad input refused with a message naming the field, a non-zero exit and nothing written."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa

from clicktrail.storage import tables as t
from factories import PYTHONPATH, Repos, make_workspace

CLICKTRAIL = str(Path(sys.executable).with_name("clicktrail"))
URL = "https://crm.example.com/hooks"


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
        q = sa.select(sa.func.count()).select_from(t.webhook_endpoints)
        return int(conn.execute(q).scalar_one())


def test_add_list_change_rotate_remove(store: Repos, database_url: str, tmp_path: Path) -> None:
    ws = make_workspace(store)
    make_workspace(store)
    r = _run(database_url, tmp_path, "webhooks", "add", URL, "-w", ws.slug, "-e", "click.created",
             "-e", "contact.opted_out", "--humans-only", "--description", "CRM")  # fmt: skip
    assert r.returncode == 0, r.stderr
    secret = r.stdout.strip()
    assert secret.startswith("whsec_") and "\n" not in secret
    r = _run(database_url, tmp_path, "webhooks", "list", "-w", ws.slug, "--json")
    assert r.returncode == 0, r.stderr
    (ep,) = json.loads(r.stdout)
    assert secret not in r.stdout
    assert (ep["url"], ep["events"], ep["humans_only"], ep["state"]) == (
        URL, ["click.created", "contact.opted_out"], True, "enabled",
    )  # fmt: skip
    r = _run(database_url, tmp_path, "webhooks", "disable", ep["id"], "-w", ws.slug, "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["state"] == "disabled", r.stderr
    r = _run(database_url, tmp_path, "webhooks", "rotate-secret", ep["id"], "-w", ws.slug,
             "--grace", "1h")  # fmt: skip
    assert r.returncode == 0, r.stderr
    new = r.stdout.strip()
    assert new.startswith("whsec_") and new != secret and "signs too until" in r.stderr
    r = _run(database_url, tmp_path, "webhooks", "show", ep["id"], "-w", ws.slug, "--secret")
    shown = json.loads(r.stdout)
    assert shown["secret"] == new and shown["previous_secret_until"] is not None
    r = _run(database_url, tmp_path, "webhooks", "remove", ep["id"], "-w", ws.slug)
    assert r.returncode == 0 and _count(store) == 0, r.stderr


def test_bad_input_exits_non_zero_and_writes_nothing(
    store: Repos, database_url: str, tmp_path: Path
) -> None:
    ws = make_workspace(store)
    cases = [
        (("webhooks", "add", "https://127.0.0.1/h", "-e", "click.created"), "url"),
        (("webhooks", "add", "http://crm.example.com/h", "-e", "click.created"), "https"),
        (("webhooks", "add", URL, "-e", "click.nope"), "click.nope"),
        (("webhooks", "add", URL), "at least one event type"),
        (("webhooks", "show", "ep_missing"), "not found"),
    ]
    for args, words in cases:
        r = _run(database_url, tmp_path, *args, "-w", ws.slug)
        assert r.returncode in (2, 3), (args, r.stdout, r.stderr)
        assert words in r.stderr, (args, r.stderr)
    assert _count(store) == 0
