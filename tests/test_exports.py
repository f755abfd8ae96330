"""Exports of click events and messages: columns and content in CSV, JSON lines and Parquet,
filters, the salted phone hash, the API and the CLI, and constant memory over many rows."""

from __future__ import annotations

import csv
import gc
import hashlib
import hmac
import io
import json
import shutil
import tracemalloc
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from clicktrail.bootstrap import Container
from clicktrail.cli import export as export_cli
from clicktrail.config import load_settings
from clicktrail.domain.bots.model import Verdict
from clicktrail.domain.errors import InvalidInput, NotFound
from clicktrail.domain.models import Campaign, Workspace
from clicktrail.services import exports
from clicktrail.services.ports import ClickRecord
from clicktrail.storage import tables
from factories import (
    NOW_US,
    Repos,
    make_campaign,
    make_contacts,
    make_domain,
    make_workspace,
    send,
)
from test_api_resources import World as ApiWorld

SALT = "s3cret-salt-of-16+"
HOUR = 3_600_000_000
CLICK_HEADER = [
    "click_id", "at", "campaign_id", "campaign_slug", "message_id", "link", "link_url",
    "link_role", "destination", "external_id", "phone", "method", "is_click", "verdict", "score",
    "reasons", "final", "ip", "user_agent",
]  # fmt: skip


@dataclass
class World:
    container: Container
    ws: Workspace
    a: Campaign
    b: Campaign


def _targets(engine: sa.Engine, campaign: Campaign) -> list[Any]:
    tk = tables.tokens
    with engine.connect() as conn:
        return list(
            conn.execute(
                sa.select(tk.c.token, tk.c.message_id, tk.c.link_id, tk.c.contact_id)
                .where(tk.c.campaign_id == campaign.id)
                .order_by(tk.c.message_id, tk.c.link_id)
            )
        )


def add_clicks(container: Container, campaign: Campaign, n: int, start_us: int, step_us: int,
               prefix: str) -> None:  # fmt: skip
    """Store `n` clicks on the campaign's tokens in turn, `step_us` apart, with verdicts."""
    targets = _targets(container.engine, campaign)
    verdict = Verdict("automation", 80, ("UA_HEADLESS", "DC_IP"), "1")
    batch: list[ClickRecord] = []
    for i in range(n):
        t = targets[i % len(targets)]
        batch.append(
            ClickRecord(
                f"{prefix}{i}", t.token, campaign.id, t.link_id, t.message_id, t.contact_id,
                start_us + i * step_us, "GET" if i % 5 else "HEAD", f"198.51.100.{i % 250}",
                'Mozilla/5.0 "quoted", with comma', {"accept": "*/*"},
            )
        )  # fmt: skip
        if len(batch) == 10_000:
            Repos.on(container.engine).clicks.insert_clicks(batch, [verdict] * len(batch))
            batch = []
    Repos.on(container.engine).clicks.insert_clicks(batch, [verdict] * len(batch))


@pytest.fixture
def world(database_url: str, tmp_path: Path) -> Iterator[World]:
    settings = load_settings(
        env={"CLICKTRAIL_DATABASE_URL": database_url, "CLICKTRAIL_DATA_DIR": str(tmp_path)}
    )
    c = Container(settings)
    ws = make_workspace(Repos.on(c.engine))
    make_domain(Repos.on(c.engine), ws, "sms.example.com")
    make_contacts(Repos.on(c.engine), ws, 3)
    a = make_campaign(Repos.on(c.engine), ws, "A {first_name}: https://a.example.com/x?y=1")
    b = make_campaign(Repos.on(c.engine), ws, "B: https://b.example.com/ https://b.example.com/stop",
                      link_roles={1: "optout"})  # fmt: skip
    send(Repos.on(c.engine), ws, a, tmp_path / "outbox.jsonl")
    send(Repos.on(c.engine), ws, b, tmp_path / "outbox.jsonl")
    add_clicks(c, a, 6, NOW_US, HOUR, "a")
    add_clicks(c, b, 4, NOW_US + HOUR // 2, HOUR, "b")
    yield World(c, ws, a, b)
    c.dispose()


def export(w: World, what: str = "clicks", **kw: Any) -> bytes:
    plan = exports.plan_export(
        Repos.on(w.container.engine).campaigns, w.container.export_queries, w.ws, what, **kw
    )
    return b"".join(exports.stream(plan))


def csv_rows(data: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(data.decode(), newline="")))


