"""`/v1/networks`: a workspace's network lists over HTTP, in process on SQLite and PostgreSQL;
each key sees and changes only its own workspace's lists."""

from __future__ import annotations

from factories import Repos, make_api_key, make_workspace
from inprocess_api import Api, ok, problem


def test_add_list_page_and_remove(api: Api) -> None:
    added, lists, page1, page2 = api.calls([
        ("POST", "/v1/networks/carriers/ranges", {"json": {
            "ranges": [{"cidr": "198.51.100.9/24"}, {"cidr": "2001:DB8::/32", "owner": "X"},
                       {"cidr": "192.0.2.1", "kind": "relay"}],
            "kind": "mobile", "owner": "Example Mobile"}}),
        ("GET", "/v1/networks", {}),
        ("GET", "/v1/networks/carriers/ranges?limit=2", {}),
        ("GET", "/v1/networks/carriers/ranges?limit=2&cursor=", {}),
    ])  # fmt: skip
    assert ok(added) == {"name": "carriers", "added": 3, "updated": 0, "unchanged": 0}
    (summary,) = ok(lists)["items"]
    assert (summary["name"], summary["ranges"], summary["kinds"]) == (
        "carriers", 3, ["mobile", "relay"],
    )  # fmt: skip
    first = ok(page1)
    assert len(first["items"]) == 2 and first["next_cursor"]
    rest = ok(
        api.call("GET", f"/v1/networks/carriers/ranges?limit=2&cursor={first['next_cursor']}")
    )
    ranges = {r["cidr"]: (r["kind"], r["owner"]) for r in first["items"] + rest["items"]}
    assert ranges == {
        "198.51.100.0/24": ("mobile", "Example Mobile"),
        "2001:db8::/32": ("mobile", "X"),
        "192.0.2.1/32": ("relay", "Example Mobile"),
    }
    assert rest["next_cursor"] is None
    assert len(ok(page2)["items"]) == 2
    gone, missing, left, whole, after = api.calls([
        ("DELETE", "/v1/networks/carriers/ranges?cidr=192.0.2.1", {}),
        ("DELETE", "/v1/networks/carriers/ranges?cidr=192.0.2.1", {}),
        ("GET", "/v1/networks/carriers/ranges", {}),
        ("DELETE", "/v1/networks/carriers", {}),
        ("GET", "/v1/networks/carriers/ranges", {}),
    ])  # fmt: skip
    assert gone.status_code == 204
    problem(missing, 404, "cidr")
    assert len(ok(left)["items"]) == 2
    assert whole.status_code == 204
    problem(after, 404, "list")


def test_bad_items_are_named_and_nothing_is_written(api: Api) -> None:
    bad, kind, name, none, listing = api.calls([
        ("POST", "/v1/networks/own/ranges", {"json": {"ranges": [
            {"cidr": "198.51.100.0/24"}, {"cidr": "10.0.0.300/8"}, {"cidr": "nope"}]}}),
        ("POST", "/v1/networks/own/ranges", {"json": {"ranges": [
            {"cidr": "198.51.100.0/24", "kind": "planet"}]}}),
        ("POST", "/v1/networks/Own/ranges", {"json": {"ranges": [{"cidr": "198.51.100.0/24"}]}}),
        ("POST", "/v1/networks/own/ranges", {"json": {"ranges": []}}),
        ("GET", "/v1/networks", {}),
    ])  # fmt: skip
    body = problem(bad, 422, "/ranges/1/cidr")
    assert [e["field"] for e in body["errors"]] == ["/ranges/1/cidr", "/ranges/2/cidr"]
    assert "nothing was added" in body["detail"]
    problem(kind, 422, "/ranges/0/kind")
    problem(name, 422, "list")
    problem(none, 422, "/ranges")
    assert ok(listing)["items"] == []
    problem(api.call("DELETE", "/v1/networks/own/ranges"), 422, "cidr")
    problem(api.call("DELETE", "/v1/networks/own/ranges?cidr=banana"), 422, "cidr")
    problem(api.call("GET", "/v1/networks?cursor=bogus"), 422, "cursor")
    problem(api.call("GET", "/v1/networks", key=None), 401)


def test_a_key_sees_and_changes_only_its_own_workspace(api: Api) -> None:
    other = make_workspace(Repos.on(api.container.engine))
    other_key = make_api_key(Repos.on(api.container.engine), other)
    body = {"json": {"ranges": [{"cidr": "203.0.113.0/24"}], "kind": "scanner"}}
    mine, theirs = api.calls([
        ("POST", "/v1/networks/scanners/ranges", body),
        ("POST", "/v1/networks/scanners/ranges",
         {"json": {"ranges": [{"cidr": "198.51.100.0/24"}]}, "key": other_key}),
    ])  # fmt: skip
    assert ok(mine)["added"] == ok(theirs)["added"] == 1
    seen_by_other, removed_by_other, mine_after = api.calls([
        ("GET", "/v1/networks/scanners/ranges", {"key": other_key}),
        ("DELETE", "/v1/networks/scanners/ranges?cidr=203.0.113.0/24", {"key": other_key}),
        ("GET", "/v1/networks/scanners/ranges", {}),
    ])  # fmt: skip
    assert [r["cidr"] for r in ok(seen_by_other)["items"]] == ["198.51.100.0/24"]
    problem(removed_by_other, 404)
    assert [(r["cidr"], r["kind"]) for r in ok(mine_after)["items"]] == [
        ("203.0.113.0/24", "scanner")
    ]
    assert api.call("DELETE", "/v1/networks/scanners", key=other_key).status_code == 204
    assert len(ok(api.call("GET", "/v1/networks"))["items"]) == 1
