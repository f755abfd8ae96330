"""clicktrail's app served for tests: by uvicorn on a thread (real HTTP on 127.0.0.1), or in
process through httpx's ASGI transport with the lifespan run around the requests."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import httpx
import uvicorn

from clicktrail.bootstrap import Container

T = TypeVar("T")


class ThreadServer:
    """clicktrail served by uvicorn in a thread of this process, on 127.0.0.1."""

    def __init__(self, container: Container) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = int(sock.getsockname()[1])
        config = uvicorn.Config(container.web_app(), host="127.0.0.1", port=self.port,
                                log_level="warning", lifespan="on")  # fmt: skip
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> ThreadServer:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.02)
        return self

    def __exit__(self, *_exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(20)


def in_process(
    container: Container, host: str, use: Callable[[httpx.AsyncClient], Awaitable[T]]
) -> T:
    """Run `use(client)` against a fresh app of `container` (lifespan started before, shut down
    after), the client at http://HOST from 203.0.113.5."""
    app = container.web_app()

    async def main() -> T:
        to_app: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        from_app: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        task = asyncio.create_task(
            app({"type": "lifespan", "asgi": {"version": "3.0"}}, to_app.get, from_app.put)
        )
        await to_app.put({"type": "lifespan.startup"})
        assert (await from_app.get())["type"] == "lifespan.startup.complete"
        try:
            transport = httpx.ASGITransport(app=app, client=("203.0.113.5", 4242))
            async with httpx.AsyncClient(transport=transport, base_url=f"http://{host}") as c:
                return await use(c)
        finally:
            await to_app.put({"type": "lifespan.shutdown"})
            assert (await from_app.get())["type"] == "lifespan.shutdown.complete"
            await task

    return asyncio.run(main())


Request = tuple[str, str, str | None, dict[str, Any]]


def requests_in_process(container: Container, host: str, requests: list[Request]) -> list[Any]:
    """Send `requests` — (method, path, API key or None, httpx keyword arguments) — in turn
    through a fresh app of `container` (see `in_process`); return the responses."""

    async def use(c: httpx.AsyncClient) -> list[httpx.Response]:
        out = []
        for method, path, key, kw in requests:
            headers = dict(kw.pop("headers", {}))
            if key is not None:
                headers["Authorization"] = f"Bearer {key}"
            out.append(await c.request(method, path, headers=headers, **kw))
        return out

    return in_process(container, host, use)