def test_csv_has_the_documented_columns_and_values(world: World) -> None:
    data = export(world, campaign=world.a.slug)
    assert data.startswith(b"click_id,") and b"\r\n" in data
    header = next(csv.reader(io.StringIO(data.decode())))
    assert header == CLICK_HEADER
    rows = csv_rows(data)
    assert [r["click_id"] for r in rows] == [f"a{i}" for i in range(6)]
    first, second = rows[0], rows[1]
    assert first["at"] == "2026-05-28T20:26:40.000000Z"
    assert (first["campaign_id"], first["campaign_slug"]) == (world.a.public_id, world.a.slug)
    assert first["message_id"].startswith("msg_")
    # Links are numbered from 1, as in --link-role, reports and the dashboard.
    assert (first["link"], first["link_url"], first["link_role"]) == (
        "1", "https://a.example.com/x?y=1", "cta",
    )  # fmt: skip
    assert first["destination"] == "https://a.example.com/x?y=1"
    assert (first["external_id"], first["phone"]) == ("ext-0", "+14155550000")
    assert (first["method"], first["is_click"], second["method"], second["is_click"]) == (
        "HEAD", "false", "GET", "true",
    )  # fmt: skip
    assert (first["verdict"], first["score"], first["reasons"], first["final"]) == (
        "automation", "80", "UA_HEADLESS DC_IP", "false",
    )  # fmt: skip
    assert first["ip"] == "198.51.100.0"
    assert first["user_agent"] == 'Mozilla/5.0 "quoted", with comma'


def test_jsonl_keeps_types(world: World) -> None:
    lines = export(world, format="jsonl").decode().splitlines()
    assert len(lines) == 10
    row = json.loads(lines[1])
    assert list(row) == CLICK_HEADER
    assert row["link"] == 1 and row["is_click"] is True and row["score"] == 80
    assert row["reasons"] == ["UA_HEADLESS", "DC_IP"]
    assert row["at"].endswith("Z")


def test_parquet_has_typed_columns(world: World) -> None:
    table = pq.read_table(io.BytesIO(export(world, format="parquet")))
    assert table.column_names == CLICK_HEADER
    assert table.num_rows == 10
    assert table.schema.field("at").type == pa.timestamp("us", tz="UTC")
    assert table.schema.field("reasons").type == pa.list_(pa.string())
    rows = table.to_pylist()
    assert rows[0]["at"].isoformat() == "2026-05-28T20:26:40+00:00"
    assert rows[0]["reasons"] == ["UA_HEADLESS", "DC_IP"]
    assert {r["campaign_slug"] for r in rows} == {world.a.slug, world.b.slug}


def test_empty_exports_are_well_formed(world: World) -> None:
    since = "2100-01-01T00:00:00Z"
    assert csv_rows(export(world, since=since)) == []
    assert export(world, format="jsonl", since=since) == b""
    table = pq.read_table(io.BytesIO(export(world, format="parquet", since=since)))
    assert (table.num_rows, table.column_names) == (0, CLICK_HEADER)


