"""`/v1/keys`: a workspace's own API keys over HTTP, in process on SQLite and PostgreSQL. A key
is shown once; lists never show a secret or a hash; revoked and expired keys answer 401 at once;
rotation; last use; and another workspace's keys are 404 whatever the route."""

from __future__ import annotations

import time

import sqlalchemy as sa
from starlette.routing import Route

from clicktrail.services.keys import hash_key
from clicktrail.storage import tables as t
from factories import Repos, make_api_key, make_workspace
from inprocess_api import Api, ok, problem

UNKNOWN = "unknown, revoked or expired API key"


def _my_key_id(api: Api) -> str:
    items = ok(api.call("GET", "/v1/keys"))["items"]
    (item,) = [i for i in items if i["prefix"] == api.key[:10]]
    return str(item["id"])


def _key_routes(api: Api) -> set[tuple[str, str]]:
    return {(m, r.path) for r in api.container.extra_routes()
            if isinstance(r, Route) and r.path.startswith("/v1/keys")
            for m in r.methods or () if m != "HEAD"}  # fmt: skip


def test_create_shows_the_secret_once_and_lists_never_do(api: Api) -> None:
    created, listing, one = api.calls([
        ("POST", "/v1/keys", {"json": {"name": "order mailer", "expires_in": "90d"}}),
        ("GET", "/v1/keys", {}),
        ("GET", f"/v1/keys/{_my_key_id(api)}", {}),
    ])  # fmt: skip
    new = ok(created, 201)
    assert created.headers["location"] == f"/v1/keys/{new['id']}"
    secret = new["key"]
    assert secret.startswith("ct_") and new["prefix"] == secret[:10]
    assert (new["name"], new["state"], new["scopes"], new["revoked_at"]) == (
        "order mailer", "active", None, None,
    )  # fmt: skip
    assert new["expires_at"] > new["created_at"]
    items = ok(listing)["items"]
    assert [i["name"] for i in items] == ["test", "order mailer"]
    assert set(items[0]) == {"id", "prefix", "name", "state", "scopes", "created_at",
                             "last_used_at", "expires_at", "revoked_at"}  # fmt: skip
    for text in (listing.text, one.text):
        assert secret not in text and api.key not in text
        assert hash_key(secret) not in text and hash_key(api.key) not in text
    assert ok(one)["name"] == "test"
    # The new key works, and is stored hashed only.
    assert ok(api.call("GET", "/v1/workspace", key=secret))["id"] == api.ws.public_id
    with api.container.engine.connect() as conn:
        stored = conn.execute(
            sa.select(t.api_keys).where(t.api_keys.c.public_id == new["id"])
        ).one()
    assert stored.key_hash == hash_key(secret) and secret not in str(tuple(stored))


def test_revoked_key_answers_401_at_once(api: Api) -> None:
    other = ok(api.call("POST", "/v1/keys", json={"name": "ci"}), 201)
    before, revoked, after, still, listed, again = api.calls([
        ("GET", "/v1/campaigns", {"key": other["key"]}),
        ("DELETE", f"/v1/keys/{other['id']}", {}),
        ("GET", "/v1/campaigns", {"key": other["key"]}),
        ("GET", "/v1/campaigns", {}),
        ("GET", f"/v1/keys/{other['id']}", {}),
        ("DELETE", f"/v1/keys/{other['id']}", {}),
    ])  # fmt: skip
    assert before.status_code == 200 and revoked.status_code == 204
    assert problem(after, 401)["detail"] == UNKNOWN
    assert still.status_code == 200
    shown = ok(listed)
    assert shown["state"] == "revoked" and shown["revoked_at"] is not None
    assert again.status_code == 204  # revoking twice changes nothing
    assert ok(api.call("GET", f"/v1/keys/{other['id']}"))["revoked_at"] == shown["revoked_at"]


