"""A workspace's key cannot make the server read its environment or call where it should not.

The attack (issue 13): a tenant configures an HTTP provider whose template carries
``${CLICKTRAIL_DATABASE_URL}`` and whose URL is a listener of theirs, then test-sends, and the
server posts its database password to them; the same path reaches loopback and private
addresses (SSRF). Here a real listener on 127.0.0.1 records whatever reaches it: every refused
case must leave it empty. Runs on SQLite and PostgreSQL, through the whole app in process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from clicktrail.bootstrap import Container
from clicktrail.config import load_settings
from clicktrail.domain.errors import InvalidInput
from clicktrail.domain.models import Campaign, Workspace
from factories import (
    NOW_US,
    PYTHONPATH,
    Repos,
    make_api_key,
    make_campaign,
    make_contacts,
    make_domain,
    make_workspace,
    phone,
)
from served import in_process

HOST = "sms.example.com"
DB_SECRET = "postgresql://clicktrail:hunter2-db-password@db.internal/clicktrail"
CLOUD_SECRET = "aws-secret-key-do-not-leak"
SECRET_VALUES = (DB_SECRET, CLOUD_SECRET, "operator-provider-token")
ALLOW_LOOPBACK = {
    "CLICKTRAIL_OUTBOUND_ALLOW_NETWORKS": "127.0.0.0/8",
    "CLICKTRAIL_OUTBOUND_ALLOW_HTTP": "1",
}


# -- a listener that records everything that reaches it ------------------------------------------


@dataclass
class Listener:
    """A real HTTP server on `host` answering every request with `status` (and `location`)."""

    host: str = "127.0.0.1"
    status: int = 200
    location: str | None = None
    seen: list[bytes] = field(default_factory=list)

    def __post_init__(self) -> None:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def _any(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                owner.seen.append(str(self.headers).encode() + self.path.encode() + body)
                payload = json.dumps({"message_id": "prov-1"}).encode()
                self.send_response(owner.status)
                if owner.location:
                    self.send_header("Location", owner.location)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = _any

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer((self.host, 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def leaked(self) -> list[str]:
        text = b"\n".join(self.seen).decode("utf-8", "replace")
        return [s for s in SECRET_VALUES if s in text]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def listener() -> Iterator[Listener]:
    found = Listener()
    yield found
    found.close()


@pytest.fixture(autouse=True)
def server_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    """The server's environment holds what an attacker wants."""
    monkeypatch.setenv("CLICKTRAIL_DATABASE_URL", DB_SECRET)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", CLOUD_SECRET)
    monkeypatch.setenv("CLICKTRAIL_PROVIDER_TOKEN", "operator-provider-token")


# -- the world: a tenant with a key, contacts and a campaign --------------------------------------


@dataclass
class World:
    container: Container
    ws: Workspace
    key: str
    campaign: Campaign
    tmp: Path
    database_url: str

    def call(self, method: str, path: str, body: Any = None) -> httpx.Response:
        async def use(c: httpx.AsyncClient) -> httpx.Response:
            headers = {"Authorization": f"Bearer {self.key}"}
            return await c.request(method, path, headers=headers, json=body)

        return in_process(self.container, HOST, use)

    def create(
        self, options: dict[str, Any], kind: str = "http", name: str = "p"
    ) -> httpx.Response:
        return self.call("POST", "/v1/providers", {"name": name, "kind": kind, "options": options})

    def test_send(self, provider: str = "p") -> httpx.Response:
        return self.call(
            "POST",
            f"/v1/campaigns/{self.campaign.public_id}/test-send",
            {"to": phone(0), "provider": provider},
        )

    def providers(self) -> list[Any]:
        items: list[Any] = self.call("GET", "/v1/providers").json()["items"]
        return items


def make_world(database_url: str, tmp: Path, settings: dict[str, str]) -> World:
    container = Container(
        load_settings(
            env={
                "CLICKTRAIL_DATABASE_URL": database_url,
                "CLICKTRAIL_DATA_DIR": str(tmp),
                **settings,
            }
        )
    )
    ws = make_workspace(Repos.on(container.engine))
    make_domain(Repos.on(container.engine), ws, HOST)
    make_contacts(Repos.on(container.engine), ws, 2)
    campaign = make_campaign(
        Repos.on(container.engine), ws, "Hi {first_name}: https://shop.example.com/x"
    )
    return World(
        container, ws, make_api_key(Repos.on(container.engine), ws), campaign, tmp, database_url
    )


@pytest.fixture
def world(database_url: str, tmp_path: Path) -> Iterator[World]:
    """The default policy: nothing but public https addresses."""
    w = make_world(database_url, tmp_path, {})
    yield w
    w.container.dispose()


