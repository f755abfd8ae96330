"""The only place errors become HTTP: RFC 9457 problem details (``application/problem+json``)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from clicktrail.domain.errors import ClicktrailError, TooLarge

STATUS = {
    "invalid_input": 422,
    "unknown_click": 422,
    "unknown_contact": 422,
    "not_found": 404,
    "conflict": 409,
    "unauthorized": 401,
    "too_large": 413,
    "storage_unavailable": 503,
}
# Seconds a client is asked to wait before trying again while storage is away.
RETRY_AFTER_S = 5
TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    409: "Conflict",
    413: "Content too large",
    422: "Invalid input",
    500: "Internal error",
    503: "Service unavailable",
}


def problem(status: int, code: str, detail: str, **extra: Any) -> JSONResponse:
    """Return a problem+json response; `code` is clicktrail's stable error code."""
    body = {
        "type": f"https://clicktrail.dev/problems/{code}",
        "title": TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
        "code": code,
        **extra,
    }
    headers = None
    if status == 401:
        headers = {"WWW-Authenticate": "Bearer"}
    elif status == 503:
        headers = {"Retry-After": str(RETRY_AFTER_S)}
    return JSONResponse(
        body, status_code=status, media_type="application/problem+json", headers=headers
    )


def status_of(exc: ClicktrailError) -> int:
    """Return the HTTP status of a domain error (400 for a code without its own)."""
    return STATUS.get(exc.code, 400)


def problem_for(exc: ClicktrailError) -> JSONResponse:
    """Return the problem response for a domain error, with its field and per-field problems
    (and the limit of a `TooLarge`)."""
    extra: dict[str, Any] = {}
    if exc.field:
        extra["field"] = exc.field
    if exc.problems:
        extra["errors"] = [p.as_dict() for p in exc.problems[:1000]]
    if isinstance(exc, TooLarge):
        extra["limit"] = exc.limit
    return problem(status_of(exc), exc.code, exc.message, **extra)


async def handle_clicktrail_error(_request: Request, exc: Exception) -> JSONResponse:
    """Starlette exception handler for `ClicktrailError`."""
    assert isinstance(exc, ClicktrailError)
    return problem_for(exc)


async def handle_unexpected(_request: Request, _exc: Exception) -> JSONResponse:
    """Never show a stack trace or an internal id to a client."""
    return problem(500, "internal", "internal error; the server log has the details")
