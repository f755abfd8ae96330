"""CSV exports neutralise spreadsheet formulas in text a clicker or sender controls (OWASP CSV
injection); JSON lines and Parquet keep the text as it came."""

from __future__ import annotations

import csv
import io
import json

import pyarrow.parquet as pq
import pytest
from hypothesis import given
from hypothesis import strategies as st

from clicktrail.domain.bots.model import Verdict
from clicktrail.services import exports
from clicktrail.services.ports import ClickRecord
from factories import Repos
from test_exports import World, _targets, export
from test_exports import world as world

HOSTILE = [
    '=HYPERLINK("http://evil.example/","x")',
    "+cmd|' /C calc'!A0",
    "-2+3+cmd|' /C calc'!A0",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "\t=1+1",
    "\r=1+1",
]


def _store_clicks(w: World, user_agents: list[str]) -> None:
    targets = _targets(w.container.engine, w.a)
    verdict = Verdict("human", 0, (), "1")
    rows = [
        ClickRecord(
            f"x{i}", targets[0].token, w.a.id, targets[0].link_id, targets[0].message_id,
            targets[0].contact_id, 1_900_000_000_000_000 + i, "GET", "198.51.100.7", ua,
            {"accept": "*/*"},
        )
        for i, ua in enumerate(user_agents)
    ]  # fmt: skip
    Repos.on(w.container.engine).clicks.insert_clicks(rows, [verdict] * len(rows))


def test_csv_cells_that_start_a_formula_are_neutralised(world: World) -> None:
    _store_clicks(world, HOSTILE)
    since = "2030-03-17T17:46:40Z"
    rows = list(csv.DictReader(io.StringIO(export(world, since=since).decode(), newline="")))
    assert [r["user_agent"] for r in rows] == ["'" + ua for ua in HOSTILE]
    # An E.164 phone is a plain number, not a formula: kept as it is.
    assert all(r["phone"].startswith("+1415") for r in rows)
    # JSON lines and Parquet are not opened by spreadsheets as formulas: unchanged.
    lines = export(world, format="jsonl", since=since).decode().splitlines()
    assert [json.loads(line)["user_agent"] for line in lines] == HOSTILE
    table = pq.read_table(io.BytesIO(export(world, format="parquet", since=since)))
    assert table.column("user_agent").to_pylist() == HOSTILE


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("=1+1", "'=1+1"),
        ("+14155550100", "+14155550100"),
        ("-1", "-1"),
        ("-1.5", "-1.5"),
        ("-", "'-"),
        ("+1 415", "'+1 415"),
        ("@home", "'@home"),
        ("Mozilla/5.0 =x", "Mozilla/5.0 =x"),
        ("", ""),
    ],
)
def test_neutralise_formula(text: str, expected: str) -> None:
    assert exports.neutralise_formula(text) == expected


@given(st.text())
def test_no_neutralised_cell_starts_a_formula(text: str) -> None:
    out = exports.neutralise_formula(text)
    assert out == text or out == "'" + text
    if out.startswith(exports.FORMULA_PREFIXES):
        assert out.lstrip("+-").replace(".", "", 1).isdigit()
