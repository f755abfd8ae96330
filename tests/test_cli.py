"""The command line, run as a real process: bad input names the problem, exits non-zero and
changes nothing; good input does what it says."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa

from clicktrail.domain.models import Workspace
from clicktrail.storage import tables
from factories import (
    PYTHONPATH,
    Repos,
    make_campaign,
    make_contacts,
    make_domain,
    make_workspace,
    message_ids,
    phone,
    send,
)

CLICKTRAIL = str(Path(sys.executable).with_name("clicktrail"))


@dataclass
class Cli:
    store: Repos
    ws: Workspace
    tmp: Path
    database_url: str

    def __call__(self, *args: str) -> subprocess.CompletedProcess[str]:
        env = {
            "PATH": os.environ.get("PATH", ""),
            **PYTHONPATH,
            "HOME": str(self.tmp),
            "CLICKTRAIL_DATABASE_URL": self.database_url,
            "CLICKTRAIL_DATA_DIR": str(self.tmp / "data"),
            "NO_COLOR": "1",
            "TERM": "dumb",
            "COLUMNS": "200",
        }
        return subprocess.run(
            [CLICKTRAIL, *args],
            cwd=self.tmp,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    def counts(self) -> tuple[int, int, int, int]:
        with self.store.engine.connect() as conn:
            return tuple(  # type: ignore[return-value]
                int(conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one())
                for t in (tables.contacts, tables.campaigns, tables.messages, tables.message_events)
            )

    def write(self, name: str, data: str | bytes) -> Path:
        path = self.tmp / name
        path.write_bytes(data.encode() if isinstance(data, str) else data)
        return path


@pytest.fixture
def cli(store: Repos, tmp_path: Path, database_url: str) -> Cli:
    ws = make_workspace(store)
    make_domain(store, ws)
    return Cli(store, ws, tmp_path, database_url)


def assert_fails(cli: Cli, code: int, *args: str) -> str:
    """Run the CLI, expect exit `code` with nothing written; return the error text."""
    before = cli.counts()
    r = cli(*args)
    assert r.returncode == code, (r.stdout, r.stderr)
    assert "Traceback" not in r.stderr
    assert "error" in r.stderr
    assert cli.counts() == before
    return " ".join(r.stderr.split())


# -- contacts import ----------------------------------------------------------------------------


def test_malformed_phones_name_their_lines_and_nothing_is_imported(cli: Cli) -> None:
    f = cli.write("c.csv", f"phone,first_name\n{phone(1)},Ann\n12ab,Bo\n{phone(2)},Cy\n+1555,Di\n")
    msg = assert_fails(cli, 2, "contacts", "import", str(f))
    assert "line 3" in msg and "line 5" in msg
    assert "line 2" not in msg and "line 4" not in msg
    assert "2 of 4 rows are invalid" in msg


def test_missing_phone_header(cli: Cli) -> None:
    f = cli.write("c.csv", "mobile,first_name\n+14155550100,Ann\n")
    msg = assert_fails(cli, 2, "contacts", "import", str(f))
    assert "line 1" in msg and "no 'phone' column" in msg and "'mobile'" in msg


LATIN1 = f"phone,first_name\n{phone(1)},Ann\n{phone(2)},Jos\xe9\n".encode("latin-1")


def test_latin1_file_is_refused_with_a_hint(cli: Cli) -> None:
    msg = assert_fails(cli, 2, "contacts", "import", str(cli.write("c.csv", LATIN1)))
    assert "not utf-8-sig text" in msg
    assert "--encoding" in msg


def test_latin1_file_names_the_line(cli: Cli) -> None:
    msg = assert_fails(cli, 2, "contacts", "import", str(cli.write("c.csv", LATIN1)))
    assert "line 3" in msg


def test_latin1_file_imports_with_encoding_option(cli: Cli) -> None:
    data = f"phone,first_name\n{phone(2)},Jos\xe9\n".encode("latin-1")
    f = cli.write("c.csv", data)
    r = cli("contacts", "import", str(f), "--encoding", "latin-1")
    assert r.returncode == 0, r.stderr
    c = cli.store.contacts.find_contact(cli.ws.id, phone(2))
    assert c is not None and c.first_name == "José"


def test_empty_file(cli: Cli) -> None:
    msg = assert_fails(cli, 2, "contacts", "import", str(cli.write("c.csv", "")))
    assert "is empty" in msg


def test_row_with_the_wrong_number_of_cells(cli: Cli) -> None:
    f = cli.write("c.csv", f"phone,first_name\n{phone(1)},Ann,extra\n{phone(2)},Bo\n")
    msg = assert_fails(cli, 2, "contacts", "import", str(f))
    assert "line 2" in msg and "3 cells but the header has 2 columns" in msg


def test_skip_invalid_imports_good_rows_and_writes_rejects(cli: Cli) -> None:
    f = cli.write("c.csv", f"phone,first_name\n{phone(1)},Ann\nnope,Bo\n{phone(2)},Cy,x\n")
    rejects = cli.tmp / "rejects.csv"
    r = cli("contacts", "import", str(f), "--skip-invalid", "--rejects", str(rejects))
    assert r.returncode == 0, r.stderr
    assert "1 new" in r.stdout and "2 rejected" in r.stdout
    assert cli.store.contacts.count_contacts(cli.ws.id) == 1
    with rejects.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[0][:2] == ["line", "error"]
    assert [row[0] for row in rows[1:]] == ["3", "4"]
    assert "phone" in rows[1][1] and "'nope'" in rows[1][1]
    assert "cells" in rows[2][1]


def test_region_normalizes_national_numbers(cli: Cli) -> None:
    f = cli.write("c.csv", "phone\n07400 123456\n020 7946 0018\n")
    assert_fails(cli, 2, "contacts", "import", str(f))  # no region: not a number
    r = cli("contacts", "import", str(f), "--region", "GB")
    assert r.returncode == 0, r.stderr
    assert cli.store.contacts.find_contact(cli.ws.id, "+447400123456") is not None
    assert cli.store.contacts.find_contact(cli.ws.id, "+442079460018") is not None


def test_duplicate_phones_are_merged(cli: Cli) -> None:
    f = cli.write(
        "c.csv",
        f"phone,first_name,city\n{phone(1)},Ann,\n(415) 555-0002,Bo,Oslo\n+1 415 555 0001,,Rome\n",
    )
    r = cli("contacts", "import", str(f), "--region", "US")
    assert r.returncode == 0, r.stderr
    assert "1 duplicate rows merged" in r.stdout
    assert cli.store.contacts.count_contacts(cli.ws.id) == 2
    c = cli.store.contacts.find_contact(cli.ws.id, phone(1))
    assert c is not None and (c.first_name, c.attributes) == ("Ann", {"city": "Rome"})


# -- campaigns and reports ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ("report", "no-such-campaign"),
        ("campaign", "send", "no-such-campaign"),
        ("campaign", "preview", "no-such-campaign"),
    ],
)
def test_unknown_campaign_exits_3_naming_it(cli: Cli, args: tuple[str, ...]) -> None:
    make_campaign(cli.store, cli.ws, name="Spring")
    msg = assert_fails(cli, 3, *args)
    assert "'no-such-campaign'" in msg
    assert "spring" in msg  # the campaigns that do exist
    assert not (cli.tmp / "data" / "outbox.jsonl").exists()


def test_template_with_unknown_placeholder_names_it(cli: Cli) -> None:
    make_contacts(cli.store, cli.ws, 1)
    msg = assert_fails(
        cli, 2, "campaign", "create", "Spring", "--template", "Hi {frist_name}: www.a.com/x"
    )
    assert "{frist_name}" in msg
    assert cli.store.campaigns.list_campaigns(cli.ws.id) == []


def sent(cli: Cli, n: int = 2) -> list[str]:
    make_contacts(cli.store, cli.ws, n)
    cp = make_campaign(cli.store, cli.ws, name="Spring")
    send(cli.store, cli.ws, cp, cli.tmp / "outbox.jsonl")
    return message_ids(cli.store, cp)


def statuses(cli: Cli, ids: list[str]) -> list[str]:
    return [cli.store.messages.message_status(i)["status"] for i in ids]  # type: ignore[index]


def test_receipts_naming_an_unknown_message_apply_nothing(cli: Cli) -> None:
    ids = sent(cli)
    lines = [
        json.dumps({"message_id": ids[0], "status": "delivered"}),
        json.dumps({"message_id": "msg_ghost", "status": "delivered"}),
    ]
    f = cli.write("r.jsonl", "\n".join(lines) + "\n")
    msg = assert_fails(cli, 2, "messages", "status", str(f))
    assert "msg_ghost" in msg
    assert statuses(cli, ids) == ["sent", "sent"]
    r = cli("messages", "status", str(f), "--skip-unknown")
    assert r.returncode == 0, r.stderr
    assert "1 applied" in r.stdout and "1 unknown" in r.stdout
    assert "msg_ghost" in r.stderr
    assert statuses(cli, ids) == ["delivered", "sent"]


def test_cli_errors_name_cli_flags_not_api_parameters(cli: Cli) -> None:
    sent(cli)
    f = cli.write("r.jsonl", json.dumps({"message_id": "msg_ghost", "status": "sent"}) + "\n")
    msg = assert_fails(cli, 2, "messages", "status", str(f))
    assert "--skip-unknown" in msg and "skip_unknown" not in msg
    bad = cli.write("c.csv", "phone\nnot-a-phone\n")
    msg = assert_fails(cli, 2, "contacts", "import", str(bad))
    assert "--skip-invalid" in msg and "skip_invalid" not in msg
    latin = cli.write("l.csv", "phone,first_name\n+14155550100,Jos\xe9\n".encode("latin-1"))
    msg = assert_fails(cli, 2, "contacts", "import", str(latin))
    assert "--encoding latin-1" in msg and "?encoding" not in msg
    local = cli.write("n.csv", "phone\n4155550100\n")
    msg = assert_fails(cli, 2, "contacts", "import", str(local))
    assert "default region" in msg and "--region" not in msg  # (the API has no flags)


def test_a_header_only_csv_is_an_error_unless_allow_empty(cli: Cli) -> None:
    f = cli.write("empty.csv", "phone,external_id,first_name\n\n")
    msg = assert_fails(cli, 2, "contacts", "import", str(f))
    assert "a header and no data rows" in msg and "--allow-empty" in msg
    r = cli("contacts", "import", str(f), "--allow-empty")
    assert r.returncode == 0, r.stderr
    assert "imported 0 contacts from 0 rows" in r.stdout
    assert "has a header and no data rows: nothing imported" in r.stderr


def test_contacts_list_pages_like_the_api(cli: Cli) -> None:
    f = cli.write("c.csv", "phone,external_id,city\n" + "".join(
        f"{phone(i)},crm-{i},Paris\n" for i in (3, 1, 2)
    ))  # fmt: skip
    assert cli("contacts", "import", str(f), "--list", "vip").returncode == 0
    first = cli("contacts", "list", "--limit", "2", "--json")
    assert first.returncode == 0, first.stderr
    page = json.loads(first.stdout)
    assert [x["phone"] for x in page["items"]] == [phone(1), phone(2)]  # by phone
    assert page["items"][0]["attributes"] == {"city": "Paris"}
    assert page["items"][0]["created_at"].endswith("Z")
    rest = json.loads(cli("contacts", "list", "--json", "--cursor", page["next_cursor"]).stdout)
    assert ([x["phone"] for x in rest["items"]], rest["next_cursor"]) == ([phone(3)], None)
    table = cli("contacts", "list", "--limit", "2", "--list", "vip")
    assert table.returncode == 0, table.stderr
    assert phone(1) in table.stdout and "crm-1" in table.stdout and phone(3) not in table.stdout
    assert f"next page: --cursor {page['next_cursor']}" in table.stderr
    assert "list 'nope' not found" in " ".join(
        assert_fails(cli, 3, "contacts", "list", "--list", "nope").split()
    )
    assert "limit" in assert_fails(cli, 2, "contacts", "list", "--limit", "0")
    assert "cursor" in assert_fails(cli, 2, "contacts", "list", "--cursor", "zzz")


def test_a_template_with_a_lone_surrogate_is_refused_without_a_traceback(cli: Cli) -> None:
    # A shell passes the bytes of a truncated emoji; Python sees surrogates (PEP 383).
    msg = assert_fails(
        cli,
        2,
        "campaign",
        "create",
        "Cut",
        "--template",
        "Hi \udced\udca0\udcbd https://x.example.com",
    )
    assert "template" in msg and "lone UTF-16 surrogate U+DCED at character 3" in msg


def test_receipts_with_a_bad_json_line_name_it(cli: Cli) -> None:
    ids = sent(cli)
    f = cli.write(
        "r.jsonl",
        json.dumps({"message_id": ids[0], "status": "delivered"}) + "\n\n{'message_id': 'x'}\n",
    )
    msg = assert_fails(cli, 2, "messages", "status", str(f))
    assert "line 3" in msg and "not valid JSON" in msg
    assert statuses(cli, ids) == ["sent", "sent"]


def test_receipts_with_a_bad_status_name_the_line_and_field(cli: Cli) -> None:
    ids = sent(cli)
    f = cli.write("r.csv", f"message_id,status\n{ids[0]},delivered\n{ids[1]},opened\n")
    msg = assert_fails(cli, 2, "messages", "status", str(f))
    assert "line 3" in msg and "status" in msg and "'opened'" in msg


def test_csv_receipts_work(cli: Cli) -> None:
    ids = sent(cli)
    f = cli.write(
        "r.csv",
        f"message_id,status,at\n{ids[0]},delivered,2026-11-22T10:00:00Z\n{ids[1]},undelivered,\n",
    )
    r = cli("messages", "status", str(f))
    assert r.returncode == 0, r.stderr
    assert "2 receipts: 2 applied" in r.stdout
    assert statuses(cli, ids) == ["delivered", "undelivered"]


def test_report_json(cli: Cli) -> None:
    ids = sent(cli)
    cli.write("r.csv", f"message_id,status\n{ids[0]},delivered\n")
    assert cli("messages", "status", str(cli.tmp / "r.csv")).returncode == 0
    r = cli("report", "spring", "--json")
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert set(report) >= {
        "campaign", "name", "messages", "queued", "sent", "delivered", "failed",
        "undelivered", "total_clicks", "unique_clicks", "requests", "ctr", "links",
    }  # fmt: skip
    assert (report["name"], report["messages"], report["sent"], report["delivered"]) == (
        "Spring", 2, 2, 1,
    )  # fmt: skip
    assert report["ctr"] == 0.0
    assert [lk["url"] for lk in report["links"]] == ["https://shop.example.com/sale"]
