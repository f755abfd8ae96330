"""The OpenAPI document is derived from the routes and accurate: every API route declares its
operation (the app refuses one that does not), every documented operation is served, every
response has a schema, real responses of every read operation (the reports with data in every
section) validate against the document, and schemathesis, run over the whole document against
the real server (uvicorn on 127.0.0.1) with a valid key, finds no server error and no response
that breaks the document. Bounded (25 examples per operation) and deterministic (derandomized).
Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from typing import Any

import httpx
import jsonschema_rs
import pytest
import schemathesis
import sqlalchemy as sa
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from pydantic import ValidationError
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from clicktrail.bootstrap import Container
from clicktrail.config import load_settings
from clicktrail.domain.events import StoredEvent
from clicktrail.domain.holdout import HoldoutSpec
from clicktrail.domain.models import CampaignOptions
from clicktrail.storage import tables
from clicktrail.web import schemas_touchpoints as st
from clicktrail.web.api import build_api
from clicktrail.web.openapi import (
    UndocumentedRoute,
    check_documented,
    document,
    is_api_path,
    operations,
    walk,
)
from clicktrail.web.openapi_page import render_docs
from clicktrail.web.routing import ApiRoute, Op, Reply
from clicktrail.web.schemas import out_json
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
from served import ThreadServer

CHECKS = [
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
]
BROWSER = {
    "User-Agent": "Mozilla/5.0 (iPhone; CPU iPhone OS 18_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/18.5 Mobile/15E148 Safari/604.1",
    "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    "Accept-Language": "en-US,en;q=0.9",
    "Sec-Fetch-Dest": "document",
    "Sec-Fetch-Mode": "navigate",
    "Sec-Fetch-Site": "none",
}


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, str, dict[str, str]]]:
    """A real server over a workspace with a domain, contacts, a sent campaign with delivery
    receipts and counted clicks (in the stored clicks, not only the inbox), a network list
    and a provider; returns (base URL, API key, what fills the path parameters)."""
    tmp = tmp_path_factory.mktemp("openapi")
    if request.param == "sqlite":
        shutil.copy(request.getfixturevalue("sqlite_template"), tmp / "api.db")
        url = f"sqlite:///{tmp / 'api.db'}"
    else:
        url = request.getfixturevalue("pg_database_url")
        request.getfixturevalue("truncate_pg")
    container = Container(
        load_settings(env={"CLICKTRAIL_DATABASE_URL": url, "CLICKTRAIL_DATA_DIR": str(tmp)})
    )
    store = Repos.on(container.engine)
    ws = make_workspace(store)
    make_domain(store, ws, "sms.example.com")
    make_contacts(store, ws, 3, list_name="vip")
    # One contact of three held out: the lift report has a holdout to answer about.
    cp = make_campaign(store, ws, "Hi {first_name}: https://shop.example.com/a",
                       slug="spring", options=CampaignOptions(holdout=HoldoutSpec(0.34, 1)))  # fmt: skip
    send(store, ws, cp, tmp / "outbox.jsonl")
    key = make_api_key(store, ws)
    ids = {"campaign": cp.slug, "contact": "ext-0", "message": message_ids(store, cp)[0],
           "host": "sms.example.com", "name": "office", "segment": "engaged"}  # fmt: skip
    auth = {"Authorization": f"Bearer {key}"}
    with ThreadServer(container) as server:
        # Delivered an hour ago, tapped now from a phone's browser: counted human clicks.
        at = int(time.time()) - 3600
        receipts = [
            {"message_id": m, "status": "delivered", "at": at} for m in message_ids(store, cp)
        ]
        setup = [
            httpx.post(f"{server.url}/v1/messages/status", json=receipts, headers=auth),
            httpx.post(f"{server.url}/v1/networks/office/ranges", headers=auth,
                       json={"ranges": [{"cidr": "192.0.2.0/24", "owner": "office"}]}),
            httpx.post(f"{server.url}/v1/providers", headers=auth, json={
                "name": "office", "kind": "twilio", "options": {
                    "account_sid": "AC" + "a1" * 16, "auth_token": "t", "from": "+14155550199"}}),
        ]  # fmt: skip
        assert all(r.status_code < 300 for r in setup), [r.text for r in setup]
        taps = [
            httpx.get(f"{server.url}/c/{token}", headers={"Host": "sms.example.com", **BROWSER})
            for token, _, _ in tokens_of(store, cp)
        ]
        # A click id, a postback secret and a publishable key: the postback and the pixel.
        ids["_cid"] = taps[0].headers["location"].rsplit("ct_cid=", 1)[1]
        for name, path in (("_pbs", "/v1/postback-secrets"), ("_pk", "/v1/publishable-keys")):
            made = httpx.post(f"{server.url}{path}", headers=auth, json={"name": "n"})
            assert made.status_code == 201, made.text
            ids[name] = made.json()["secret"]
        # The jobs thread moves clicks from the inbox into the reports within a second or so.
        deadline = time.monotonic() + 30
        while True:
            r = httpx.get(f"{server.url}/v1/campaigns/{cp.slug}/report/full", headers=auth)
            if r.json()["recipients"]["items"] or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert r.json()["recipients"]["items"], r.text
        (key_item,) = httpx.get(f"{server.url}/v1/keys", headers=auth).json()["items"]
        ids["key_id"] = key_item["id"]
        hook = httpx.post(f"{server.url}/v1/webhook-endpoints", headers=auth, json={
            "url": "https://crm.example.com/hooks", "events": ["conversion.created"]})  # fmt: skip
        assert hook.status_code == 201, hook.text
        ids["endpoint"] = hook.json()["id"]
        # A conversion of a clicked contact, with a value: its listing and its own page.
        conversion = httpx.post(f"{server.url}/v1/conversions", headers=auth, json={
            "contact": {"external_id": "ext-0"}, "event": "purchase", "value": "12.50",
            "currency": "EUR", "txn": "order-1"})  # fmt: skip
        assert conversion.status_code == 201, conversion.text
        ids["conversion"] = conversion.json()["conversion"]["id"]
        rule = httpx.post(f"{server.url}/v1/automations", headers=auth, json={
            "name": "Nudge", "trigger": {"kind": "clicked_no_conversion", "campaign": cp.slug,
            "within": "1d"}, "conditions": {"quiet_hours": "21:00-08:00",
            "frequency_cap": {"max": 1, "per": "week"}, "segment": "engaged"},
            "action": {"kind": "send", "template": "Still there? https://shop.example.com/c"}})  # fmt: skip
        assert rule.status_code == 201, rule.text
        ids["automation"] = rule.json()["id"]
        split = httpx.post(f"{server.url}/v1/campaigns", headers=auth, json={
            "name": "Split", "variants": [
                {"name": "a", "template": "A https://shop.example.com/a"},
                {"name": "b", "template": "B https://shop.example.com/b"}]})  # fmt: skip
        assert split.status_code == 201, split.text
        ids["_variants"] = split.json()["slug"]  # the variant routes ask this campaign
        # A delivery of it, made here rather than waited for (on PostgreSQL the dispatcher
        # waits for older transactions anywhere on the server, other sessions' included).
        with container.engine.connect() as conn:
            row = conn.execute(sa.select(tables.events)).first()
        assert row is not None
        event = StoredEvent(row.id, row.txid, row.public_id, row.workspace_id, row.type,
                            row.occurred_us, row.payload)  # fmt: skip
        (endpoint,) = container.webhooks.endpoints_page(ws.id, None, 1)
        container.deliveries.add_deliveries("openapi-test", [(endpoint, event)], event, 1)
        (made,) = container.deliveries.deliveries_page(ws.id, endpoint.id, None, 1, None)
        ids["delivery"] = made.public_id
        # The first lift or power call of a process imports statsmodels and scipy (seconds on a
        # busy machine): make it here, so no generated case below waits for it.
        warm = httpx.get(f"{server.url}/v1/holdout-size", headers=auth, timeout=300,
                         params={"audience": 1000, "baseline": 0.04, "mde": 0.02})  # fmt: skip
        assert warm.status_code == 200, warm.text
        yield server.url, key, ids
    container.dispose()


@pytest.fixture(scope="module")
def truncate_pg(pg_database_url: str) -> None:
    import sqlalchemy as sa

    from clicktrail.storage import tables

    engine = sa.create_engine(pg_database_url)
    names = ", ".join(f'"{t.name}"' for t in tables.metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(sa.text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    engine.dispose()


@pytest.mark.slow
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_schemathesis_finds_no_server_error_nor_schema_violation(
    served: tuple[str, str, dict[str, str]], mode: GenerationMode
) -> None:
    """Every operation of the served document, 25 derandomized examples each."""
    base_url, key, _ = served
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json")
    failures: list[str] = []
    count = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        count += 1

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(max_examples=25, derandomize=True, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck), phases=[Phase.generate])  # fmt: skip
        def run(case: Any) -> None:
            case.call_and_validate(
                base_url=base_url, headers={"Authorization": f"Bearer {key}"}, checks=CHECKS
            )

        try:
            run()
        except Unsatisfiable:
            # No negative input exists for an operation without parameters (GET /healthz).
            assert mode == GenerationMode.NEGATIVE and not operation.query, operation.label
        except Exception as exc:
            failures.append(f"{operation.label}: {exc}")
    assert count == len(operations_of_app()) > 50
    assert not failures, "\n\n".join(failures)


def app_routes() -> list[BaseRoute]:
    """The route table of the API app as `clicktrail serve` builds it (redirect aside)."""
    container = Container(load_settings(env={"CLICKTRAIL_DATABASE_URL": "sqlite://"}))
    api: Any = container.web_app().redirect.fallback
    while not hasattr(api, "routes"):  # through the API's middleware (the body cap)
        api = api.app
    container.dispose()
    return list(api.routes)


def operations_of_app() -> list[tuple[str, ApiRoute]]:
    return operations(app_routes())


def test_every_api_route_declares_its_operation() -> None:
    routes = app_routes()
    bare = [(p, r) for p, r in walk(routes) if is_api_path(p) and not isinstance(r, ApiRoute)]
    assert not bare
    # The API is there at all, and what is not an ApiRoute is not the API: the home page, the
    # document and its page, the dashboard.
    assert len(operations(routes)) > 50
    others = {p for p, r in walk(routes) if not isinstance(r, ApiRoute)}
    assert {p for p in others if not p.startswith("/dashboard")} == {"/", "/openapi.json", "/docs"}


def test_an_app_with_an_undocumented_api_route_does_not_build() -> None:
    async def handler(_request: Request) -> Response:
        return Response()

    plain = Route("/v1/conversions", handler, methods=["POST"])
    with pytest.raises(UndocumentedRoute, match="POST /v1/conversions"):
        build_api(None, [plain])  # type: ignore[arg-type]
    with pytest.raises(UndocumentedRoute, match="GET /healthz"):
        check_documented([Route("/healthz", handler, methods=["GET"])])
    op = Op("Twice", "server", Reply(204, "Nothing."))
    twice = [ApiRoute("/v1/x", handler, "GET", op), ApiRoute("/v1/x", handler, "GET", op)]
    with pytest.raises(UndocumentedRoute, match="GET /v1/x is declared twice"):
        check_documented(twice)
    with pytest.raises(ValueError, match="unknown tag"):
        Op("Untagged", "conversion", Reply(204, "Nothing."))


def test_every_documented_operation_is_served_and_every_route_documented() -> None:
    routes = app_routes()
    doc = document(routes)
    documented = {(m.upper(), p) for p, ms in doc["paths"].items() for m in ms}
    served = {
        (m, p) for p, r in walk(routes) if is_api_path(p) for m in r.methods or () if m != "HEAD"
    }
    assert documented == served
    # Each documented path is matched by the app's router with its method, parameters filled.
    for method, path in documented:
        url = path.replace("{", "x").replace("}", "")
        scope = {"type": "http", "method": method, "path": url, "root_path": ""}
        matched = [r for r in routes if r.matches(scope)[0].name == "FULL"]
        assert matched and isinstance(matched[0], ApiRoute), (method, path)


def test_every_response_has_a_schema_and_json_ones_are_named_models() -> None:
    doc = document(app_routes())
    schemas = doc["components"]["schemas"]
    for path, methods in doc["paths"].items():
        for method, op in methods.items():
            for code, response in op["responses"].items():
                content = response.get("content", {})
                assert content or code == "204", (method, path, code)
                for media, c in content.items():
                    assert c["schema"], (method, path, code, media)
                    if media == "application/json" and code.startswith("2"):
                        # A named component, closed to unknown keys: a shape change shows.
                        refs = c["schema"].get("anyOf", [c["schema"]])
                        for ref in refs:
                            name = ref["$ref"].rsplit("/", 1)[-1]
                            assert schemas[name].get("additionalProperties") is False, name
    # The report responses are real models now, not free-form objects.
    report_ops = {p: ms["get"] for p, ms in doc["paths"].items() if "report" in p or
                  p.endswith("/recipients")}  # fmt: skip
    # report, report/full, report/conversions, report/lift, recipients, compare, variants/report
    assert len(report_ops) == 7
    for op in report_ops.values():
        ref = op["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
        assert schemas[ref.rsplit("/", 1)[-1]]["required"]


def _validator(doc: dict[str, Any], schema: dict[str, Any]) -> Any:
    return jsonschema_rs.Draft202012Validator({"components": doc["components"], **schema})


def test_real_responses_of_every_read_validate_against_the_document(
    served: tuple[str, str, dict[str, str]],
) -> None:
    """Every GET operation, asked with a valid key and real identifiers, answers 200 with a
    body its documented schema accepts; the reports carry data in every section."""
    base_url, key, ids = served
    doc = httpx.get(f"{base_url}/openapi.json").json()
    asked = 0
    for path, methods in doc["paths"].items():
        if "get" not in methods:
            continue
        url = path.replace("{campaign}", ids["_variants"]) if "/variants" in path else path
        for name, value in ids.items():
            url = url.replace("{" + name + "}", value)
        params = {
            "/v1/tls/allowed": {"domain": "sms.example.com"},
            "/postback": {"cid": ids["_cid"], "txn": "pb-1", "secret": ids["_pbs"]},
            "/v1/conversions/pixel.gif": {"cid": ids["_cid"], "txn": "px-1", "key": ids["_pk"]},
            "/v1/holdout-size": {"audience": "1000", "baseline": "0.04", "mde": "0.02"},
        }.get(path, {})
        r = httpx.get(f"{base_url}{url}", params=params,
                      headers={"Authorization": f"Bearer {key}"})  # fmt: skip
        assert r.status_code == 200, (path, r.text)
        media = r.headers["content-type"].split(";")[0]
        content = methods["get"]["responses"]["200"]["content"]
        assert media in content, (path, media)
        if media == "application/json":
            errors = [
                str(e) for e in _validator(doc, content[media]["schema"]).iter_errors(r.json())
            ]
            assert not errors, (path, errors)
        asked += 1
    assert asked == sum("get" in ms for ms in doc["paths"].values()) > 25
    full = httpx.get(f"{base_url}/v1/campaigns/{ids['campaign']}/report/full",
                     headers={"Authorization": f"Bearer {key}"}).json()  # fmt: skip
    assert full["unique_clicks"] > 0 and full["links"] and full["devices"]
    assert any(b["clicks"] for b in full["timing"]["buckets"]) or full["timing"]["first_clicks"]
    assert full["recipients"]["items"] and full["countries"] and full["bots"]["by_verdict"]


def test_a_changed_report_shape_fails_validation(served: tuple[str, str, dict[str, str]]) -> None:
    """The check above can fail: a report with a key renamed, or a number turned into text, is
    refused by the document's schema."""
    base_url, key, ids = served
    doc = httpx.get(f"{base_url}/openapi.json").json()
    auth = {"Authorization": f"Bearer {key}"}
    for path in ("report", "report/full"):
        body = httpx.get(f"{base_url}/v1/campaigns/{ids['campaign']}/{path}", headers=auth).json()
        op = doc["paths"][f"/v1/campaigns/{{campaign}}/{path}"]["get"]
        v = _validator(doc, op["responses"]["200"]["content"]["application/json"]["schema"])
        assert v.is_valid(body)
        assert not v.is_valid({**{k: x for k, x in body.items() if k != "ctr"}, "rate": 0.1})
        assert not v.is_valid({**body, "provisional": {**body["provisional"], "requests": "1"}})
        assert not v.is_valid({**body, "links": [{**body["links"][0], "extra": 1}]})


