"""A workspace's network lists in storage and through the service, on SQLite and PostgreSQL:
round trip, normalization, isolation between workspaces, all-or-nothing bad input."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import sqlalchemy as sa

from clicktrail.domain.errors import InvalidInput, NotFound
from clicktrail.domain.models import Workspace
from clicktrail.services import networks
from clicktrail.services.networks import RangeInput
from clicktrail.signals import range_file_entries
from clicktrail.storage import tables
from factories import NOW_US, Repos, make_workspace


def _count(store: Repos) -> int:
    with store.engine.connect() as conn:
        return int(
            conn.execute(sa.select(sa.func.count()).select_from(tables.network_ranges)).scalar_one()
        )


def _add(store: Repos, ws: Workspace, name: str, *sources: str, **kw: str) -> networks.RangesAdded:
    return networks.add_ranges(
        store.network_lists,
        ws,
        name,
        list(sources),
        read_file=range_file_entries,
        now_us=NOW_US,
        **kw,
    )


def test_ranges_round_trip_normalized_with_kind_and_owner(store: Repos) -> None:
    ws = make_workspace(store)
    done = _add(store, ws, "carriers", "198.51.100.7/24", "2001:DB8:0:0::/32", "192.0.2.9",
                kind="mobile", owner="Example Mobile")  # fmt: skip
    assert (done.added, done.updated, done.unchanged) == (3, 0, 0)
    got = [(r.list_name, r.cidr, r.kind, r.owner, r.created_us)
           for r in networks.workspace_ranges(store.network_lists, ws)]  # fmt: skip
    assert sorted(got) == sorted([
        ("carriers", "198.51.100.0/24", "mobile", "Example Mobile", NOW_US),
        ("carriers", "2001:db8::/32", "mobile", "Example Mobile", NOW_US),
        ("carriers", "192.0.2.9/32", "mobile", "Example Mobile", NOW_US),
    ])  # fmt: skip
    (summary,) = networks.list_networks(store.network_lists, ws).items
    assert (summary.name, summary.ranges, summary.kinds) == ("carriers", 3, ("mobile",))
    # The same range again, written another way, is the same range; a new kind updates it.
    again = _add(store, ws, "carriers", "198.51.100.0/24", "198.51.100.200/24", kind="relay")
    assert (again.added, again.updated, again.unchanged) == (0, 1, 0)
    kinds = {r.cidr: r.kind for r in networks.workspace_ranges(store.network_lists, ws)}
    assert kinds["198.51.100.0/24"] == "relay" and kinds["192.0.2.9/32"] == "mobile"


def test_cloud_range_files_are_imported(store: Repos, tmp_path: Path) -> None:
    ws = make_workspace(store)
    aws = tmp_path / "ip-ranges.json"
    aws.write_text(json.dumps({
        "syncToken": "1", "createDate": "2025-06-01-00-00-00",
        "prefixes": [
            {"ip_prefix": "3.5.140.0/22", "region": "ap-northeast-2", "service": "AMAZON"},
            {"ip_prefix": "13.32.0.0/15", "region": "GLOBAL", "service": "CLOUDFRONT"},
        ],
        "ipv6_prefixes": [{"ipv6_prefix": "2600:1f14::/35", "service": "EC2"}],
    }))  # fmt: skip
    plain = tmp_path / "ips-v4"
    plain.write_text("173.245.48.0/20\n# comment\n")
    done = _add(store, ws, "clouds", str(aws), str(plain), "203.0.113.0/24")
    assert done.added == 5
    got = {r.cidr: (r.kind, r.owner) for r in networks.workspace_ranges(store.network_lists, ws)}
    assert got == {
        "3.5.140.0/22": ("hosting", "Amazon AWS"),
        "13.32.0.0/15": ("cdn", "Amazon AWS"),
        "2600:1f14::/35": ("hosting", "Amazon AWS"),
        "173.245.48.0/20": ("cdn", "Cloudflare"),
        "203.0.113.0/24": ("hosting", ""),
    }


def test_lists_are_per_workspace(store: Repos) -> None:
    a, b = make_workspace(store), make_workspace(store)
    _add(store, a, "scanners", "198.51.100.0/24", kind="scanner")
    _add(store, b, "scanners", "203.0.113.0/24", kind="hosting")
    assert [r.cidr for r in networks.workspace_ranges(store.network_lists, a)] == [
        "198.51.100.0/24"
    ]
    assert [r.cidr for r in networks.workspace_ranges(store.network_lists, b)] == ["203.0.113.0/24"]
    # Removing in one workspace leaves the other's list of the same name alone.
    with pytest.raises(NotFound):
        networks.remove_range(store.network_lists, a, "scanners", "203.0.113.0/24", now_us=NOW_US)
    assert networks.remove_list(store.network_lists, a, "scanners", now_us=NOW_US) == 1
    assert networks.workspace_ranges(store.network_lists, a) == []
    assert [r.cidr for r in networks.workspace_ranges(store.network_lists, b)] == ["203.0.113.0/24"]
    with pytest.raises(NotFound, match="'scanners' not found"):
        networks.list_ranges(store.network_lists, a, "scanners")


def test_remove_one_range_or_a_whole_list(store: Repos) -> None:
    ws = make_workspace(store)
    _add(store, ws, "own", "198.51.100.0/24", "203.0.113.0/24")
    _add(store, ws, "other", "192.0.2.0/24")
    assert networks.remove_range(
        store.network_lists, ws, "own", "198.51.100.9/24", now_us=NOW_US
    ) == ("198.51.100.0/24")
    assert [r.cidr for r in networks.list_ranges(store.network_lists, ws, "own").items] == [
        "203.0.113.0/24"
    ]
    with pytest.raises(NotFound, match=re.escape("has no range 198.51.100.0/24")):
        networks.remove_range(store.network_lists, ws, "own", "198.51.100.0/24", now_us=NOW_US)
    with pytest.raises(InvalidInput, match="not a CIDR"):
        networks.remove_range(store.network_lists, ws, "own", "banana", now_us=NOW_US)
    assert networks.remove_list(store.network_lists, ws, "other", now_us=NOW_US) == 1
    with pytest.raises(NotFound):
        networks.remove_list(store.network_lists, ws, "other", now_us=NOW_US)
    assert [x.name for x in networks.list_networks(store.network_lists, ws).items] == ["own"]


def test_a_bad_cidr_on_line_n_names_file_line_and_field_and_writes_nothing(
    store: Repos, tmp_path: Path
) -> None:
    ws = make_workspace(store)
    good = tmp_path / "good.txt"
    good.write_text("198.51.100.0/24\n")
    bad = tmp_path / "carriers.txt"
    bad.write_text("203.0.113.0/24\n# fine so far\n10.0.0.300/8\n")
    with pytest.raises(InvalidInput) as exc:
        _add(store, ws, "carriers", str(good), str(bad), kind="mobile")
    assert exc.value.field == f"{bad}: line 3: cidr"
    assert "'10.0.0.300/8' is not a CIDR range" in exc.value.message
    assert _count(store) == 0


def test_an_unknown_kind_in_a_csv_line_writes_nothing(store: Repos, tmp_path: Path) -> None:
    ws = make_workspace(store)
    f = tmp_path / "nets.csv"
    f.write_text("cidr,owner,kind,source\n198.51.100.0/24,Acme,hosting,x\n203.0.113.0/24,Acme,"
                 "planet,x\n")  # fmt: skip
    with pytest.raises(InvalidInput) as exc:
        _add(store, ws, "acme", str(f))
    assert exc.value.field == f"{f}: line 3: kind"
    assert "unknown kind 'planet'" in exc.value.message
    with pytest.raises(InvalidInput, match="kind 'planet' is not one of"):
        _add(store, ws, "acme", "198.51.100.0/24", kind="planet")
    assert _count(store) == 0


def test_every_bad_entry_is_named_and_nothing_is_written(store: Repos) -> None:
    ws = make_workspace(store)
    entries = [
        RangeInput("198.51.100.0/24", where="/ranges/0"),
        RangeInput("nope", where="/ranges/1"),
        RangeInput("203.0.113.0/24", kind="planet", where="/ranges/2"),
        RangeInput("192.0.2.0/24", owner="x" * 201, where="/ranges/3"),
    ]
    with pytest.raises(InvalidInput) as exc:
        networks.add_range_entries(store.network_lists, ws, "mixed", entries, now_us=NOW_US)
    assert [p.field for p in exc.value.problems] == [
        "/ranges/1/cidr", "/ranges/2/kind", "/ranges/3/owner",
    ]  # fmt: skip
    assert exc.value.field == "/ranges/1/cidr"
    assert _count(store) == 0


@pytest.mark.parametrize("name", ["", "AWS", "-x", "a" * 65, "with space", "a/b"])
def test_list_names_are_checked(store: Repos, name: str) -> None:
    ws = make_workspace(store)
    with pytest.raises(InvalidInput) as exc:
        _add(store, ws, name, "198.51.100.0/24")
    assert exc.value.field == "list"
    assert _count(store) == 0


def test_bad_arguments_and_missing_files(store: Repos, tmp_path: Path) -> None:
    ws = make_workspace(store)
    with pytest.raises(InvalidInput) as exc:
        _add(store, ws, "x", "198.51.100.0/24", "10.0.0.300/8")
    assert exc.value.field == "argument 2: cidr"
    with pytest.raises(InvalidInput, match="cannot read"):
        _add(store, ws, "x", "198.51.100.0/24", str(tmp_path / "missing.json"))
    with pytest.raises(InvalidInput, match="no ranges"):
        _add(store, ws, "x")
    assert _count(store) == 0


def test_pages_of_lists_and_ranges(store: Repos) -> None:
    ws = make_workspace(store)
    for name in ("a", "b", "c"):
        _add(store, ws, name, *(f"198.51.{n}.0/24" for n in range(5)))
    first = networks.list_networks(store.network_lists, ws, limit=2)
    assert [x.name for x in first.items] == ["a", "b"] and first.next_cursor
    rest = networks.list_networks(store.network_lists, ws, limit=2, cursor=first.next_cursor)
    assert [x.name for x in rest.items] == ["c"] and rest.next_cursor is None
    seen: list[str] = []
    cursor = None
    while True:
        page = networks.list_ranges(store.network_lists, ws, "b", limit=2, cursor=cursor)
        seen += [r.cidr for r in page.items]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert sorted(seen) == sorted(f"198.51.{n}.0/24" for n in range(5))
    with pytest.raises(InvalidInput, match="cursor"):  # a cursor of another list is refused
        networks.list_ranges(store.network_lists, ws, "a", limit=2, cursor=first.next_cursor)


def test_revisions_go_up_with_every_change_of_a_workspace(store: Repos) -> None:
    a, b = make_workspace(store), make_workspace(store)
    assert store.network_lists.network_list_revisions() == {}
    _add(store, a, "x", "198.51.100.0/24")
    r1 = store.network_lists.network_list_revisions()[a.id]
    _add(store, a, "x", "198.51.100.0/24")  # nothing changed
    assert store.network_lists.network_list_revisions()[a.id] == r1
    _add(store, a, "x", "198.51.100.0/24", kind="mobile")
    r2 = store.network_lists.network_list_revisions()[a.id]
    networks.remove_list(store.network_lists, a, "x", now_us=NOW_US)
    r3 = store.network_lists.network_list_revisions()[a.id]
    assert r1 < r2 < r3
    assert b.id not in store.network_lists.network_list_revisions()
