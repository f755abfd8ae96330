"""``/``: where a browser sent to the server's bare address goes.

On a short domain with a fallback URL, ``/`` goes there, as an unknown link on that domain
does: a recipient who types the short domain lands on the brand's site. Everywhere else
(``http://127.0.0.1:8787/`` that `make run` prints, a short domain without a fallback) it goes
to the dashboard, which asks for an API key and links the API docs.

Not on the redirect's hot path: ``/`` is one of the paths the redirect hands to the API.
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

DASHBOARD = "/dashboard/"


def home_route(fallback_url_for: Callable[[str], str | None]) -> Route:
    """Return the ``GET /`` route; `fallback_url_for(host)` gives a short domain's fallback
    URL (None: not a short domain, or one without a fallback)."""

    async def home(request: Request) -> Response:
        host = (request.url.hostname or "").rstrip(".")
        target = fallback_url_for(host) or DASHBOARD
        # Not cached: a fallback URL can change, and the dashboard may move behind a proxy.
        return RedirectResponse(target, 302, headers={"cache-control": "private, no-store"})

    return Route("/", home, methods=["GET"])