def test_document_is_openapi_3_1_with_bearer_and_problem_responses() -> None:
    doc = document(app_routes())
    assert doc["openapi"] == "3.1.0"
    assert doc["components"]["securitySchemes"]["bearer"] == {
        "type": "http", "scheme": "bearer",
        "description": "A workspace API key (`clicktrail keys create`).",
    }  # fmt: skip
    problem = doc["components"]["schemas"]["ProblemDetails"]
    assert {"type", "title", "status", "detail", "code"} <= set(problem["required"])
    assert {"field", "errors"} <= set(problem["properties"])
    for p, methods in doc["paths"].items():
        for op in methods.values():
            if op["security"]:
                assert "401" in op["responses"], p
            for code, response in op["responses"].items():
                if code.startswith(("4", "5")):
                    assert list(response["content"]) == ["application/problem+json"], p


def test_docs_page_is_self_contained(served: tuple[str, str, dict[str, str]]) -> None:
    base_url, _, _ = served
    r = httpx.get(f"{base_url}/docs")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in r.headers["content-security-policy"]
    page = r.text
    for path, _route in operations_of_app():
        assert f"<code>{path}</code>" in page
    assert "<script" not in page and "http://" not in page.replace("http://127", "")
    assert "https://" not in page.split('<h2 id="schemas">')[0].replace(
        "https://clicktrail.dev", ""
    )
    assert httpx.get(f"{base_url}/openapi.json").json() == document(app_routes())


