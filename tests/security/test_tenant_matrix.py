"""The tenant matrix: every route of the app, asked by another workspace's key with the first
workspace's identifiers, never reveals or changes the first workspace's data.

The route table is read from the app itself: a route missing from `MATRIX` (or from `PUBLIC`,
the routes an anonymous client may call) fails `test_every_route_is_in_the_matrix`, so a new
route cannot ship without its tenant check. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import sqlalchemy as sa
from starlette.routing import Mount, Route

from clicktrail.bootstrap import Container
from clicktrail.config import load_settings
from clicktrail.domain.events import StoredEvent
from clicktrail.domain.models import Campaign, Workspace
from clicktrail.services.clock import now_us
from clicktrail.storage import tables
from factories import (
    Repos,
    make_api_key,
    make_campaign,
    make_contacts,
    make_domain,
    make_workspace,
    message_ids,
    send,
    tokens_of,
)
from served import requests_in_process

HOST = "sms.example.com"
CAMPAIGN_NAME = "Tenant A secret campaign"
A_TWILIO = {
    "name": "a-twilio",
    "kind": "twilio",
    "options": {
        "account_sid": "AC" + "a1" * 16,
        "auth_token": "tenant-a-auth-token-7f3e",
        "from": "+14155550199",
    },
}
B_TWILIO = {
    "name": "b-twilio",
    "kind": "twilio",
    "options": {"account_sid": "AC" + "b2" * 16, "auth_token": "b-token", "from": "+14155550198"},
}

# Routes an anonymous client may call (no key): liveness, the TLS terminator's question, the API
# description, the dashboard (its own login), and providers' webhooks (signed, checked per
# provider: tests/providers).
PUBLIC = {
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/v1/tls/allowed"),
    ("GET", "/"),
    ("GET", "/openapi.json"),
    ("GET", "/docs"),
    ("POST", "/v1/webhooks/twilio/status"),
    ("POST", "/v1/webhooks/twilio/inbound"),
    ("POST", "/v1/webhooks/http/{provider_name}/status"),
    # Conversions from networks and browsers: a postback secret or publishable key, not an API
    # key (tests/conversions: another workspace's clicks answer as unknown ones).
    ("GET", "/postback"),
    ("GET", "/ct.js"),
    ("POST", "/v1/conversions/beacon"),
    ("GET", "/v1/conversions/pixel.gif"),
}
DASHBOARD = "/dashboard"
A_ORDER = "a-order-7731"
A_NOTE = "a's private note"
A_NETWORK = "a-network-impact"
A_CLICK_WEIGHT = 17.25
A_HOOK = "https://hooks.a-shop.example.com/clicktrail"
A_HOOK_SECRET = "whsec_QVNlY3JldE9mVGVuYW50QVNpZ25pbmdXZWJob29rcw=="
A_SEGMENT = "A VIP"
A_AUTOMATION = "A secret win-back rule"
A_FOLLOW_UP = "Tenant A follow-up text 5521"


@dataclass
class Tenants:
    container: Container
    a: Workspace
    a_key: str
    campaign: Campaign
    b: Workspace
    b_key: str
    ids: dict[str, str]  # what fills the path parameters: A's identifiers

    def calls(self, requests: list[tuple[str, str, str | None, dict[str, Any]]]) -> list[Any]:
        return requests_in_process(self.container, HOST, requests)


@pytest.fixture
def tenants(database_url: str, tmp_path: Path) -> Iterator[Tenants]:
    settings = load_settings(
        env={"CLICKTRAIL_DATABASE_URL": database_url, "CLICKTRAIL_DATA_DIR": str(tmp_path)}
    )
    container = Container(settings)
    store = Repos.on(container.engine)
    a = make_workspace(store)
    make_domain(store, a, HOST)
    make_contacts(store, a, 3, list_name="vip")
    cp = make_campaign(
        store,
        a,
        "Hi {first_name}: https://a-shop.example.com/sale stop: https://x.example.com/o",
        name=CAMPAIGN_NAME,
    )
    send(store, a, cp, tmp_path / "outbox.jsonl")
    b = make_workspace(store)
    make_domain(store, b, "other.example.com")
    make_contacts(store, b, 2, start=100)
    make_campaign(store, b)
    t = Tenants(container, a, make_api_key(store, a), cp, b, make_api_key(store, b), {})
    token = next(iter(tokens_of(store, cp)))[0]
    setup = t.calls(
        [
            ("GET", f"/c/{token}", None, {}),
            ("POST", "/v1/providers", t.a_key, {"json": A_TWILIO}),
            ("POST", "/v1/networks/a-office/ranges", t.a_key,
             {"json": {"ranges": [{"cidr": "192.0.2.0/24", "owner": "A office"}]}}),
            ("POST", "/v1/opt-outs", t.a_key,
             {"json": {"items": [{"contact": "+14155550002", "opted_out": True}]}}),
        ]
    )  # fmt: skip
    for r in setup[1:]:
        assert r.status_code < 300, r.text
    (click_id,) = parse_qs(urlsplit(setup[0].headers["location"]).query)["ct_cid"]
    (hook,) = t.calls([("POST", "/v1/webhook-endpoints", t.a_key,
                        {"json": {"url": A_HOOK, "events": ["click.created", "conversion.created"],
                                  "secret": A_HOOK_SECRET}})])  # fmt: skip
    assert hook.status_code == 201, hook.text
    conversion, mode, pbs, pk = t.calls(
        [
            ("POST", "/v1/conversions", t.a_key, {"json": {"click_id": click_id, "txn": A_ORDER,
             "value": "19.99", "currency": "EUR", "metadata": {"note": A_NOTE}}}),
            ("PUT", "/v1/conversions/events/purchase", t.a_key,
             {"json": {"duplicate_mode": "replace"}}),
            ("POST", "/v1/postback-secrets", t.a_key, {"json": {"name": A_NETWORK}}),
            ("POST", "/v1/publishable-keys", t.a_key, {"json": {"name": A_NETWORK}}),
        ]
    )  # fmt: skip
    (scoring,) = t.calls(
        [("PUT", "/v1/engagement/settings", t.a_key, {"json": {"click_weight": A_CLICK_WEIGHT}})]
    )
    assert scoring.status_code == 200, scoring.text
    seg, members = t.calls(
        [
            ("POST", "/v1/segments", t.a_key, {"json": {"name": A_SEGMENT, "kind": "static"}}),
            ("POST", "/v1/segments/a-vip/members", t.a_key, {"json": {"add": ["ext-0"]}}),
        ]
    )
    assert seg.status_code == 201 and members.status_code == 200, members.text
    assert conversion.status_code == 201 and mode.status_code == 200, conversion.text
    assert pbs.status_code == 201 and pk.status_code == 201, pbs.text
    (rule,) = t.calls([("POST", "/v1/automations", t.a_key,
                        {"json": {"name": A_AUTOMATION, "trigger": {"kind": "clicked",
                                  "campaign": cp.slug}, "action": {"kind": "send",
                                  "template": A_FOLLOW_UP}}})])  # fmt: skip
    assert rule.status_code == 201, rule.text
    # A delivery of A's conversion.created event, made here rather than waited for (on
    # PostgreSQL the dispatcher waits for older transactions anywhere on the server).
    with container.engine.connect() as conn:
        row = conn.execute(
            sa.select(tables.events).where(tables.events.c.workspace_id == a.id)
        ).first()
    assert row is not None
    event = StoredEvent(row.id, row.txid, row.public_id, row.workspace_id, row.type,
                        row.occurred_us, row.payload)  # fmt: skip
    (endpoint,) = container.webhooks.endpoints_page(a.id, None, 1)
    container.deliveries.add_deliveries("tenant-matrix", [(endpoint, event)], event, now_us())
    (delivery,) = container.deliveries.deliveries_page(a.id, endpoint.id, None, 1, None)
    (keys,) = t.calls([("GET", "/v1/keys", t.a_key, {})])
    (a_key_id,) = [k["id"] for k in keys.json()["items"]]
    t.ids = {
        "campaign": cp.slug,
        "contact": "ext-0",
        "message": message_ids(store, cp)[0],
        "host": HOST,
        "name": "a-office",
        "key_id": a_key_id,
        "click_id": click_id,
        "conversion": conversion.json()["conversion"]["id"],
        "postback_secret": pbs.json()["id"],
        "publishable_key": pk.json()["id"],
        "endpoint": hook.json()["id"],
        "segment": "a-vip",
        "automation": rule.json()["id"],
        "delivery": delivery.public_id,
    }
    yield t
    container.dispose()


# For each authenticated route: how workspace B asks it about workspace A's things. Path
# parameters are filled from `Tenants.ids`; `kw` are httpx request arguments.
MATRIX: dict[tuple[str, str], dict[str, Any]] = {
    ("GET", "/v1/workspace"): {},
    ("GET", "/v1/domains"): {},
    ("POST", "/v1/domains"): {"json": {"host": HOST}},
    ("GET", "/v1/domains/{host}"): {},
    ("GET", "/v1/contacts"): {"params": {"q": "ext-0"}},
    ("POST", "/v1/contacts/import"): {
        "content": b"phone,external_id\n+14155550177,ext-b\n",
        "headers": {"content-type": "text/csv"},
    },
    ("GET", "/v1/contacts/{contact}"): {},
    ("GET", "/v1/contacts/{contact}/opt-outs"): {},
    ("GET", "/v1/lists"): {},
    ("GET", "/v1/campaigns"): {},
    ("POST", "/v1/campaigns"): {"json": {"name": "B camp", "template": "x", "list": "vip"}},
    ("GET", "/v1/campaigns/{campaign}"): {},
    ("PATCH", "/v1/campaigns/{campaign}"): {"json": {"subs": {"sub1": "b-was-here"}}},
    ("GET", "/v1/campaigns/{campaign}/preview"): {},
    ("GET", "/v1/campaigns/{campaign}/report"): {},
    ("GET", "/v1/campaigns/{campaign}/report/full"): {},
    ("GET", "/v1/campaigns/{campaign}/recipients"): {},
    ("GET", "/v1/reports/compare"): {"params": {"campaigns": "{campaign}"}},
    ("GET", "/v1/campaigns/{campaign}/report/lift"): {},
    ("GET", "/v1/campaigns/{campaign}/variants"): {},
    ("GET", "/v1/campaigns/{campaign}/variants/report"): {},
    ("GET", "/v1/holdout-size"): {"params": {"audience": 1000, "baseline": 0.04, "mde": 0.02}},
    ("POST", "/v1/campaigns/{campaign}/send"): {"json": {}},
    ("GET", "/v1/campaigns/{campaign}/send"): {},
    ("POST", "/v1/campaigns/{campaign}/pause"): {},
    ("POST", "/v1/campaigns/{campaign}/resume"): {},
    ("POST", "/v1/campaigns/{campaign}/cancel"): {},
    ("POST", "/v1/campaigns/{campaign}/release"): {},
    ("POST", "/v1/campaigns/{campaign}/test-send"): {"json": {"to": "+14155550000"}},
    ("GET", "/v1/messages"): {"params": {"campaign": "{campaign}"}},
    ("GET", "/v1/messages/{message}"): {},
    ("POST", "/v1/messages/status"): {
        "json": [{"message_id": "{message}", "status": "failed", "at": "2026-01-01T00:00:00Z"}]
    },
    ("GET", "/v1/clicks"): {"params": {"campaign": "{campaign}"}},
    ("GET", "/v1/exports/clicks"): {"params": {"campaign": "{campaign}"}},
    ("GET", "/v1/exports/messages"): {"params": {"campaign": "{campaign}"}},
    ("GET", "/v1/exports/conversions"): {"params": {"campaign": "{campaign}"}},
    ("POST", "/v1/wrap"): {
        "json": {
            "campaign": "{campaign}",
            "text": "https://shop.example.com/",
            "to": "+14155550000",
        }
    },
    ("POST", "/v1/wrap/batch"): {
        "json": {
            "campaign": "{campaign}",
            "items": [{"text": "https://shop.example.com/", "to": "+14155550000"}],
        }
    },
    ("POST", "/v1/inbound"): {
        "json": {"from": "+14155550000", "to": "+14155550199", "text": "STOP"}
    },
    ("POST", "/v1/opt-outs"): {"json": {"items": [{"contact": "ext-1", "opted_out": True}]}},
    ("GET", "/v1/opt-outs/replies"): {},
    ("PUT", "/v1/opt-outs/replies"): {"json": {"stop": "A's reply"}},
    ("GET", "/v1/providers"): {},
    ("POST", "/v1/providers"): {"json": B_TWILIO},
    ("GET", "/v1/providers/{name}"): {"ids": {"name": "a-twilio"}},
    ("DELETE", "/v1/providers/{name}"): {"ids": {"name": "a-twilio"}},
    ("GET", "/v1/networks"): {},
    ("GET", "/v1/networks/{name}/ranges"): {},
    ("POST", "/v1/networks/{name}/ranges"): {
        "ids": {"name": "b-net"},
        "json": {"ranges": [{"cidr": "198.51.100.0/24"}]},
    },
    ("DELETE", "/v1/networks/{name}/ranges"): {"params": {"cidr": "192.0.2.0/24"}},
    ("DELETE", "/v1/networks/{name}"): {},
    ("POST", "/v1/campaigns/{campaign}/bots/finalize"): {},
    ("GET", "/v1/keys"): {},
    ("POST", "/v1/keys"): {"json": {"name": "b's second key"}},
    ("GET", "/v1/keys/{key_id}"): {},
    ("POST", "/v1/keys/{key_id}/rotate"): {"json": {}},
    ("DELETE", "/v1/keys/{key_id}"): {"params": {"force": "true"}},
    ("POST", "/v1/conversions"): {"json": {"click_id": "{click_id}", "txn": A_ORDER}},
    ("GET", "/v1/conversions"): {"params": {"campaign": "{campaign}"}},
    ("GET", "/v1/conversions/{conversion}"): {},
    ("GET", "/v1/conversions/events"): {},
    ("PUT", "/v1/conversions/events/{event}"): {
        "ids": {"event": "purchase"},
        "json": {"duplicate_mode": "count"},
    },
    ("GET", "/v1/conversions/rejected"): {},
    ("GET", "/v1/postback-secrets"): {},
    ("POST", "/v1/postback-secrets"): {"json": {"name": "b's network"}},
    ("DELETE", "/v1/postback-secrets/{postback_secret}"): {},
    ("GET", "/v1/publishable-keys"): {},
    ("POST", "/v1/publishable-keys"): {"json": {"name": "b's site"}},
    ("DELETE", "/v1/publishable-keys/{publishable_key}"): {},
    # A's contact, named by B: unknown to B (nothing is stored for A).
    ("POST", "/v1/touchpoints"): {
        "json": {"channel": "email", "contact": {"external_id": "ext-0"}, "touch_id": "a-touch"}
    },
    ("GET", "/v1/attribution"): {},
    ("PUT", "/v1/attribution"): {"json": {"click_window": "1h", "model": "first_click"}},
    ("GET", "/v1/campaigns/{campaign}/attribution"): {},
    ("PUT", "/v1/campaigns/{campaign}/attribution"): {"json": {"delivery_window": "24h"}},
    ("GET", "/v1/campaigns/{campaign}/report/conversions"): {},
    ("GET", "/v1/attribution/channels"): {"params": {"half_life": "1d"}},
    ("GET", "/v1/exports/conversion-paths"): {"params": {"format": "jsonl"}},
    ("GET", "/v1/engagement/settings"): {},
    ("PUT", "/v1/engagement/settings"): {"json": {"click_weight": 12}},
    ("GET", "/v1/contacts/{contact}/engagement"): {},
    ("GET", "/v1/webhook-endpoints"): {},
    ("POST", "/v1/webhook-endpoints"): {
        "json": {"url": "https://b.example.com/h", "events": ["click.created"]}
    },
    ("GET", "/v1/webhook-endpoints/{endpoint}"): {},
    ("PATCH", "/v1/webhook-endpoints/{endpoint}"): {"json": {"enabled": False}},
    ("DELETE", "/v1/webhook-endpoints/{endpoint}"): {},
    ("GET", "/v1/webhook-endpoints/{endpoint}/secret"): {},
    ("POST", "/v1/webhook-endpoints/{endpoint}/rotate-secret"): {"json": {}},
    ("GET", "/v1/segments"): {},
    ("POST", "/v1/segments"): {"json": {"name": "B segment", "kind": "static"}},
    ("GET", "/v1/segments/{segment}"): {},
    ("DELETE", "/v1/segments/{segment}"): {},
    ("POST", "/v1/segments/{segment}/members"): {"json": {"add": ["ext-0"]}},
    ("GET", "/v1/segments/{segment}/export"): {},
    ("GET", "/v1/automations"): {},
    # B names A's campaign: unknown to B (404), nothing stored.
    ("POST", "/v1/automations"): {
        "json": {
            "name": "b",
            "trigger": {"kind": "clicked", "campaign": "{campaign}"},
            "action": {"kind": "send", "template": "x"},
        }
    },
    ("GET", "/v1/automations/{automation}"): {},
    ("PATCH", "/v1/automations/{automation}"): {"json": {"enabled": False}},
    ("DELETE", "/v1/automations/{automation}"): {},
    ("GET", "/v1/automations/{automation}/runs"): {},
    ("GET", "/v1/webhook-endpoints/{endpoint}/deliveries"): {},
    ("POST", "/v1/webhook-endpoints/{endpoint}/replay"): {"json": {"since": "2020-01-01"}},
    ("GET", "/v1/webhook-deliveries/{delivery}"): {},
    ("POST", "/v1/webhook-deliveries/{delivery}/replay"): {},
}

# What B's answers must never hold: A's names, people, secrets and settings.
A_MARKERS = (
    CAMPAIGN_NAME, A_ORDER, A_NOTE, "19.99", A_NETWORK, '"Name0"', '"Name1"', '"+14155550001"', "a-shop.example.com", "A office",
    "192.0.2.0/24", "tenant-a-auth-token", "a1a1a1a1", "+14155550199", str(A_CLICK_WEIGHT),
    A_HOOK, A_HOOK_SECRET, A_SEGMENT, A_AUTOMATION, A_FOLLOW_UP,
)  # fmt: skip


def app_routes(container: Container) -> set[tuple[str, str]]:
    """(method, path) of every route the app serves, HEAD left out (it follows GET)."""
    api = container.web_app().redirect.fallback
    while not hasattr(api, "routes"):  # through the API's middleware (the body cap)
        api = api.app
    found: set[tuple[str, str]] = set()

    def walk(routes: Any, prefix: str) -> None:
        for r in routes:
            if isinstance(r, Mount):
                if r.path == DASHBOARD:
                    continue
                walk(r.routes or [], prefix + r.path)
            elif isinstance(r, Route):
                for m in r.methods or ():
                    if m != "HEAD":
                        found.add((m, prefix + r.path))

    walk(api.routes, "")
    return found


def _fill(value: Any, ids: dict[str, str]) -> Any:
    if isinstance(value, str):
        for k, v in ids.items():
            value = value.replace("{" + k + "}", v)
        return value
    if isinstance(value, dict):
        return {k: _fill(v, ids) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, ids) for v in value]
    return value


def _request(t: Tenants, method: str, template: str, key: str | None) -> tuple[str, str, Any, Any]:
    spec = MATRIX[(method, template)]
    ids = {**t.ids, **spec.get("ids", {})}
    kw = _fill({k: v for k, v in spec.items() if k not in ("content", "ids")}, ids)
    if "content" in spec:
        kw["content"] = spec["content"]
    return method, _fill(template, ids), key, kw


def test_every_route_is_in_the_matrix(tenants: Tenants) -> None:
    routes = app_routes(tenants.container)
    dashboard = {r for r in routes if r[1].startswith(DASHBOARD)}
    missing = routes - set(MATRIX) - PUBLIC - dashboard
    assert not missing, f"routes without a tenant check: add them to MATRIX or PUBLIC: {missing}"
    stale = (set(MATRIX) | PUBLIC) - routes
    assert not stale - {("GET", "/readyz")}, f"matrix rows for routes that do not exist: {stale}"


def test_every_authenticated_route_needs_a_key(tenants: Tenants) -> None:
    requests = [_request(tenants, m, p, None) for m, p in MATRIX]
    requests += [(m, path, "ct_not_a_key", kw) for m, path, _, kw in
                 [_request(tenants, m, p, None) for m, p in MATRIX]]  # fmt: skip
    for (method, path, _key, _kw), r in zip(requests, tenants.calls(requests), strict=True):
        assert r.status_code == 401, f"{method} {path}: {r.status_code} {r.text[:200]}"


def _snapshot(t: Tenants) -> list[Any]:
    """What A's own key sees of A's things (compared before and after B's requests)."""
    paths = [
        "/v1/domains", "/v1/contacts", "/v1/contacts/ext-0", "/v1/contacts/ext-0/opt-outs",
        "/v1/lists", "/v1/campaigns", f"/v1/campaigns/{t.ids['campaign']}",
        f"/v1/campaigns/{t.ids['campaign']}/report", f"/v1/campaigns/{t.ids['campaign']}/send",
        "/v1/messages", f"/v1/messages/{t.ids['message']}", "/v1/clicks", "/v1/providers",
        "/v1/providers/a-twilio", "/v1/networks", "/v1/networks/a-office/ranges",
        "/v1/opt-outs/replies", "/v1/keys", "/v1/conversions", "/v1/conversions/events",
        f"/v1/conversions/{t.ids['conversion']}", "/v1/conversions/rejected",
        "/v1/postback-secrets", "/v1/publishable-keys",
        "/v1/webhook-endpoints", f"/v1/webhook-endpoints/{t.ids['endpoint']}/secret",
        "/v1/attribution", "/v1/attribution/channels",
        f"/v1/campaigns/{t.ids['campaign']}/attribution",
        f"/v1/campaigns/{t.ids['campaign']}/report/conversions",
        "/v1/engagement/settings", "/v1/segments", "/v1/segments/a-vip",
        "/v1/automations",
    ]  # fmt: skip
    answers = t.calls([("GET", p, t.a_key, {}) for p in paths])
    for p, r in zip(paths, answers, strict=True):
        assert r.status_code == 200, f"{p}: {r.text}"
    return [_without_use_times(r.json()) for r in answers]


def _without_use_times(value: Any) -> Any:
    """`value` without keys' last-use times (A's own snapshot requests move them), webhook
    endpoints' failure runs (the jobs thread's attempts to A's unreachable endpoint move them)
    and engagement's rescoring progress (the jobs thread scores A's stale rows meanwhile; the
    settings themselves and their revision are compared)."""
    if isinstance(value, dict):
        moving = ("last_used_at", "failures", "failing_since", "stale_scores", "rescoring")
        return {k: _without_use_times(v) for k, v in value.items() if k not in moving}
    if isinstance(value, list):
        return [_without_use_times(v) for v in value]
    return value


def test_another_workspace_can_neither_read_nor_change_ours(tenants: Tenants) -> None:
    before = _snapshot(tenants)
    requests = [_request(tenants, m, p, tenants.b_key) for m, p in MATRIX]
    answers = tenants.calls(requests)
    for (method, path, _key, kw), r in zip(requests, answers, strict=True):
        where = f"{method} {path}"
        assert r.status_code < 500, f"{where}: {r.status_code} {r.text[:300]}"
        asked = json.dumps(kw, default=str)
        for marker in (*A_MARKERS, tenants.a_key[:10]):
            if marker not in asked:
                assert marker not in r.text, f"{where} shows A's {marker!r}: {r.text[:300]}"
    # Routes naming one of A's things in their path answer 404 (never 403: ids do not leak).
    for (method, template), (_m, path, _k, _kw), r in zip(MATRIX, requests, answers, strict=True):
        if "{" in template and "ids" not in MATRIX[(method, template)]:
            assert r.status_code == 404, f"{method} {path}: {r.status_code} {r.text[:200]}"
    assert _snapshot(tenants) == before
