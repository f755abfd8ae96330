"""`/v1/webhook-endpoints`: a workspace's webhook endpoints over HTTP, in process on SQLite and
PostgreSQL: create (secret shown), list and get (never a secret), change, disable and enable,
rotate the secret with a grace period, delete; bad input names its field and stores nothing."""

from __future__ import annotations

import sqlalchemy as sa

from clicktrail.storage import tables as t
from factories import Repos, make_api_key, make_workspace
from inprocess_api import Api, ok, problem

URL = "https://crm.example.com/hooks/clicktrail"


def _count(api: Api) -> int:
    with api.container.engine.connect() as conn:
        return int(
            conn.execute(sa.select(sa.func.count()).select_from(t.webhook_endpoints)).scalar_one()
        )


def test_create_list_get_change_delete(api: Api) -> None:
    created = api.call("POST", "/v1/webhook-endpoints", json={
        "url": URL, "events": ["conversion.created", "click.created"], "description": "CRM",
        "humans_only": True,
    })  # fmt: skip
    ep = ok(created, 201)
    assert created.headers["location"] == f"/v1/webhook-endpoints/{ep['id']}"
    assert ep["id"].startswith("ep_") and ep["secret"].startswith("whsec_")
    # Event types in their documented order, whatever the order asked.
    assert ep["events"] == ["click.created", "conversion.created"]
    assert (ep["state"], ep["humans_only"], ep["provisional"], ep["failures"]) == (
        "enabled", True, False, 0,
    )  # fmt: skip
    listing, one, secret = api.calls([
        ("GET", "/v1/webhook-endpoints", {}),
        ("GET", f"/v1/webhook-endpoints/{ep['id']}", {}),
        ("GET", f"/v1/webhook-endpoints/{ep['id']}/secret", {}),
    ])  # fmt: skip
    assert [x["id"] for x in ok(listing)["items"]] == [ep["id"]]
    for r in (listing, one):
        assert ep["secret"] not in r.text
    assert ok(secret)["secret"] == ep["secret"]
    changed = ok(api.call("PATCH", f"/v1/webhook-endpoints/{ep['id']}", json={
        "events": ["message.failed"], "provisional": True, "enabled": False,
    }))  # fmt: skip
    assert changed["events"] == ["message.failed"] and changed["provisional"] is True
    assert changed["state"] == "disabled" and changed["disabled_reason"] == "disabled by its owner"
    assert changed["url"] == URL and changed["humans_only"] is True  # unchanged
    again = ok(api.call("PATCH", f"/v1/webhook-endpoints/{ep['id']}", json={"enabled": True}))
    assert (again["state"], again["disabled_reason"], again["disabled_at"]) == (
        "enabled",
        None,
        None,
    )
    gone, after = api.calls([
        ("DELETE", f"/v1/webhook-endpoints/{ep['id']}", {}),
        ("GET", f"/v1/webhook-endpoints/{ep['id']}", {}),
    ])  # fmt: skip
    assert gone.status_code == 204
    problem(after, 404, "endpoint")


def test_rotation_keeps_the_old_secret_signing_for_the_grace_period(api: Api) -> None:
    ep = ok(
        api.call(
            "POST", "/v1/webhook-endpoints", json={"url": URL, "events": ["message.delivered"]}
        ),
        201,
    )
    rotated = ok(
        api.call("POST", f"/v1/webhook-endpoints/{ep['id']}/rotate-secret", json={"grace": "2h"})
    )
    assert rotated["secret"] != ep["secret"] and rotated["secret"].startswith("whsec_")
    assert rotated["previous_secret_until"] is not None
    stored = api.container.webhooks.endpoint(api.ws.id, ep["id"])
    assert stored is not None and stored.old_secret == ep["secret"]
    now = stored.updated_us
    assert stored.signing_secrets(now) == [rotated["secret"], ep["secret"]]
    assert stored.signing_secrets(now + 2 * 3600 * 1_000_000) == [rotated["secret"]]
    # Without a body: a day's grace; with grace 0 the old secret is retired at once.
    mine = "whsec_" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldY"
    at_once = ok(api.call("POST", f"/v1/webhook-endpoints/{ep['id']}/rotate-secret",
                          json={"grace": 0, "secret": mine}))  # fmt: skip
    assert at_once["secret"] == mine and at_once["previous_secret_until"] is None
    problem(api.call("POST", f"/v1/webhook-endpoints/{ep['id']}/rotate-secret",
                     json={"secret": mine}), 409, "secret")  # fmt: skip
    problem(api.call("POST", f"/v1/webhook-endpoints/{ep['id']}/rotate-secret",
                     json={"grace": "8d"}), 422, "grace")  # fmt: skip


