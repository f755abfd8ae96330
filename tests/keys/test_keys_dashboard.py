"""Revoking a key signs its dashboard sessions out at once, and so does its expiry: every page
looks the session's key up again (SQLite and PostgreSQL, the whole app in process)."""

from __future__ import annotations

import re
import time

import httpx

from clicktrail.services import keys
from clicktrail.services.clock import now_us
from inprocess_api import HOST, Api, sign_in
from served import in_process


def test_revoking_the_key_ends_its_sessions_at_once(api: Api) -> None:
    spare = keys.create_key(api.container.keys, api.ws, "browser", now_us())

    async def use(c: httpx.AsyncClient) -> None:
        await sign_in(c, spare.secret)
        assert (await c.get("/dashboard/")).status_code == 200
        r = await c.delete(
            f"/v1/keys/{spare.key.public_id}", headers={"Authorization": f"Bearer {api.key}"}
        )
        assert r.status_code == 204
        r = await c.get("/dashboard/")
        assert r.status_code == 303
        assert r.headers["location"].startswith("/dashboard/login")
        # Signing in again with the revoked key is refused.
        form = await c.get("/dashboard/login")
        token = re.search(r'name="token" value="([^"]+)"', form.text)
        assert token is not None
        r = await c.post("/dashboard/login", data={"key": spare.secret, "token": token[1]})
        assert r.status_code == 401

    in_process(api.container, HOST, use)


def test_an_expired_key_ends_its_sessions(api: Api) -> None:
    now = now_us()
    short = keys.create_key(api.container.keys, api.ws, "short", now, expires_us=now + 800_000)

    async def use(c: httpx.AsyncClient) -> None:
        await sign_in(c, short.secret)
        assert (await c.get("/dashboard/")).status_code == 200
        time.sleep(1)
        r = await c.get("/dashboard/")
        assert r.status_code == 303 and r.headers["location"].startswith("/dashboard/login")

    in_process(api.container, HOST, use)
