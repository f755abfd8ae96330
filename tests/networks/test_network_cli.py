"""`clicktrail bots networks` and the commands that use the lists (`explain --workspace`,
`reclassify`), run as real processes on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa
from test_network_verdicts import CHROME, CHROME_DESKTOP, DELIVERED, LISTED_IP, S, _rec, _world

from clicktrail.bootstrap import SignalsClassifier
from clicktrail.services import clicks
from clicktrail.storage import tables
from factories import PYTHONPATH, Repos, make_workspace

CLICKTRAIL = str(Path(sys.executable).with_name("clicktrail"))


def _run(database_url: str, tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": os.environ.get("PATH", ""), **PYTHONPATH, "HOME": str(tmp), "NO_COLOR": "1", "TERM": "dumb",
        "COLUMNS": "200", "CLICKTRAIL_DATABASE_URL": database_url,
        "CLICKTRAIL_DATA_DIR": str(tmp / "data"),
    }  # fmt: skip
    return subprocess.run([CLICKTRAIL, *args], cwd=tmp, env=env, capture_output=True, text=True,
                          timeout=60, check=False)  # fmt: skip


def _ranges(store: Repos) -> int:
    with store.engine.connect() as conn:
        return int(
            conn.execute(sa.select(sa.func.count()).select_from(tables.network_ranges)).scalar_one()
        )


def test_add_list_remove_and_bad_input(store: Repos, database_url: str, tmp_path: Path) -> None:
    ws = make_workspace(store)
    other = make_workspace(store)
    aws = tmp_path / "ip-ranges.json"
    aws.write_text(json.dumps({"syncToken": "1", "prefixes": [
        {"ip_prefix": "3.5.140.0/22", "service": "EC2"}], "ipv6_prefixes": []}))  # fmt: skip
    bad = tmp_path / "carriers.txt"
    bad.write_text("198.51.100.0/24\n203.0.113.0/33\n")
    # Bad input: exit 2, the file, line and field named, nothing written.
    r = _run(database_url, tmp_path, "bots", "networks", "add", "-w", ws.slug, "--list", "mix",
             str(aws), str(bad))  # fmt: skip
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert f"{bad}: line 2: cidr" in " ".join(r.stderr.split()) and "Traceback" not in r.stderr
    r = _run(database_url, tmp_path, "bots", "networks", "add", "-w", ws.slug, "--list", "mix",
             "--kind", "planet", str(aws))  # fmt: skip
    assert r.returncode == 2 and "kind 'planet' is not one of" in r.stderr
    assert _ranges(store) == 0
    # Good input.
    r = _run(database_url, tmp_path, "bots", "networks", "add", "-w", ws.slug, "--list", "clouds",
             str(aws), "192.0.2.0/24", "--json")  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == {"list": "clouds", "added": 2, "updated": 0, "unchanged": 0}
    r = _run(database_url, tmp_path, "bots", "networks", "list", "-w", ws.slug, "--list",
             "clouds", "--json")  # fmt: skip
    assert {(x["cidr"], x["kind"], x["owner"]) for x in json.loads(r.stdout)} == {
        ("3.5.140.0/22", "hosting", "Amazon AWS"), ("192.0.2.0/24", "hosting", ""),
    }  # fmt: skip
    r = _run(database_url, tmp_path, "bots", "networks", "list", "-w", other.slug, "--json")
    assert json.loads(r.stdout) == []  # another workspace sees none of it
    r = _run(database_url, tmp_path, "bots", "networks", "remove", "-w", ws.slug, "--list",
             "clouds", "192.0.2.7/24")  # fmt: skip
    assert r.returncode == 0 and "removed 192.0.2.0/24" in r.stdout
    r = _run(database_url, tmp_path, "bots", "networks", "remove", "-w", ws.slug, "--list", "nope")
    assert r.returncode == 3 and "not found" in r.stderr
    r = _run(database_url, tmp_path, "bots", "networks", "remove", "-w", ws.slug, "--list",
             "clouds")  # fmt: skip
    assert r.returncode == 0 and "(1 ranges)" in r.stdout
    assert _ranges(store) == 0


def test_explain_and_reclassify_use_the_workspace_lists(
    store: Repos, engine: sa.Engine, database_url: str, tmp_path: Path
) -> None:
    ws, cp, targets = _world(store, engine, tmp_path, "a.example.com")
    store.clicks.insert_clicks([_rec("c", targets[0], DELIVERED + 600 * S, LISTED_IP, CHROME_DESKTOP,
                              CHROME)])  # fmt: skip
    clicks.ClassifyNew(store.clicks, SignalsClassifier())()
    assert store.reports.campaign_report(cp).total_clicks == 1
    headers = [a for k, v in CHROME.items() if not k.startswith("_") for a in ("-H", f"{k}: {v}")]
    explain = ["bots", "explain", "--user-agent", CHROME_DESKTOP, "--ip", LISTED_IP, *headers]
    r = _run(database_url, tmp_path, *explain)
    assert json.loads(r.stdout)["verdict"] == "human", r.stderr
    r = _run(database_url, tmp_path, "bots", "networks", "add", "-w", ws.slug, "--list", "dc",
             "198.51.100.0/24")  # fmt: skip
    assert r.returncode == 0, r.stderr
    r = _run(database_url, tmp_path, *explain, "--workspace", ws.slug)
    assert json.loads(r.stdout) == {"verdict": "scanner", "score": 60, "reasons": ["NET_HOSTING"]}
    r = _run(database_url, tmp_path, "bots", "reclassify", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["verdict_changes"] == 1
    report = store.reports.campaign_report(cp)
    assert (report.total_clicks, report.raw_total_clicks) == (0, 1)
