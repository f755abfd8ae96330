"""Destinations as they go out in a ``Location`` header."""

from __future__ import annotations

import re
from urllib.parse import quote, urlsplit, urlunsplit

# Where a link's URL wants each click's id (docs/conversions.md#destination-macros).
CLICK_ID_MACRO = "{click_id}"
_MACRO = re.compile(r"\{click_id\}|%7Bclick_id%7D", re.IGNORECASE)

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


def add_query_params(url: str, params: dict[str, str]) -> str:
    """Return `url` with `params` appended to its query, before any fragment.

    A parameter the URL already has (by name, whatever its value) is never overwritten nor
    repeated: the sender's own tagging wins.
    """
    if not params:
        return url
    head, hash_, fragment = url.partition("#")
    base, _, query = head.partition("?")
    present = {pair.split("=", 1)[0] for pair in query.split("&") if pair}
    extra = [
        f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in params.items() if k not in present
    ]
    if not extra:
        return url
    query = "&".join([query, *extra]) if query else "&".join(extra)
    return f"{base}?{query}{hash_}{fragment}"


def split_for_click_id(location: str, param: str) -> tuple[str, str]:
    """Return (prefix, suffix) so that ``prefix + click_id + suffix`` is `location` with
    ``param=<click_id>`` added to its query (before the fragment).

    Precomputed once per token so the redirect only concatenates. If the URL already has
    `param`, the click id is not added: returns (location, "") and the caller appends nothing.
    """
    head, hash_, fragment = location.partition("#")
    _, q, query = head.partition("?")
    if param in {pair.split("=", 1)[0] for pair in query.split("&") if pair}:
        return location, ""
    sep = "&" if q and query else ("" if q else "?")
    return f"{head}{sep}{quote(param, safe='')}=", f"{hash_}{fragment}"


def redirect_location(
    url: str, utm: dict[str, str], click_id_param: str
) -> tuple[str, str, str, bool]:
    """Plan the ``Location`` of a token: its URL made absolute ASCII, UTM parameters added.

    Returns (location, head, tail, add_click_id): with `add_click_id`, each click answers
    ``head + click_id + tail``; otherwise `location` as is (no parameter name, or the URL
    already carries it). A URL holding the macro ``{click_id}`` gets the click id there
    instead of in `click_id_param`.
    """
    location = add_query_params(location_for(url), utm)
    at = _MACRO.search(location)
    if at is not None:
        # The link says where the click id goes (``…&aff_sub={click_id}``, percent-encoded
        # when the URL had to be): there, and only there (its first occurrence);
        # `click_id_param` is not added then.
        return location, location[: at.start()], location[at.end() :], True
    if not click_id_param:
        return location, "", "", False
    head, tail = split_for_click_id(location, click_id_param)
    if head == location and not tail:
        return location, "", "", False
    return location, head, tail, True
