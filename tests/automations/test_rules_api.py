"""`/v1/automations`: a workspace's automations over HTTP, in process on SQLite and PostgreSQL:
create (each trigger kind), list, get, change (a part replaced whole, the rule checked whole
again), delete; bad input names its field and stores nothing; what a rule names (campaigns,
the webhook endpoint, the template's placeholders) must exist in the workspace."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from clicktrail.storage import tables as t
from factories import Repos, make_api_key, make_campaign, make_workspace
from inprocess_api import Api, ok, problem

FOLLOW_UP = {
    "name": "Clicked, no order",
    "trigger": {"kind": "clicked_no_conversion", "campaign": "sale", "link": 1, "within": "2d"},
    "delay": "1h",
    "conditions": {"quiet_hours": "21:00-08:00", "frequency_cap": {"max": 1, "per": "week"},
                   "segment": "engaged"},
    "action": {"kind": "send", "template": "Still thinking, {first_name|there}? "
               "https://shop.example.com/cart"},
}  # fmt: skip


def _count(api: Api) -> int:
    with api.container.engine.connect() as conn:
        q = sa.select(sa.func.count()).select_from(t.automations)
        return int(conn.execute(q).scalar_one())


@pytest.fixture
def sale(api: Api) -> None:
    """The campaign `sale` and the static segments `hot-leads` and `cold`."""
    make_campaign(Repos.on(api.container.engine), api.ws, name="Sale", slug="sale")
    for name in ("Hot leads", "Cold"):
        ok(api.call("POST", "/v1/segments", json={"name": name, "kind": "static"}), 201)


@pytest.mark.usefixtures("sale")
def test_create_list_get_change_delete(api: Api) -> None:
    created = api.call("POST", "/v1/automations", json=FOLLOW_UP)
    a = ok(created, 201)
    assert created.headers["location"] == f"/v1/automations/{a['id']}"
    assert a["id"].startswith("au_") and a["enabled"] is True
    assert a["trigger"] == {"kind": "clicked_no_conversion", "campaign": "sale", "link": 1,
                            "within": 172800}  # fmt: skip
    assert a["delay"] == 3600
    assert a["conditions"] == {"quiet_hours": "21:00-08:00", "in_segment": True,
                               "frequency_cap": {"max": 1, "per": "week"}, "segment": "engaged"}  # fmt: skip
    assert a["action"] == {"kind": "send", "template": FOLLOW_UP["action"]["template"],  # type: ignore[index]
                           "campaign": None, "endpoint": None, "segment": None}  # fmt: skip
    listing, one = api.calls([("GET", "/v1/automations", {}),
                              ("GET", f"/v1/automations/{a['id']}", {})])  # fmt: skip
    assert ok(listing)["items"] == [a] and ok(one) == a
    changed = ok(api.call("PATCH", f"/v1/automations/{a['id']}", json={
        "enabled": False, "conditions": {"frequency_cap": {"max": 3, "per": "day"}},
    }))  # fmt: skip
    assert changed["enabled"] is False
    assert changed["conditions"] == {"quiet_hours": None, "frequency_cap": {"max": 3, "per": "day"},
                                     "segment": None, "in_segment": None}  # fmt: skip
    assert changed["trigger"] == a["trigger"] and changed["action"] == a["action"]
    renamed = ok(api.call("PATCH", f"/v1/automations/{a['id']}", json={"name": "Nudge"}))
    assert renamed["name"] == "Nudge" and renamed["conditions"] == changed["conditions"]
    gone, after = api.calls([("DELETE", f"/v1/automations/{a['id']}", {}),
                             ("GET", f"/v1/automations/{a['id']}", {})])  # fmt: skip
    assert gone.status_code == 204
    problem(after, 404, "automation")
    assert _count(api) == 0


@pytest.mark.usefixtures("sale")
@pytest.mark.parametrize(
    "body",
    [
        {"trigger": {"kind": "clicked", "campaign": "sale"}},
        {"trigger": {"kind": "not_clicked", "campaign": "sale", "within": 86400}},
        {"trigger": {"kind": "delivered"}},
        {"trigger": {"kind": "delivered", "campaign": "sale"}, "delay": "30m"},
        {"trigger": {"kind": "opted_in"},
         "action": {"kind": "send", "template": "Welcome back", "campaign": "sale"}},
        {"trigger": {"kind": "clicked", "campaign": "sale"},
         "action": {"kind": "add_to_segment", "segment": "hot-leads"}},
        {"trigger": {"kind": "clicked", "campaign": "sale"},
         "action": {"kind": "remove_from_segment", "segment": "cold"}},
    ],
)  # fmt: skip
def test_each_trigger_and_action_kind(api: Api, body: dict[str, Any]) -> None:
    full = {"name": "r", "action": {"kind": "send", "template": "Hi"}, **body}
    a = ok(api.call("POST", "/v1/automations", json=full), 201)
    assert a["trigger"]["kind"] == body["trigger"]["kind"]
    assert a["action"]["kind"] == full["action"]["kind"]  # type: ignore[index]


@pytest.mark.usefixtures("sale")
def test_a_webhook_action_names_an_endpoint_of_the_workspace(api: Api) -> None:
    ep = ok(api.call("POST", "/v1/webhook-endpoints", json={
        "url": "https://crm.example.com/h", "events": ["click.created"]}), 201)  # fmt: skip
    body = {"name": "CRM", "trigger": {"kind": "clicked", "campaign": "sale"},
            "action": {"kind": "webhook", "endpoint": ep["id"]}}  # fmt: skip
    assert ok(api.call("POST", "/v1/automations", json=body), 201)["action"]["endpoint"] == ep["id"]
    missing = {**body, "name": "x", "action": {"kind": "webhook", "endpoint": "ep_nothere"}}
    problem(api.call("POST", "/v1/automations", json=missing), 404, "action.endpoint")


@pytest.mark.usefixtures("sale")
@pytest.mark.parametrize(
    ("change", "status", "field"),
    [
        ({"trigger": {"kind": "clicked"}}, 422, "trigger.campaign"),
        ({"trigger": {"kind": "clicked", "campaign": "nope"}}, 404, "trigger.campaign"),
        ({"trigger": {"kind": "not_clicked", "campaign": "sale"}}, 422, "trigger.within"),
        ({"trigger": {"kind": "clicked", "campaign": "sale", "within": "1h"}}, 422,
         "trigger.within"),
        ({"trigger": {"kind": "opted_in"}}, 422, "action.campaign"),
        ({"trigger": {"kind": "clicked", "campaign": "sale", "link": 0}}, 422, "/trigger/link"),
        ({"trigger": {"kind": "sometimes"}}, 422, "/trigger/kind"),
        ({"delay": "soon"}, 422, "delay"),
        ({"delay": "100d"}, 422, "delay"),
        ({"conditions": {"quiet_hours": "late"}}, 422, "conditions.quiet_hours"),
        ({"conditions": {"frequency_cap": {"max": 0, "per": "day"}}}, 422,
         "/conditions/frequency_cap/max"),
        ({"conditions": {"in_segment": False}}, 422, "conditions.in_segment"),
        ({"action": {"kind": "send", "template": "Hi {shoe_size}"}}, 422, "action.template"),
        ({"action": {"kind": "send", "template": "Hi {oops"}}, 422, "action.template"),
        ({"action": {"kind": "send", "template": "Hi", "campaign": "gone"}}, 404,
         "action.campaign"),
        ({"action": {"kind": "webhook"}}, 422, "action.endpoint"),
        ({"action": {"kind": "add_to_segment", "segment": "Not A Slug"}}, 422, "action.segment"),
        ({"action": {"kind": "add_to_segment", "segment": "gone"}}, 404, "action.segment"),
        # A saved filter's members follow its conditions: no run adds to one.
        ({"action": {"kind": "remove_from_segment", "segment": "engaged"}}, 422,
         "action.segment"),
        ({"conditions": {"segment": "nope"}}, 404, "conditions.segment"),
        ({"name": " "}, 422, "name"),
        ({"extra": 1}, 422, "/extra"),
    ],
)  # fmt: skip
def test_bad_input_names_its_field_and_stores_nothing(
    api: Api, change: dict[str, Any], status: int, field: str
) -> None:
    body = {**FOLLOW_UP, "name": "ok", **change}
    problem(api.call("POST", "/v1/automations", json=body), status, field)
    assert _count(api) == 0
    a = ok(api.call("POST", "/v1/automations", json={**FOLLOW_UP, "name": "ok"}), 201)
    if "name" not in change and "extra" not in change:
        problem(api.call("PATCH", f"/v1/automations/{a['id']}", json=change), status, field)
        assert ok(api.call("GET", f"/v1/automations/{a['id']}")) == a  # unchanged


@pytest.mark.usefixtures("sale")
def test_names_are_unique_in_a_workspace(api: Api) -> None:
    ok(api.call("POST", "/v1/automations", json=FOLLOW_UP), 201)
    problem(api.call("POST", "/v1/automations", json=FOLLOW_UP), 409, "name")
    other = ok(api.call("POST", "/v1/automations", json={**FOLLOW_UP, "name": "Other"}), 201)
    problem(api.call("PATCH", f"/v1/automations/{other['id']}",
                     json={"name": FOLLOW_UP["name"]}), 409, "name")  # fmt: skip
    assert _count(api) == 2


@pytest.mark.usefixtures("sale")
def test_another_workspaces_automations_are_not_found(api: Api) -> None:
    a = ok(api.call("POST", "/v1/automations", json=FOLLOW_UP), 201)
    store = Repos.on(api.container.engine)
    b_key = make_api_key(store, make_workspace(store))
    for method in ("GET", "PATCH", "DELETE"):
        kw: dict[str, Any] = {"key": b_key}
        if method == "PATCH":
            kw["json"] = {"enabled": False}
        problem(api.call(method, f"/v1/automations/{a['id']}", **kw), 404, "automation")
    assert ok(api.call("GET", "/v1/automations", key=b_key))["items"] == []
    assert ok(api.call("GET", f"/v1/automations/{a['id']}")) == a
