"""`clicktrail keys create|list|revoke|rotate`, run as real processes on SQLite and PostgreSQL:
the secret printed once, lists without secrets, bad input refused with a clear message and a
non-zero exit and nothing written, and the operator may revoke a workspace's last key."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa

from clicktrail.services import keys
from clicktrail.services.clock import now_us
from clicktrail.storage import tables as t
from factories import PYTHONPATH, Repos, make_api_key, make_workspace

CLICKTRAIL = str(Path(sys.executable).with_name("clicktrail"))


def _run(database_url: str, tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": os.environ.get("PATH", ""), **PYTHONPATH, "HOME": str(tmp), "NO_COLOR": "1", "TERM": "dumb",
        "COLUMNS": "200", "CLICKTRAIL_DATABASE_URL": database_url,
        "CLICKTRAIL_DATA_DIR": str(tmp / "data"),
    }  # fmt: skip
    return subprocess.run([CLICKTRAIL, *args], cwd=tmp, env=env, capture_output=True, text=True,
                          timeout=60, check=False)  # fmt: skip


def _rows(store: Repos) -> list[sa.Row[tuple[object, ...]]]:
    with store.engine.connect() as conn:
        return list(conn.execute(sa.select(t.api_keys).order_by(t.api_keys.c.id)).all())


def _live(store: Repos, key: str) -> bool:
    return keys.workspace_for_hash(store.keys, keys.hash_key(key), now_us()) is not None


def test_create_list_revoke_rotate(store: Repos, database_url: str, tmp_path: Path) -> None:
    ws = make_workspace(store)
    other = make_workspace(store)
    theirs = make_api_key(store, other)
    r = _run(database_url, tmp_path, "keys", "create", "-w", ws.slug, "--name", "mailer",
             "--expires-in", "90d")  # fmt: skip
    assert r.returncode == 0, r.stderr
    secret = r.stdout.strip()
    assert secret.startswith("ct_") and "\n" not in secret and "not shown again" in r.stderr
    assert _live(store, secret)
    r = _run(database_url, tmp_path, "keys", "list", "-w", ws.slug, "--json")
    (listed,) = json.loads(r.stdout)
    assert (listed["name"], listed["state"], listed["prefix"]) == ("mailer", "active", secret[:10])
    assert listed["expires_at"] is not None and listed["last_used_at"] is not None  # _live
    table = _run(database_url, tmp_path, "keys", "list", "-w", ws.slug).stdout
    for text in (r.stdout, table):
        assert secret not in text and keys.hash_key(secret) not in text
    assert listed["id"] in table and "mailer" in table
    # Rotate with a grace period: both work until it ends; the new key keeps the name.
    r = _run(database_url, tmp_path, "keys", "rotate", listed["id"], "-w", ws.slug,
             "--grace", "1h", "--json")  # fmt: skip
    assert r.returncode == 0, r.stderr
    rotated = json.loads(r.stdout)
    new = rotated["new"]["key"]
    assert rotated["new"]["name"] == "mailer" and rotated["old"]["state"] == "active"
    assert _live(store, secret) and _live(store, new)
    # Revoke by the key itself (found in a log), then by id: the operator may leave none.
    r = _run(database_url, tmp_path, "keys", "revoke", secret, "-w", ws.slug)
    assert r.returncode == 0 and secret not in r.stdout + r.stderr and listed["id"] in r.stdout
    r = _run(database_url, tmp_path, "keys", "revoke", rotated["new"]["id"], "-w", ws.slug)
    assert r.returncode == 0, r.stderr
    assert not _live(store, secret) and not _live(store, new)
    assert _live(store, theirs)  # another workspace's key is untouched
    states = json.loads(_run(database_url, tmp_path, "keys", "list", "-w", ws.slug,
                             "--json").stdout)  # fmt: skip
    assert [k["state"] for k in states] == ["revoked", "revoked"]


def test_bad_input_is_refused_and_writes_nothing(
    store: Repos, database_url: str, tmp_path: Path
) -> None:
    ws = make_workspace(store)
    other = make_workspace(store)
    theirs = make_api_key(store, other)
    before = _rows(store)
    for args, code, words in (
        (["create", "--expires-in", "soon"], 2, "expires_in: 'soon' is not a duration"),
        (["create", "--expires-in", "-3d"], 2, "is not a duration"),
        (["create", "--expires-at", "2020-01-01"], 2, "expires_at: the key would be expired"),
        (["create", "--expires-at", "2999-01-01", "--expires-in", "1d"], 2, "not both"),
        (["create", "--name", "x" * 201], 2, "key name must be at most 200"),
        (["revoke", "key_nope"], 3, "API key 'key_nope' not found"),
        (["revoke", theirs], 3, "not found in this workspace"),
        (["rotate", "key_nope"], 3, "not found"),
        (["rotate", "key_nope", "--grace", "40d"], 2, "grace: at most 30 days"),
    ):
        r = _run(database_url, tmp_path, "keys", *args, "-w", ws.slug)
        assert r.returncode == code, (args, r.stdout, r.stderr)
        assert words in " ".join(r.stderr.split()), (args, r.stderr)
        assert "Traceback" not in r.stderr and r.stdout == ""
        assert theirs[3:] not in r.stderr  # a secret is never echoed back
    # Without -w and several workspaces: which one is asked.
    r = _run(database_url, tmp_path, "keys", "list")
    assert r.returncode == 3 and "--workspace" in r.stderr
    assert _rows(store) == before
    # A revoked key cannot be rotated (exit 4).
    r = _run(database_url, tmp_path, "keys", "revoke", theirs, "-w", other.slug)
    assert r.returncode == 0
    r = _run(database_url, tmp_path, "keys", "rotate", theirs, "-w", other.slug)
    assert r.returncode == 4 and "is revoked" in r.stderr