def test_filters_by_campaign_and_time_range(world: World) -> None:
    b_rows = csv_rows(export(world, campaign=world.b.public_id))
    assert [r["click_id"] for r in b_rows] == ["b0", "b1", "b2", "b3"]
    assert {r["link_role"] for r in b_rows} == {"cta", "optout"}
    # since inclusive, until exclusive: a1 (t+1h), b1 (t+1.5h), a2 (t+2h); not b2 (t+2.5h).
    window = csv_rows(export(world, since="2026-05-28T21:26:40Z", until="1780008400"))
    assert sorted(r["click_id"] for r in window) == ["a1", "a2", "b1"]
    with pytest.raises(NotFound):
        export(world, campaign="nope")
    with pytest.raises(InvalidInput) as exc:
        export(world, since="2026-05-29", until="2026-05-28")
    assert exc.value.field == "until"


def test_phone_hash_and_omit(world: World) -> None:
    rows = csv_rows(export(world, phone="hash", salt=SALT, campaign=world.a.slug))
    assert "phone" not in rows[0]
    expected = hmac.new(SALT.encode(), b"+14155550000", hashlib.sha256).hexdigest()
    assert rows[0]["phone_hash"] == expected
    assert "+1415" not in json.dumps(rows)
    other_salt = csv_rows(export(world, phone="hash", salt=SALT + "x", campaign=world.a.slug))
    assert other_salt[0]["phone_hash"] != expected
    omitted = csv_rows(export(world, phone="omit"))
    assert "phone" not in omitted[0] and "phone_hash" not in omitted[0]
    table = pq.read_table(io.BytesIO(export(world, format="parquet", phone="hash", salt=SALT)))
    assert "phone_hash" in table.column_names and "phone" not in table.column_names


@pytest.mark.parametrize(
    ("kw", "field"),
    [
        ({"format": "xlsx"}, "format"),
        ({"phone": "hash"}, "salt"),
        ({"phone": "hash", "salt": "short"}, "salt"),
        ({"salt": SALT}, "salt"),
        ({"phone": "masked"}, "phone"),
        ({"since": "soon"}, "since"),
        ({"until": "inf"}, "until"),
        ({"since": "-5"}, "since"),
    ],
)
def test_bad_parameters_name_the_field(world: World, kw: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidInput) as exc:
        export(world, **kw)
    assert exc.value.field == field


def test_messages_export(world: World) -> None:
    rows = csv_rows(export(world, "messages", campaign=world.b.slug))
    assert len(rows) == 3
    assert list(rows[0]) == [
        "message_id", "campaign_id", "campaign_slug", "external_id", "phone", "body", "encoding",
        "segments", "status", "provider", "provider_message_id", "error_code", "queued_at",
        "sent_at", "delivered_at", "failed_at", "status_at",
    ]  # fmt: skip
    assert (rows[0]["status"], rows[0]["provider"], rows[0]["delivered_at"]) == (
        "sent", "outbox", "",
    )  # fmt: skip
    assert rows[0]["sent_at"].endswith("Z")
    table = pq.read_table(io.BytesIO(export(world, "messages", format="parquet")))
    assert table.num_rows == 6
    assert table.schema.field("queued_at").type == pa.timestamp("us", tz="UTC")


def test_the_api_streams_exports(world: World) -> None:
    from factories import make_api_key

    api = ApiWorld(world.container, world.ws, make_api_key(Repos.on(world.container.engine), world.ws),
                   world.a, world.ws, "")  # fmt: skip
    r = api.call("GET", f"/v1/exports/clicks?campaign={world.a.slug}")
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/csv; charset=utf-8"
    assert r.headers["content-disposition"] == 'attachment; filename="clicks.csv"'
    assert [x["click_id"] for x in csv_rows(r.content)] == [f"a{i}" for i in range(6)]
    r = api.call("GET", f"/v1/exports/clicks?format=parquet&phone=hash&salt={SALT}")
    assert r.headers["content-type"] == "application/vnd.apache.parquet"
    assert pq.read_table(io.BytesIO(r.content)).num_rows == 10
    r = api.call("GET", "/v1/exports/messages?format=jsonl")
    assert r.headers["content-type"] == "application/jsonl"
    assert len(r.content.splitlines()) == 6
    r = api.call("GET", "/v1/exports/clicks?phone=hash&salt=short")
    assert r.status_code == 422 and r.json()["field"] == "salt"


