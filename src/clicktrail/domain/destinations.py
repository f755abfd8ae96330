"""Destinations as they go out in a ``Location`` header."""

from __future__ import annotations

import re
from urllib.parse import quote, urlsplit, urlunsplit

_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
# Characters left as they are when percent-encoding a path, query or fragment: everything legal
# in a URL, plus '%' so existing escapes are kept.
_SAFE = "/:@!$&'()*+,;=?#[]~%-._"


def location_for(url: str) -> str:
    """Return `url` as an absolute ASCII URL fit for a ``Location`` header.

    A URL written without a scheme (``www.shop.com/x``) gets ``https://``; an IDN host is
    IDNA-encoded and other non-ASCII characters are percent-encoded as UTF-8.
    """
    if not _SCHEME.match(url):
        url = "https://" + url
    if url.isascii():
        return url
    parts = urlsplit(url)
    host = parts.hostname or ""
    try:
        ascii_host = host.encode("idna").decode("ascii")
    except UnicodeError:
        ascii_host = quote(host, safe="")
    netloc = ascii_host
    if parts.port:
        netloc += f":{parts.port}"
    if parts.username:
        auth = quote(parts.username, safe="")
        if parts.password:
            auth += ":" + quote(parts.password, safe="")
        netloc = f"{auth}@{netloc}"
    return urlunsplit(
        (
            parts.scheme,
            netloc,
            quote(parts.path, safe=_SAFE),
            quote(parts.query, safe=_SAFE),
            quote(parts.fragment, safe=_SAFE),
        )
    )
