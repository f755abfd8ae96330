"""Request bodies read against their limit as they stream, and JSON nested no deeper than
`MAX_JSON_DEPTH`: the one place the API and the pages read a body.

Each route has its own limit (a webhook 64 KiB, a JSON resource 1 MiB, a wrap batch 64 MiB, a
CSV import 256 MiB spooled to disk). A body whose Content-Length is over it is refused before a
byte of it is read; a chunked one is read until the running total passes the limit, and no
further. Either way the answer is 413 ``too_large`` naming the limit (`TooLarge`), and the
server holds at most one chunk beyond the limit (uvicorn's receive buffer is 64 KiB; it stops
reading the socket until the application takes what it has, and throws the rest of a refused
body away after the answer).

`BodyCap` is the guard in front of the API for a route that would forget: no request body is
read past `SERVER_MAX_BODY`, the largest route limit.
"""

from __future__ import annotations

import functools
import re
import sys
from collections.abc import AsyncIterator
from itertools import accumulate, repeat
from operator import add, gt
from typing import Any

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from clicktrail.domain.errors import InvalidInput, TooLarge
from clicktrail.web.errors import problem_for

SERVER_MAX_BODY = 256 * 1024 * 1024  # the largest route limit (`api_resources.MAX_IMPORT`)
# Real bodies nest a few levels (a wrap batch: object → items → item → attributes → value).
# Python's own json and the services' recursive code give out near 1,000 levels; orjson at
# 1,024, pydantic at 200. Refusing at 64, before any parser runs, keeps every route far from all
# of them.
MAX_JSON_DEPTH = 64
_SCAN_ON_LOOP = 1024 * 1024  # bigger bodies are scanned off the event loop


def _size_name(limit: int) -> str:
    for unit, size in (("MiB", 1024 * 1024), ("KiB", 1024)):
        if limit >= size and limit % size == 0:
            return f"{limit // size} {unit}"
    return f"{limit} bytes"


def too_large(limit: int, what: str = "request body") -> TooLarge:
    """Return the error for a body over `limit` bytes."""
    return TooLarge(f"{what} over {_size_name(limit)} ({limit} bytes): not read", limit)


def declared_length(headers: Any) -> int | None:
    """Return the request's Content-Length as a number (None: absent or not a number)."""
    value = headers.get("content-length")
    if value is None or not value.isdigit():
        return None  # uvicorn refuses a malformed Content-Length before the app sees it
    return int(value)


async def stream_body(request: Request, limit: int) -> AsyncIterator[bytes]:
    """Yield the body's chunks as they arrive. Raises `TooLarge` before reading when the
    declared Content-Length is over `limit`, and as soon as the running total passes it."""
    declared = declared_length(request.headers)
    if declared is not None and declared > limit:
        raise too_large(limit)
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large(limit)
        yield chunk


async def read_body(request: Request, limit: int) -> bytes:
    """Return the whole body, at most `limit` bytes; raises `TooLarge` past it."""
    chunks = [chunk async for chunk in stream_body(request, limit)]
    return b"".join(chunks)


async def read_json(request: Request, limit: int) -> bytes:
    """Return the body, at most `limit` bytes of JSON nested at most `MAX_JSON_DEPTH` deep,
    unparsed. Raises `TooLarge`, or `InvalidInput` (field ``body``) when nested deeper."""
    body = await read_body(request, limit)
    if len(body) > _SCAN_ON_LOOP:
        await run_in_threadpool(check_json_depth, body)  # a wrap batch: tens of ms
    else:
        check_json_depth(body)
    return body


async def read_json_value(request: Request, limit: int) -> Any:
    """Return the body parsed as JSON (read as `read_json` reads it). Raises `InvalidInput`
    (field ``body``) when it is not JSON."""
    body = await read_json(request, limit)
    try:
        # orjson refuses what json would let through to storage and fail there: lone UTF-16
        # surrogates ("\ud8e5") in strings.
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(f"request body is not valid JSON: {exc}", field="body") from None


def batch_items(body: Any, name: str, what: str) -> list[Any] | None:
    """Return the items of a batch body, ``{name: [...]}`` with nothing beside it, or None
    when `body` is one `what` object. Raises `InvalidInput` for anything else: another key
    beside `name`, a `name` that is not a non-empty array, a body that is not an object."""
    if isinstance(body, dict) and name in body:
        items = body[name]
        if len(body) != 1:
            extra = sorted(k for k in body if k != name)[0]
            raise InvalidInput(f"{extra}: unknown field beside {name}", field=extra)
        if not isinstance(items, list) or not items:
            raise InvalidInput(f"{name} must be a non-empty array of {what} objects", field=name)
        return items
    if not isinstance(body, dict):
        raise InvalidInput(
            f"body must be a {what} object, or an object with a '{name}' array", field="body"
        )
    return None


