"""The do-nothing anchor for `bench/redirect.py`: a raw ASGI app that answers every request 302.

Same server configuration as `clicktrail serve` (uvicorn, httptools, uvloop, one worker, access
log off, lifespan on, no Server header) and the same response headers as the real redirect, but
no token check, no lookup and no click recording: what is left is the cost of uvicorn itself.

    .venv/bin/python bench/noop_app.py --port 18081
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import uvicorn

_START = {
    "type": "http.response.start",
    "status": 302,
    "headers": [
        (b"location", b"https://example.com/landing"),
        (b"cache-control", b"private, no-store"),
        (b"referrer-policy", b"no-referrer"),
        (b"content-length", b"0"),
    ],
}
_BODY = {"type": "http.response.body", "body": b""}


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["path"] == "/healthz":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})
        return
    await send(_START)
    await send(_BODY)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=18081)
    args = ap.parse_args()
    # Mirrors src/clicktrail/cli/serve.py (keep the two in step).
    config = uvicorn.Config(
        app,
        host=args.host,
        port=args.port,
        loop="uvloop" if sys.platform != "win32" else "asyncio",
        http="httptools",
        lifespan="on",
        access_log=False,
        log_level="warning",
        server_header=False,
        timeout_graceful_shutdown=10,
    )
    uvicorn.Server(config).run()


if __name__ == "__main__":
    main()