def test_a_key_can_revoke_itself_but_not_the_last_one_without_force(api: Api) -> None:
    mine = _my_key_id(api)
    other = ok(api.call("POST", "/v1/keys", json={"name": "spare"}), 201)
    # The spare revokes itself: fine, ours is still active.
    assert api.call("DELETE", f"/v1/keys/{other['id']}", key=other["key"]).status_code == 204
    # Ours is now the last active key: refused, and it still works.
    body = problem(api.call("DELETE", f"/v1/keys/{mine}"), 409, "key")
    assert "last active key" in body["detail"] and "force=true" in body["detail"]
    problem(api.call("DELETE", f"/v1/keys/{mine}?force=maybe"), 422, "force")
    assert api.call("GET", "/v1/workspace").status_code == 200
    gone, after = api.calls([
        ("DELETE", f"/v1/keys/{mine}?force=true", {}),
        ("GET", "/v1/workspace", {}),
    ])  # fmt: skip
    assert gone.status_code == 204
    problem(after, 401)


def test_expiry_at_creation_and_401_after_it(api: Api) -> None:
    short = ok(api.call("POST", "/v1/keys", json={"name": "short", "expires_in": 1}), 201)
    at = ok(api.call("POST", "/v1/keys", json={"expires_at": "2999-01-01T00:00:00Z"}), 201)
    assert at["expires_at"] == "2999-01-01T00:00:00.000000Z" and at["name"] == "default"
    assert api.call("GET", "/v1/workspace", key=short["key"]).status_code == 200
    time.sleep(1.05)
    assert problem(api.call("GET", "/v1/workspace", key=short["key"]), 401)["detail"] == UNKNOWN
    assert ok(api.call("GET", f"/v1/keys/{short['id']}"))["state"] == "expired"
    # A past expiry, both forms at once, or nonsense: 422 naming the field, nothing created.
    for body, field in (
        ({"expires_at": "2020-01-01T00:00:00Z"}, "expires_at"),
        ({"expires_at": 1_000_000}, "expires_at"),
        ({"expires_in": 0}, "expires_in"),
        ({"expires_in": "-5d"}, "expires_in"),
        ({"expires_in": "soon"}, "expires_in"),
        ({"expires_at": "2999-01-01", "expires_in": "1d"}, "expires_in"),
        ({"expires_at": "tomorrow"}, "expires_at"),
        ({"name": "x" * 201}, "/name"),
        ({"scopes": "read"}, "/scopes"),
    ):
        problem(api.call("POST", "/v1/keys", json=body), 422, field)
    assert len(ok(api.call("GET", "/v1/keys"))["items"]) == 3


def test_rotate_at_once_and_with_grace(api: Api) -> None:
    first = ok(api.call("POST", "/v1/keys", json={"name": "worker", "expires_in": "30d"}), 201)
    r = ok(api.call("POST", f"/v1/keys/{first['id']}/rotate", json={}), 201)
    new, old = r["new"], r["old"]
    assert new["name"] == "worker" and new["id"] != first["id"] and new["key"] != first["key"]
    assert old["id"] == first["id"] and old["state"] == "revoked"
    assert new["expires_at"] is not None  # the old key's 30-day lifetime, again from now
    problem(api.call("GET", "/v1/workspace", key=first["key"]), 401)
    assert api.call("GET", "/v1/workspace", key=new["key"]).status_code == 200
    # A revoked key cannot be rotated; with a grace period the old key works until it ends.
    problem(api.call("POST", f"/v1/keys/{first['id']}/rotate"), 409, "key")
    r = ok(api.call("POST", f"/v1/keys/{new['id']}/rotate", json={"grace": 1}), 201)
    assert r["old"]["state"] == "active" and r["old"]["expires_at"] is not None
    assert api.call("GET", "/v1/workspace", key=new["key"]).status_code == 200
    time.sleep(1.05)
    problem(api.call("GET", "/v1/workspace", key=new["key"]), 401)
    assert api.call("GET", "/v1/workspace", key=r["new"]["key"]).status_code == 200
    # A key may rotate itself: the answer carries its successor.
    mine = _my_key_id(api)
    r = ok(api.call("POST", f"/v1/keys/{mine}/rotate", json={"expires_in": "1h"}), 201)
    problem(api.call("GET", "/v1/workspace"), 401)
    assert api.call("GET", "/v1/keys", key=r["new"]["key"]).status_code == 200
    problem(api.call("POST", f"/v1/keys/{mine}/rotate", key=r["new"]["key"]), 409, "key")
    problem(api.call("POST", f"/v1/keys/{r['new']['id']}/rotate", key=r["new"]["key"],
                     json={"grace": "31d"}), 422, "grace")  # fmt: skip