def test_the_cli_writes_a_file(world: World, tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.setenv("CLICKTRAIL_DATABASE_URL", world.container.settings.database_url)
    monkeypatch.setenv("CLICKTRAIL_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("CLICKTRAIL_WORKSPACE", world.ws.slug)
    out = tmp_path / "clicks.parquet"
    runner = CliRunner()
    r = runner.invoke(export_cli.app, ["clicks", "--format", "parquet", "--output", str(out),
                                       "--campaign", world.b.slug])  # fmt: skip
    assert r.exit_code == 0, r.output
    assert pq.read_table(out).num_rows == 4
    assert not out.with_name("clicks.parquet.part").exists()
    r = runner.invoke(export_cli.app, ["messages", "--phone", "hash"],
                      env={"CLICKTRAIL_EXPORT_SALT": SALT})  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "phone_hash" in r.stdout.splitlines()[0] and len(r.stdout.splitlines()) == 7
    r = runner.invoke(export_cli.app, ["clicks", "--format", "parquet"])
    assert isinstance(r.exception, InvalidInput) and r.exception.field == "output"


ROWS = 200_000


@pytest.fixture(scope="module")
def big(sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A SQLite workspace with 200k clicks (built once for the memory tests)."""
    tmp = tmp_path_factory.mktemp("big")
    shutil.copy(sqlite_template, tmp / "big.db")
    c = Container(load_settings(env={"CLICKTRAIL_DATABASE_URL": f"sqlite:///{tmp / 'big.db'}",
                                     "CLICKTRAIL_DATA_DIR": str(tmp)}))  # fmt: skip
    ws = make_workspace(Repos.on(c.engine))
    make_domain(Repos.on(c.engine), ws, "sms.example.com")
    make_contacts(Repos.on(c.engine), ws, 50)
    cp = make_campaign(Repos.on(c.engine), ws)
    send(Repos.on(c.engine), ws, cp, tmp / "outbox.jsonl")
    add_clicks(c, cp, ROWS, NOW_US, 1000, "c")
    yield c, ws, tmp
    c.dispose()


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["csv", "parquet"])  # JSON lines is chunked like CSV
def test_a_large_export_runs_in_constant_memory(big: Any, fmt: str) -> None:
    """200k rows stream with a bounded peak: buffering them would take hundreds of MB.

    tracemalloc sees Python's allocations (rows, encoded text); Arrow's own memory pool
    (Parquet row groups) is bounded by its high-water mark.
    """
    c, ws, tmp = big
    plan = exports.plan_export(Repos.on(c.engine).campaigns, c.export_queries, ws, "clicks", format=fmt, phone="hash",
                                     salt=SALT)  # fmt: skip
    pool = pa.default_memory_pool()
    gc.collect()
    tracemalloc.start()
    size = 0
    with (tmp / f"out.{fmt}").open("wb") as fh:
        for piece in exports.stream(plan):
            size += len(piece)
            fh.write(piece)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert size > (40_000_000 if fmt != "parquet" else 500_000)
    # The CSV alone is 60+ MB; one chunk of 5000 rows is about 2 MB of text and objects.
    assert peak < 25_000_000, f"peak {peak / 1e6:.1f} MB"
    assert pool.max_memory() < 256_000_000
    if fmt == "csv":
        with (tmp / "out.csv").open(newline="") as fh:
            assert sum(1 for _ in csv.reader(fh)) == ROWS + 1
    elif fmt == "parquet":
        meta = pq.ParquetFile(tmp / "out.parquet").metadata
        assert meta.num_rows == ROWS
        assert 2 <= meta.num_row_groups <= -(-ROWS // exports.ROW_GROUP)