def test_bad_input_names_the_field_and_stores_nothing(api: Api) -> None:
    cases = [
        ({"url": "http://crm.example.com/h", "events": ["click.created"]}, "url"),
        ({"url": "https://127.0.0.1/h", "events": ["click.created"]}, "url"),
        ({"url": "https://10.1.2.3/h", "events": ["click.created"]}, "url"),
        ({"url": "https://[::1]/h", "events": ["click.created"]}, "url"),
        ({"url": "https://localhost/h", "events": ["click.created"]}, "url"),
        ({"url": URL, "events": []}, "/events"),
        ({"url": URL, "events": ["click.exploded"]}, "/events/0"),
        ({"url": URL, "events": ["click.created"], "secret": "whsec_" + "!" * 40}, "secret"),
        ({"url": URL, "events": ["click.created"], "surprise": 1}, "/surprise"),
        ({"url": URL, "events": ["click.created"], "description": "x" * 201}, "/description"),
    ]
    answers = api.calls([("POST", "/v1/webhook-endpoints", {"json": b}) for b, _ in cases])
    for (body, field), r in zip(cases, answers, strict=True):
        p = problem(r, 422)
        fields = {p.get("field")} | {e.get("field") for e in p.get("errors", [])}
        assert field in fields, (body, p)
    assert _count(api) == 0


def test_the_operator_may_allow_a_private_network_and_plain_http(api: Api) -> None:
    from dataclasses import replace

    from clicktrail.domain.network import parse_networks

    policy = replace(
        api.container.outbound, allow_networks=parse_networks("127.0.0.0/8"), allow_http=True
    )
    api.container.__dict__["outbound"] = policy
    ep = ok(api.call("POST", "/v1/webhook-endpoints",
                     json={"url": "http://127.0.0.1:9/h", "events": ["click.created"]}), 201)  # fmt: skip
    assert ep["url"] == "http://127.0.0.1:9/h"


def test_another_workspace_sees_nothing(api: Api) -> None:
    ep = ok(
        api.call("POST", "/v1/webhook-endpoints", json={"url": URL, "events": ["click.created"]}),
        201,
    )
    store = Repos.on(api.container.engine)
    other = make_api_key(store, make_workspace(store))
    answers = api.calls([
        ("GET", f"/v1/webhook-endpoints/{ep['id']}", {"key": other}),
        ("GET", f"/v1/webhook-endpoints/{ep['id']}/secret", {"key": other}),
        ("PATCH", f"/v1/webhook-endpoints/{ep['id']}", {"key": other, "json": {"enabled": False}}),
        ("POST", f"/v1/webhook-endpoints/{ep['id']}/rotate-secret", {"key": other, "json": {}}),
        ("DELETE", f"/v1/webhook-endpoints/{ep['id']}", {"key": other}),
    ])  # fmt: skip
    for r in answers:
        problem(r, 404, "endpoint")
        assert ep["secret"] not in r.text
    assert ok(api.call("GET", "/v1/webhook-endpoints", key=other))["items"] == []
    assert ok(api.call("GET", f"/v1/webhook-endpoints/{ep['id']}/secret"))["secret"] == ep["secret"]