# A JSON string, escapes included: what a bracket inside it is not. Possessive, and a string
# left open runs to the end of the body: every match attempt that starts succeeds, so the scan
# stays linear. (The textbook pattern, which must find the closing quote, failed at every quote
# of an unterminated run of escaped quotes, ``"\\"\\"\\"…``: quadratic, 5 s for 32 KiB.)
_STRING = re.compile(rb'"(?:[^"\\]++|\\.?)*+(?:"|\Z)', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_BITS = bytes.maketrans(b"[{]}", b"1100")  # an opener is a 1 bit, a closer a 0 bit


@functools.cache
def _steps() -> tuple[tuple[int, ...], tuple[int, ...]]:
    """For each 16 brackets packed as bits: the change of depth over them, and the highest
    depth reached within them (relative to the depth before)."""
    net8, peak8 = [], []
    for c in range(256):
        depth = peak = 0
        for bit in range(7, -1, -1):
            depth += 1 if c >> bit & 1 else -1
            peak = max(peak, depth)
        net8.append(depth)
        peak8.append(peak)
    pairs = [(hi, lo) for hi in range(256) for lo in range(256)]
    return (
        tuple(net8[hi] + net8[lo] for hi, lo in pairs),
        tuple(max(peak8[hi], net8[hi] + peak8[lo]) for hi, lo in pairs),
    )


def json_depth_over(data: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """Return True when the JSON text `data` nests arrays and objects more than `limit` deep.

    A scan of the bytes, not a parse, every step a pass in C: strings are cut out, the
    brackets left become bits (opener 1, closer 0) packed 16 to a number, and a table gives
    each number's change of depth and peak; the running depth is their sum. About 25 ns a
    bracket (a 64 MiB body of nothing but brackets: about a second, off the event loop).
    Unbalanced text is left for the parser to refuse.
    """
    if data.count(b"[") + data.count(b"{") <= limit:
        return False  # cannot nest deeper than it has openers (nearly every body)
    bits = _STRING.sub(b"", data).translate(_BITS, _NOT_BRACKETS)
    if len(bits) <= limit:
        return False  # the brackets were in strings
    bits += b"0" * (-len(bits) % 16)  # closers at the end never raise the peak
    packed = int(bits, 2).to_bytes(len(bits) // 8, "big")
    chunks = memoryview(packed).cast("H")  # 16 brackets each (byte order: see `_swapped`)
    net, peak = _steps()
    if sys.byteorder == "little":
        chunks = memoryview(_swapped(packed)).cast("H")
    before = accumulate(map(net.__getitem__, chunks), initial=0)
    peaks = map(add, before, map(peak.__getitem__, chunks))
    return any(map(gt, peaks, repeat(limit)))


def _swapped(packed: bytes) -> bytes:
    # Pairs of bytes swapped, so that a little-endian 16-bit read sees them big-endian.
    out = bytearray(packed)
    out[0::2], out[1::2] = packed[1::2], packed[0::2]
    return bytes(out)


def check_json_depth(data: bytes, limit: int = MAX_JSON_DEPTH) -> None:
    """Raise `InvalidInput` (field ``body``) when `data` nests more than `limit` levels."""
    if json_depth_over(data, limit):
        raise InvalidInput(
            f"request body nests JSON arrays and objects more than {limit} levels deep",
            field="body",
        )


class BodyCap:
    """ASGI middleware of the API: no request body past `limit` bytes, whatever the route.

    A declared Content-Length over the limit is answered 413 at once; a chunked body's
    `receive` raises `TooLarge` once the total passes it (the API's exception handlers, inside
    this middleware, answer 413).
    """

    def __init__(self, app: Any, limit: int = SERVER_MAX_BODY) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit
        for name, value in scope["headers"]:
            if name == b"content-length" and value.isdigit() and int(value) > limit:
                await _send_too_large(send, limit)
                return
        seen = 0

        async def counted() -> Any:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > limit:
                raise too_large(limit)
            return message

        await self.app(scope, counted, send)


async def _send_too_large(send: Any, limit: int) -> None:
    # Answered here, outside the API's exception handlers: the same problem they would give.
    response = problem_for(too_large(limit))
    await send(
        {
            "type": "http.response.start",
            "status": response.status_code,
            "headers": response.raw_headers,
        }
    )
    await send({"type": "http.response.body", "body": response.body})
