"""The OpenAPI document is accurate: every route is described, and schemathesis, run over the
whole document against the real server (uvicorn on 127.0.0.1) with a valid key, finds no
server error and no response that breaks the document. Bounded (25 examples per operation)
and deterministic (derandomized)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from starlette.routing import Route

from clicktrail.bootstrap import Container
from clicktrail.config import load_settings
from clicktrail.web.openapi import OPERATIONS, document, render_docs
from factories import (
    make_api_key,
    make_campaign,
    make_contacts,
    make_domain,
    make_workspace,
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
CORE = {("GET", "/healthz"), ("POST", "/v1/messages/status"),
        ("GET", "/v1/campaigns/{campaign}/report"), ("GET", "/v1/tls/allowed")}  # fmt: skip


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, str]]:
    """A real server over a workspace with a domain, contacts, a sent campaign and clicks;
    returns (base URL, API key)."""
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
    store = container.store
    ws = make_workspace(store)
    make_domain(store, ws, "sms.example.com")
    make_contacts(store, ws, 3, list_name="vip")
    cp = make_campaign(store, ws, "Hi {first_name}: https://shop.example.com/a",
                       slug="spring")  # fmt: skip
    send(store, ws, cp, tmp / "outbox.jsonl")
    key = make_api_key(store, ws)
    with ThreadServer(container) as server:
        for token, _, _ in tokens_of(store, cp):
            httpx.get(f"{server.url}/c/{token}", headers={"Host": "sms.example.com"})
        yield server.url, key
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
    served: tuple[str, str], mode: GenerationMode
) -> None:
    """Every operation of the served document, 25 derandomized examples each."""
    base_url, key = served
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json")
    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1

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
    assert operations == len(OPERATIONS)
    assert not failures, "\n\n".join(failures)


def _app_routes(tmp_path: Path) -> set[tuple[str, str]]:
    container = Container(load_settings(env={"CLICKTRAIL_DATA_DIR": str(tmp_path),
                                             "CLICKTRAIL_DATABASE_URL": "sqlite://"}))  # fmt: skip
    found = set(CORE)
    for route in container.extra_routes():
        if isinstance(route, Route) and route.path.startswith("/v1/"):
            for method in route.methods or ():
                if method != "HEAD":
                    found.add((method, route.path))
    return found


def test_every_api_route_is_described(tmp_path: Path) -> None:
    described = {(op.method.upper(), op.path) for op in OPERATIONS}
    missing = _app_routes(tmp_path) - described
    assert not missing, f"routes missing from web/openapi.py: {sorted(missing)}"


def test_document_is_openapi_3_1_with_bearer_and_problem_responses() -> None:
    doc = document()
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


def test_docs_page_is_self_contained(served: tuple[str, str]) -> None:
    base_url, _ = served
    r = httpx.get(f"{base_url}/docs")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in r.headers["content-security-policy"]
    page = r.text
    for op in OPERATIONS:
        assert f"<code>{op.path}</code>" in page
    assert "<script" not in page and "http://" not in page.replace("http://127", "")
    assert "https://" not in page.split('<h2 id="schemas">')[0].replace(
        "https://clicktrail.dev", ""
    )
    assert httpx.get(f"{base_url}/openapi.json").json() == document()


def test_docs_page_escapes_what_it_shows() -> None:
    doc = document()
    evil = {**doc, "info": {**doc["info"], "title": "<script>alert(1)</script>"}}
    assert "<script>alert" not in render_docs(evil)
