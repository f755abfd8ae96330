"""`clicktrail attribution` as a real process on SQLite and PostgreSQL: show, set, rerun and
report over scenario.py; bad input exits non-zero and writes nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from scenario import build

from factories import PYTHONPATH, Repos

CLICKTRAIL = str(Path(sys.executable).with_name("clicktrail"))


def _run(database_url: str, tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": os.environ.get("PATH", ""), "HOME": str(tmp), "NO_COLOR": "1", "TERM": "dumb",
        "COLUMNS": "200", "CLICKTRAIL_DATABASE_URL": database_url,
        "CLICKTRAIL_DATA_DIR": str(tmp / "data"), **PYTHONPATH,
    }  # fmt: skip
    return subprocess.run([CLICKTRAIL, *args], cwd=tmp, env=env, capture_output=True, text=True,
                          timeout=60, check=False)  # fmt: skip


def test_show_set_rerun_report(store: Repos, database_url: str, tmp_path: Path) -> None:
    sc = build(store, tmp_path)
    w = ("-w", sc.ws.slug)
    bad = _run(database_url, tmp_path, "attribution", "set", *w, "--click-window", "2 weeks")
    assert bad.returncode == 2 and "click_window" in bad.stderr
    missing = _run(database_url, tmp_path, "attribution", "show", *w, "--campaign", "nope")
    assert missing.returncode == 3 and "nope" in missing.stderr
    assert sc.queries.attribution_overrides(sc.ws.id) == (None, {})
    shown = _run(database_url, tmp_path, "attribution", "show", *w)
    assert shown.returncode == 0, shown.stderr
    assert "last_click (default)" in shown.stdout and "5d (default)" in shown.stdout
    done = _run(database_url, tmp_path, "attribution", "set", *w, "--campaign", "summer",
                "--delivery-window", "1h", "--json")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["source"]["delivery_window"] == "campaign"
    rerun = _run(database_url, tmp_path, "attribution", "rerun", *w, "--json")
    assert rerun.returncode == 0, rerun.stderr
    assert json.loads(rerun.stdout)["attributed"] == 7
    report = _run(database_url, tmp_path, "attribution", "report", "summer", *w, "--model",
                  "last_touch", "--json")  # fmt: skip
    assert report.returncode == 0, report.stderr
    r = json.loads(report.stdout)
    # B's delivery window is 1 hour now: no view-through for X2 and X3, only c0's clicks.
    assert (r["conversions"], r["view_conversions"]) == (2, 0)
    table = _run(database_url, tmp_path, "attribution", "report", "summer", *w)
    assert table.returncode == 0, table.stderr
    assert "USD 110.00" in table.stdout and "CTCR" in table.stdout
    assert "multi-touch" not in table.stdout
    # --multi-touch adds the campaign's share of `attribution channels`, exactly.
    multi = _run(database_url, tmp_path, "attribution", "report", "summer", *w, "--model",
                 "last_touch", "--multi-touch", "--half-life", "36h", "--json")  # fmt: skip
    assert multi.returncode == 0, multi.stderr
    m = json.loads(multi.stdout)
    assert "multi_touch" not in r and {k: v for k, v in m.items() if k != "multi_touch"} == r
    channels = _run(database_url, tmp_path, "attribution", "channels", *w, "--half-life", "36h",
                    "--json")  # fmt: skip
    assert channels.returncode == 0, channels.stderr
    c = json.loads(channels.stdout)
    (summer,) = [x for x in c["campaigns"] if (x["channel"], x["campaign"]) == ("sms", "summer")]
    assert m["multi_touch"] == {"settings": c["settings"],
                                **{k: v for k, v in summer.items()
                                   if k not in ("channel", "campaign")}}  # fmt: skip
    assert m["multi_touch"]["settings"]["half_life"] == "36h"
    shown = _run(database_url, tmp_path, "attribution", "report", "summer", *w, "--multi-touch")
    assert shown.returncode == 0, shown.stderr
    assert "multi-touch credit of summer" in shown.stdout and "position_based" in shown.stdout
    bad_hl = _run(database_url, tmp_path, "attribution", "report", "summer", *w, "--multi-touch",
                  "--half-life", "2y")  # fmt: skip
    assert bad_hl.returncode == 2 and "half_life" in bad_hl.stderr


def test_channels_and_the_conversion_paths_export(
    store: Repos, database_url: str, tmp_path: Path
) -> None:
    sc = build(store, tmp_path)
    w = ("-w", sc.ws.slug)
    bad = _run(database_url, tmp_path, "attribution", "channels", *w, "--half-life", "0h")
    assert bad.returncode == 2 and "half_life" in bad.stderr
    shown = _run(database_url, tmp_path, "attribution", "channels", *w, "--json")
    assert shown.returncode == 0, shown.stderr
    data = json.loads(shown.stdout)
    # scenario.py without touchpoints: every credited touch is an SMS touch; X6 has none.
    assert (data["conversions"], data["with_touches"]) == (7, 6)
    (sms,) = data["channels"]
    assert sms["channel"] == "sms" and sms["credit"]["linear"] == pytest.approx(6)
    table = _run(database_url, tmp_path, "attribution", "channels", *w)
    assert table.returncode == 0 and "credit per channel" in table.stdout
    out = tmp_path / "paths.parquet"
    done = _run(database_url, tmp_path, "export", "conversion-paths", *w, "--format", "parquet",
                "--output", str(out))  # fmt: skip
    assert done.returncode == 0, done.stderr
    rows = pq.read_table(out).to_pylist()
    assert {r["conversion_id"] for r in rows} == {f"cv_{sc.ws.id}_X{i}" for i in range(7)}
    assert sum(r["credit_linear"] or 0 for r in rows) == pytest.approx(6)