def test_docs_page_escapes_what_it_shows() -> None:
    doc = document(app_routes())
    evil = {**doc, "info": {**doc["info"], "title": "<script>alert(1)</script>"}}
    assert "<script>alert" not in render_docs(evil)


def test_real_answers_of_the_writes_of_conversions_touchpoints_and_attribution(
    served: tuple[str, str, dict[str, str]],
) -> None:
    """Every write of conversions, touchpoints, credentials and attribution settings, asked
    with real data, answers a body its documented schema for that status accepts: single and
    batch, accepted and duplicate, refused items in a batch."""
    base_url, key, ids = served
    doc = httpx.get(f"{base_url}/openapi.json").json()
    auth = {"Authorization": f"Bearer {key}"}
    conversion = {"contact": {"external_id": "ext-1"}, "event": "signup", "txn": "w-1"}
    touch = {"channel": "email", "contact": {"external_id": "ext-1"}, "touch_id": "t-1"}
    calls: list[tuple[str, str, str, dict[str, Any] | None, int]] = [
        ("POST", "/v1/conversions", "/v1/conversions", conversion, 201),
        ("POST", "/v1/conversions", "/v1/conversions", conversion, 200),
        ("POST", "/v1/conversions", "/v1/conversions",
         {"conversions": [conversion, {"click_id": "AAAAAAAAAAAAAAAA"}, {"event": 3}]}, 200),
        ("POST", "/v1/touchpoints", "/v1/touchpoints", touch, 201),
        ("POST", "/v1/touchpoints", "/v1/touchpoints", touch, 200),
        ("POST", "/v1/touchpoints", "/v1/touchpoints",
         {"touchpoints": [touch, {"channel": "sms"}, {**touch, "contact": {"phone": "x"}}]}, 200),
        ("PUT", "/v1/conversions/events/lead", "/v1/conversions/events/{event}",
         {"duplicate_mode": "count"}, 200),
        ("POST", "/v1/postback-secrets", "/v1/postback-secrets", {"name": "w"}, 201),
        ("PUT", "/v1/attribution", "/v1/attribution", {"model": "last_click"}, 200),
        ("PUT", f"/v1/campaigns/{ids['campaign']}/attribution",
         "/v1/campaigns/{campaign}/attribution", {"model": "first_click"}, 200),
    ]  # fmt: skip
    answers = []
    for method, url, path, body, status in calls:
        r = httpx.request(method, f"{base_url}{url}", json=body, headers=auth)
        assert r.status_code == status, (method, url, r.text)
        answers.append(r.json())
        schema = doc["paths"][path][method.lower()]["responses"][str(status)]["content"]
        v = _validator(doc, schema["application/json"]["schema"])
        assert not [str(e) for e in v.iter_errors(r.json())], (method, url, r.json())
    assert [x["outcome"] for x in answers[2]["results"]] == ["duplicate", "unknown_click",
                                                             "invalid"]  # fmt: skip
    assert [x["outcome"] for x in answers[5]["results"]] == ["duplicate", "invalid", "invalid"]
    revoke = f"/v1/postback-secrets/{answers[7]['id']}"
    r = httpx.delete(f"{base_url}{revoke}", headers=auth)
    op = doc["paths"]["/v1/postback-secrets/{postback_secret}"]["delete"]
    v = _validator(doc, op["responses"]["200"]["content"]["application/json"]["schema"])
    assert r.status_code == 200 and v.is_valid(r.json()), r.text
    # The check can fail: a batch answer with an unknown key is refused by the same schema.
    op = doc["paths"]["/v1/conversions"]["post"]
    v = _validator(doc, op["responses"]["200"]["content"]["application/json"]["schema"])
    assert not v.is_valid({**answers[2], "extra": 1})


def test_answers_are_checked_against_their_model_before_they_are_written() -> None:
    """`out_json` writes a conforming answer as it is, and refuses one that drifted (a key
    more, a key less, a type changed) instead of sending it."""
    good = {"outcome": "accepted", "id": "tch_1"}
    assert json.loads(out_json(st.TouchpointRecorded, good)) == good
    batch = {"results": [{"outcome": "invalid", "id": None, "field": "/x", "detail": "d"},
                         {"outcome": "accepted", "id": "tch_1"}], "counts": {"accepted": 1}}  # fmt: skip
    assert json.loads(out_json(st.TouchpointBatchOut, batch)) == batch  # no null keys added
    for bad in ({**good, "extra": 1}, {"outcome": "accepted"}, {**good, "id": 7},
                {**good, "outcome": "stored"}):  # fmt: skip
        with pytest.raises(ValidationError):
            out_json(st.TouchpointRecorded, bad)
