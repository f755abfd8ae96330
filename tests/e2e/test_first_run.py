"""The first run, as a new user meets it: `clicktrail serve --demo` (what `make run` starts) as a
real process on SQLite and PostgreSQL: a taken port, the demo's API key from one start to the
next, and the server's bare address in a browser."""

from __future__ import annotations

import re
import socket
import stat
import time

import httpx
import pytest
import sqlalchemy as sa

from conftest import Env, Server

pytestmark = pytest.mark.e2e

KEY = re.compile(r"Bearer (ct_[A-Za-z0-9_-]+)")


def test_a_taken_port_stops_serve_before_it_prints_anything(env: Env) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        for option, variable in ((["--port", str(port)], {}), ([], {"CLICKTRAIL_PORT": str(port)})):
            proc = env.cli("serve", "--demo", *option, check=False, settings=variable)
            assert proc.returncode == 4, proc.stderr
            assert proc.stdout == ""  # no banner, no links, no key
            stderr = " ".join(proc.stderr.split())
            assert f"port {port} on 127.0.0.1 is already in use" in stderr
            assert "--port" in stderr and "CLICKTRAIL_PORT=" in stderr
            assert "Errno" not in stderr and "Traceback" not in stderr
    # Nothing was seeded either.
    assert env.cli("workspace", "list", "--json").stdout.strip() == "[]"


def _demo(server_factory: type[Server], env: Env) -> str:
    """Start `serve --demo`, stop it, and return the API key its banner showed."""
    server = server_factory(env, "--demo")
    banner = server.log.read_text()
    server.stop()
    found = KEY.search(banner)
    assert found, banner
    return found[1]


def test_the_demo_keeps_one_api_key_until_it_is_revoked(
    env: Env, server_factory: type[Server]
) -> None:
    first = _demo(server_factory, env)
    kept = env.data_dir / "demo-api-key"
    assert kept.read_text().strip() == first
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600

    server = server_factory(env, "--demo")
    banner = server.log.read_text()
    assert KEY.search(banner)[1] == first  # type: ignore[index]
    assert str(kept) in " ".join(banner.split())
    report = httpx.get(
        server.base + "/v1/campaigns/autumn-sale-demo/report",
        headers={"Authorization": f"Bearer {first}"},
    )
    assert report.status_code == 200, report.text
    server.stop()

    engine = sa.create_engine(env.database_url.replace("postgresql://", "postgresql+psycopg://"))
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE api_keys SET revoked_us = :t"), {"t": time.time_ns() // 1000})
        keys_before = conn.execute(sa.text("SELECT count(*) FROM api_keys")).scalar_one()
    engine.dispose()
    again = _demo(server_factory, env)
    assert again != first
    assert kept.read_text().strip() == again
    assert keys_before == 1  # two starts, one key


def test_the_banner_says_what_curl_and_a_browser_count(
    env: Env, server_factory: type[Server]
) -> None:
    server = server_factory(env, "--demo")
    banner = " ".join(server.log.read_text().split())
    server.stop()
    assert "in a browser on this machine: that is a counted click" in banner
    assert "curl is not a person" in banner


def test_the_bare_address_goes_to_the_dashboard_or_the_domains_fallback(
    env: Env, server_factory: type[Server]
) -> None:
    env.cli("workspace", "create", "Acme")
    env.cli("domain", "add", "127.0.0.1", "--scheme", "http")
    env.cli("domain", "add", "localhost", "--scheme", "http",
            "--fallback-url", "https://brand.example.com/")  # fmt: skip
    server = server_factory(env)
    for method in ("GET", "HEAD"):
        home = httpx.request(method, server.base + "/")
        assert (home.status_code, home.headers["location"]) == (302, "/dashboard/")
    # A short domain's fallback URL answers `/` there, as it answers unknown links.
    for path in ("/", "/c/unknown1"):
        r = httpx.get(server.base + path, headers={"Host": "localhost"})
        assert (r.status_code, r.headers["location"]) == (302, "https://brand.example.com/")
    page = httpx.get(server.base + "/", follow_redirects=True)
    assert page.status_code == 200
    assert page.url.path.startswith("/dashboard")
    server.stop()