def test_last_use_is_written_at_most_once_a_minute(api: Api) -> None:
    mine = _my_key_id(api)
    assert ok(api.call("GET", f"/v1/keys/{mine}", key=api.key))["last_used_at"] is not None
    with api.container.engine.connect() as conn:
        first = conn.execute(sa.select(t.api_keys.c.last_used_us)).scalar_one()
    api.calls([("GET", "/v1/workspace", {})] * 5)
    with api.container.engine.begin() as conn:
        assert conn.execute(sa.select(t.api_keys.c.last_used_us)).scalar_one() == first
        # A minute later (as far as the stored time says), the next use is written.
        conn.execute(t.api_keys.update().values(last_used_us=first - 61_000_000))
    api.call("GET", "/v1/workspace")
    with api.container.engine.connect() as conn:
        assert conn.execute(sa.select(t.api_keys.c.last_used_us)).scalar_one() > first


def test_pages_walk_every_key_once(api: Api) -> None:
    for i in range(4):
        ok(api.call("POST", "/v1/keys", json={"name": f"k{i}"}), 201)
    seen, cursor = [], ""
    while True:
        page = ok(api.call("GET", f"/v1/keys?limit=2&cursor={cursor}"))
        seen += [i["name"] for i in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ["test", "k0", "k1", "k2", "k3"]
    problem(api.call("GET", "/v1/keys?cursor=bogus"), 422, "cursor")
    problem(api.call("GET", "/v1/keys?limit=0"), 422, "limit")


def test_another_workspace_never_sees_nor_touches_our_keys(api: Api) -> None:
    """Every /v1/keys route with workspace B's key on A's key ids: 404 (never 403), and A's
    keys unchanged; with no key or a revoked one: 401."""
    other = make_workspace(Repos.on(api.container.engine))
    theirs = make_api_key(Repos.on(api.container.engine), other)
    spare = ok(api.call("POST", "/v1/keys", json={"name": "spare"}), 201)
    mine = _my_key_id(api)
    by_id = {(m, p) for m, p in _key_routes(api) if "{key_id}" in p}
    assert by_id == {
        ("GET", "/v1/keys/{key_id}"),
        ("DELETE", "/v1/keys/{key_id}"),
        ("POST", "/v1/keys/{key_id}/rotate"),
    }  # a new route joins the matrix
    routes = [(m, p.replace("{key_id}", kid) + q) for m, p in sorted(by_id)
              for q in ("", "?force=true")
              for kid in (mine, spare["id"], "key_doesnotexist", spare["key"])]  # fmt: skip
    for method, path in routes:
        r = api.call(method, path, key=theirs)
        problem(r, 404)
        assert spare["name"] not in r.text and spare["key"] not in r.text
    listed = ok(api.call("GET", "/v1/keys", key=theirs))["items"]
    assert [i["name"] for i in listed] == ["test"] and mine not in str(listed)
    ours = ok(api.call("GET", "/v1/keys"))["items"]
    assert [(i["name"], i["state"]) for i in ours] == [("test", "active"), ("spare", "active")]
    for method, path in [*(r for r in _key_routes(api) if "{" not in r[1]), *routes]:
        problem(api.call(method, path, key=None), 401)
        problem(api.call(method, path, key="ct_" + "x" * 32), 401)