@pytest.fixture
def local_world(database_url: str, tmp_path: Path) -> Iterator[World]:
    """An operator who allows loopback over plain http (the listener's network)."""
    w = make_world(database_url, tmp_path, ALLOW_LOOPBACK)
    yield w
    w.container.dispose()


def http_options(url: str, **request: Any) -> dict[str, Any]:
    return {
        "request": {"url": url, "body": {"to": "{to}", "text": "{body}"}, **request},
        "response": {"message_id": "message_id"},
    }


def assert_problem(r: httpx.Response, status: int, field: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = r.json()
    assert body["field"] == field, body
    return body


# -- the exact attack ---------------------------------------------------------------------------


def test_the_reported_attack_answers_4xx_and_the_listener_gets_nothing(
    world: World, listener: Listener
) -> None:
    options = http_options(listener.url + "/collect")
    options["request"]["body"]["leak"] = "{db}"
    options["params"] = {"db": "${CLICKTRAIL_DATABASE_URL}"}
    options["secret_params"] = ["db"]

    created = world.create(options)
    body = assert_problem(created, 422, "params.db")
    assert "operator" in body["detail"]
    assert world.providers() == []
    sent = world.test_send()
    assert 400 <= sent.status_code < 500, sent.text
    assert listener.seen == []


def test_the_attack_with_an_allowed_listener_still_leaks_nothing(
    local_world: World, listener: Listener
) -> None:
    """Even where the operator allows the listener's network, a key cannot name a variable."""
    options = http_options(listener.url + "/collect")
    options["request"]["headers"] = {"X-Leak": "{db}"}
    options["params"] = {"db": "${CLICKTRAIL_DATABASE_URL}"}
    options["secret_params"] = ["db"]
    assert_problem(local_world.create(options), 422, "params.db")
    assert 400 <= local_world.test_send().status_code < 500
    assert listener.leaked() == [] and listener.seen == []


# -- every variable name, every place a reference could hide -------------------------------------

VARIABLES = [
    "CLICKTRAIL_DATABASE_URL",
    "AWS_SECRET_ACCESS_KEY",
    "CLICKTRAIL_PROVIDER_TOKEN",
    "HOME",
]


def _placements(url: str, var: str) -> list[tuple[str, dict[str, Any], str]]:
    ref = "${" + var + "}"
    out: list[tuple[str, dict[str, Any], str]] = []

    def http(field: str, change: Callable[[dict[str, Any]], None]) -> None:
        options = http_options(url + "/send")
        change(options)
        out.append(("http", options, field))

    def secret_param(o: dict[str, Any]) -> None:
        o["params"] = {"k": ref}
        o["secret_params"] = ["k"]
        o["request"]["body"]["k"] = "{k}"

    def plain_param(o: dict[str, Any]) -> None:
        o["params"] = {"k": ref}
        o["request"]["body"]["k"] = "{k}"

    http("params.k", secret_param)
    http("params.k", plain_param)
    http("request.body.leak", lambda o: o["request"]["body"].update(leak=ref))
    http("request.headers.X-Leak", lambda o: o["request"].update(headers={"X-Leak": ref}))
    http("request.url", lambda o: o["request"].update(url=f"{url}/send?k={ref}"))
    http("request.auth.token", lambda o: o["request"].update(auth={"type": "bearer", "token": ref}))
    http(
        "receipts.auth.secret",
        lambda o: o.update(
            receipts={
                "message_id": "id", "status": "st", "statuses": {"ok": "delivered"},
                "auth": {"type": "header_token", "header": "X-Token", "secret": ref},
            }
        ),
    )  # fmt: skip
    out.append((
        "twilio",
        {"account_sid": "AC" + "0" * 32, "auth_token": ref, "from": "+14155550100",
         "base_url": url},
        "auth_token",
    ))  # fmt: skip
    return out


@pytest.mark.parametrize("var", VARIABLES)
def test_no_reference_to_the_environment_is_taken_from_a_key(
    local_world: World, listener: Listener, var: str
) -> None:
    for i, (kind, options, where) in enumerate(_placements(listener.url, var)):
        r = local_world.create(options, kind=kind, name=f"p{i}")
        assert_problem(r, 422, where)
        assert 400 <= local_world.test_send(f"p{i}").status_code < 500
    assert local_world.providers() == []
    assert listener.seen == []


def test_a_secret_value_from_a_key_reaches_its_own_provider_only(
    local_world: World, listener: Listener
) -> None:
    """What a key may do: give the secret itself, sent where its provider puts it, never shown."""
    options = http_options(listener.url + "/send", headers={"X-Api-Key": "{key}"})
    options["params"] = {"key": "tenant-own-secret"}
    options["secret_params"] = ["key"]
    r = local_world.create(options)
    assert r.status_code == 201, r.text
    assert r.json()["settings"]["key"] == "********"
    sent = local_world.test_send()
    assert sent.json()["status"] == "sent", sent.text
    assert len(listener.seen) == 1 and b"tenant-own-secret" in listener.seen[0]


def test_a_reference_stored_before_the_fix_is_not_resolved(
    local_world: World, listener: Listener
) -> None:
    """A row an API caller stored with ``${CLICKTRAIL_DATABASE_URL}`` before references became
    the operator's: resolution refuses names outside secret_env_prefix; nothing is posted."""
    settings, _ = local_world.container.provider_kinds["http"].configure(
        "old",
        {
            **http_options(listener.url + "/send", headers={"X-Leak": "{db}"}),
            "params": {"db": "x"},
            "secret_params": ["db"],
        },
    )
    local_world.container.provider_repo.add_provider(
        public_id="prv_old", workspace_id=local_world.ws.id, name="old", kind="http",
        settings=settings, secrets={"db": "${CLICKTRAIL_DATABASE_URL}"}, now_us=NOW_US,
    )  # fmt: skip
    r = local_world.test_send("old")
    body = assert_problem(r, 422, "db")
    assert "secret_env_prefix" in body["detail"]
    assert DB_SECRET not in r.text
    assert listener.seen == []


def test_the_operator_cli_may_reference_the_prefix_only(world: World) -> None:
    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        env = {
            "PATH": os.environ.get("PATH", ""), **PYTHONPATH, "HOME": str(world.tmp),
            "CLICKTRAIL_DATABASE_URL": world.database_url,
            "CLICKTRAIL_DATA_DIR": str(world.tmp / "data"), "CLICKTRAIL_WORKSPACE": world.ws.slug,
            "NO_COLOR": "1", "COLUMNS": "200",
        }  # fmt: skip
        exe = str(Path(sys.executable).with_name("clicktrail"))
        return subprocess.run([exe, "provider", "add", *args], env=env, cwd=world.tmp,
                              capture_output=True, text=True, timeout=120, check=False)  # fmt: skip

    common = ["--kind", "twilio", "--account-sid", "AC" + "0" * 32, "--from", "+14155550100"]
    refused = cli("tw1", *common, "--auth-token", "${CLICKTRAIL_DATABASE_URL}")
    assert refused.returncode == 2, refused.stderr
    assert "auth_token" in refused.stderr and "CLICKTRAIL_PROVIDER_" in refused.stderr
    ok = cli("tw2", *common, "--auth-token", "${CLICKTRAIL_PROVIDER_TOKEN}")
    assert ok.returncode == 0, ok.stderr
    stored = world.providers()
    assert [(p["name"], p["settings"]["auth_token"]) for p in stored] == [
        ("tw2", "${CLICKTRAIL_PROVIDER_TOKEN}")
    ]


# -- URL forms refused when the provider is configured -------------------------------------------

FORBIDDEN_HOSTS = [
    "127.0.0.1", "127.1", "2130706433", "0177.0.0.1", "0x7f.0.0.1", "0x7f000001", "localhost",
    "LocalHost.", "api.localhost", "[::1]", "[::ffff:127.0.0.1]", "[::ffff:7f00:1]",
    "[64:ff9b::7f00:1]", "[2002:7f00:1::]", "0.0.0.0", "0", "[::]", "10.1.2.3", "172.16.0.1",
    "192.168.1.1", "100.64.0.1", "169.254.169.254", "[fd00:ec2::254]", "[fe80::1]",
    "224.0.0.1", "255.255.255.255",
]  # fmt: skip


@pytest.mark.parametrize("host", FORBIDDEN_HOSTS)
def test_forbidden_addresses_are_refused_at_configuration(world: World, host: str) -> None:
    r = world.create(http_options(f"https://{host}/send"))
    body = assert_problem(r, 422, "request.url")
    assert "outbound_allow_networks" in body["detail"]
    r = world.create(http_options("https://api.example.com/send") | {"base_url": f"https://{host}"})
    assert_problem(r, 422, "base_url")
    twilio = {"account_sid": "AC" + "0" * 32, "auth_token": "t", "from": "+14155550100",
              "base_url": f"https://{host}"}  # fmt: skip
    assert_problem(world.create(twilio, kind="twilio"), 422, "base_url")
    assert world.providers() == []


def test_plain_http_is_refused_unless_the_operator_allows_it(world: World) -> None:
    body = assert_problem(world.create(http_options("http://api.example.com/send")), 422,
                          "request.url")  # fmt: skip
    assert "https" in body["detail"]
    assert world.create(http_options("https://api.example.com/send")).status_code == 201


# -- at send time: after DNS, on the connection --------------------------------------------------


def _resolving(world: World, table: dict[str, list[str]]) -> None:
    """Give the server a resolver where the names of `table` point where the test says (a DNS
    answer the tenant controls)."""
    policy = world.container.outbound
    system = policy.resolver

    def resolve(host: str, port: int) -> list[str]:
        return table[host] if host in table else system(host, port)

    world.container.__dict__["outbound"] = replace(policy, resolver=resolve)


@pytest.mark.parametrize(
    "answer",
    [["127.0.0.1"], ["::1", "127.0.0.1"], ["93.184.216.34", "127.0.0.1"], ["169.254.169.254"],
     ["::ffff:127.0.0.1"], ["10.0.0.5"]],
)  # fmt: skip
def test_a_name_resolving_to_a_forbidden_address_sends_nothing(
    database_url: str, tmp_path: Path, listener: Listener, answer: list[str]
) -> None:
    w = make_world(database_url, tmp_path, {"CLICKTRAIL_OUTBOUND_ALLOW_HTTP": "1"})
    try:
        _resolving(w, {"sms-api.tenant.test": answer})
        r = w.create(http_options(f"http://sms-api.tenant.test:{listener.port}/send"))
        assert r.status_code == 201, r.text  # a DNS name: only the connection can tell
        sent = w.test_send()
        assert sent.status_code == 200, sent.text
        out = sent.json()
        assert (out["status"], out["error_code"]) == ("failed", "forbidden_destination"), out
        assert "outbound_allow_networks" in out["error_message"]
        assert listener.seen == []
    finally:
        w.container.dispose()


def test_twilio_base_url_resolving_to_loopback_sends_nothing(world: World) -> None:
    _resolving(world, {"twilio-gw.tenant.test": ["127.0.0.1"]})
    options = {"account_sid": "AC" + "0" * 32, "auth_token": "t", "from": "+14155550100",
               "base_url": "https://twilio-gw.tenant.test"}  # fmt: skip
    assert world.create(options, kind="twilio").status_code == 201
    out = world.test_send().json()
    assert (out["status"], out["error_code"]) == ("failed", "forbidden_destination"), out


def test_a_redirect_from_an_allowed_host_is_not_followed(database_url: str, tmp_path: Path) -> None:
    """The operator allows one address; its answer redirects to another loopback address: the
    HTTP provider never follows redirects, so the second listener gets nothing."""
    inner = Listener(host="127.0.0.2")
    outer = Listener(status=307, location=inner.url + "/steal")
    w = make_world(database_url, tmp_path, {"CLICKTRAIL_OUTBOUND_ALLOW_NETWORKS": "127.0.0.1",
                                            "CLICKTRAIL_OUTBOUND_ALLOW_HTTP": "1"})  # fmt: skip
    try:
        assert w.create(http_options(outer.url + "/send")).status_code == 201
        out = w.test_send().json()
        assert (out["status"], out["error_code"]) == ("failed", "http_307"), out
        assert len(outer.seen) == 1 and inner.seen == []
    finally:
        w.container.dispose()
        inner.close()
        outer.close()


def test_the_operator_allow_list_lets_the_listener_through(
    local_world: World, listener: Listener
) -> None:
    for i, host in enumerate(["127.0.0.1", "localhost", "127.1"]):
        url = f"http://{host}:{listener.port}/send"
        assert local_world.create(http_options(url), name=f"ok{i}").status_code == 201
        out = local_world.test_send(f"ok{i}").json()
        assert out["status"] == "sent", out
    assert len(listener.seen) == 3


# -- the operator's settings ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "prefix", ["", "CLICKTRAIL_", "CLICKTRAIL_D", "CLICKTRAIL_DATABASE_URL", "A-B"]
)
def test_a_prefix_that_would_expose_a_setting_is_refused(prefix: str) -> None:
    settings = load_settings(env={"CLICKTRAIL_SECRET_ENV_PREFIX": prefix})
    with pytest.raises(InvalidInput) as exc:
        settings.checked_secret_env_prefix()
    assert exc.value.field == "secret_env_prefix"


def test_a_malformed_allow_list_stops_the_server(tmp_path: Path) -> None:
    settings = load_settings(
        env={
            "CLICKTRAIL_DATA_DIR": str(tmp_path),
            "CLICKTRAIL_OUTBOUND_ALLOW_NETWORKS": "10.0.0/8x",
        }
    )
    container = Container(settings)
    try:
        with pytest.raises(InvalidInput) as exc:
            container.web_app()
        assert exc.value.field == "outbound_allow_networks"
    finally:
        container.dispose()
