"""Workspaces and short domains. API keys are services/keys.py's (`authenticate` is imported
from there by the API's handlers as `workspaces.authenticate`)."""

from __future__ import annotations

import re
from typing import Protocol
from urllib.parse import urlsplit

from clicktrail.domain.errors import InvalidInput, NotFound
from clicktrail.domain.ids import new_public_id
from clicktrail.domain.models import Domain, Workspace
from clicktrail.domain.slugs import check_slug, slugify
from clicktrail.services.keys import authenticate as authenticate

_HOST = re.compile(
    r"(?=.{1,253}\Z)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*\Z"
)
# Must match web.redirect.RESERVED_PATHS: those paths never hold short links.
RESERVED_PREFIXES = (
    "/v1/",
    "/healthz",
    "/readyz",
    "/openapi.json",
    "/docs",
    "/dashboard",
    "/static/",
    "/postback",
    "/ct.js",
)


class WorkspaceStore(Protocol):
    """Workspaces and their short domains as services need them (`storage.workspaces`)."""

    def create_workspace(
        self, public_id: str, slug: str, name: str, is_demo: bool, now_us: int
    ) -> Workspace:
        """Store a new workspace. Raises `Conflict` if the slug is taken."""
        ...

    def list_workspaces(self) -> list[Workspace]:
        """Return every workspace, oldest first."""
        ...

    def find_workspace(self, ref: str) -> Workspace | None:
        """Return the workspace whose slug or public id is `ref`."""
        ...

    def add_domain(self, domain: Domain, now_us: int) -> Domain:
        """Store a short domain. Raises `Conflict` if another domain has this host."""
        ...

    def list_domains(self, workspace_id: int) -> list[Domain]:
        """Return the workspace's domains, oldest first."""
        ...

    def get_domain(self, domain_id: int) -> Domain:
        """Return the domain with this id."""
        ...

    def is_registered_host(self, host: str) -> bool:
        """Return whether `host` (lowercased, IDNA-encoded, no port) is a registered domain."""
        ...


def create_workspace(
    store: WorkspaceStore, name: str, now_us: int, slug: str | None = None, is_demo: bool = False
) -> Workspace:
    """Create a workspace. Raises `InvalidInput` for a bad name/slug, `Conflict` if taken."""
    if not name.strip():
        raise InvalidInput("workspace name is empty", field="name")
    slug = check_slug(slug, "workspace slug") if slug else slugify(name)
    return store.create_workspace(new_public_id("ws", 12), slug, name.strip(), is_demo, now_us)


def resolve_workspace(store: WorkspaceStore, ref: str | None) -> Workspace:
    """Return the workspace named by `ref` (slug or id); without `ref`, the only one there is.

    Raises `NotFound` when it does not exist or when `ref` is needed to choose.
    """
    if ref:
        ws = store.find_workspace(ref)
        if ws is None:
            known = ", ".join(w.slug for w in store.list_workspaces()) or "none yet"
            raise NotFound(f"workspace {ref!r} not found (workspaces: {known})", field="workspace")
        return ws
    all_ws = [w for w in store.list_workspaces() if not w.is_demo] or store.list_workspaces()
    if len(all_ws) == 1:
        return all_ws[0]
    if not all_ws:
        raise NotFound(
            "no workspace yet: create one with `clicktrail workspace create NAME`",
            field="workspace",
        )
    names = ", ".join(w.slug for w in all_ws)
    raise NotFound(
        f"several workspaces ({names}): choose one with --workspace or CLICKTRAIL_WORKSPACE",
        field="workspace",
    )


def parse_host(value: str) -> tuple[str, int | None, str | None]:
    """Return (host, port, scheme) from ``sms.example.com``, ``host:8080`` or a URL.

    The host is lowercased and IDNA-encoded. Raises `InvalidInput` when it is not a hostname.
    """
    raw = value.strip()
    scheme = None
    if "://" in raw:
        parts = urlsplit(raw)
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https"):
            raise InvalidInput(f"domain {value!r}: scheme must be http or https", field="host")
        if parts.path not in ("", "/") or parts.query:
            raise InvalidInput(
                f"domain {value!r}: give the host only; the path is the domain's prefix",
                field="host",
            )
        raw = parts.netloc
    host, _, port_text = raw.rpartition(":") if raw.count(":") == 1 else (raw, "", "")
    port = None
    if port_text:
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise InvalidInput(f"domain {value!r}: bad port {port_text!r}", field="host")
        port = int(port_text)
    host = host.rstrip(".").lower()
    try:
        host = host.encode("idna").decode("ascii")
    except UnicodeError:
        raise InvalidInput(f"domain {value!r} is not a valid hostname", field="host") from None
    if not _HOST.match(host):
        raise InvalidInput(f"domain {value!r} is not a valid hostname", field="host")
    return host, port, scheme


def is_tls_host_allowed(store: WorkspaceStore, server_name: str) -> bool:
    """Return whether a certificate may be issued for `server_name`: a registered short domain.

    This answers a TLS terminator's question (Caddy's on-demand TLS ``ask``), so case, a
    trailing dot and a port are ignored, and a malformed name is simply not allowed.
    """
    try:
        host, _port, _scheme = parse_host(server_name)
    except InvalidInput:
        return False
    return store.is_registered_host(host)


def add_domain(
    store: WorkspaceStore,
    workspace: Workspace,
    host: str,
    now_us: int,
    *,
    path_prefix: str = "/c/",
    scheme: str | None = None,
    fallback_url: str | None = None,
) -> Domain:
    """Register a short domain for the workspace's links.

    Raises `InvalidInput` for a malformed host, prefix or fallback URL; `Conflict` if the host
    belongs to a workspace already.
    """
    name, port, url_scheme = parse_host(host)
    scheme = (scheme or url_scheme or "https").lower()
    if scheme not in ("http", "https"):
        raise InvalidInput(f"scheme must be http or https, got {scheme!r}", field="scheme")
    if not re.fullmatch(r"/(?:[A-Za-z0-9_-]+/)*", path_prefix):
        raise InvalidInput(
            f"path prefix {path_prefix!r} must start and end with '/' and hold only letters, "
            "digits, '-' and '_' (e.g. /c/)",
            field="prefix",
        )
    if path_prefix.startswith(RESERVED_PREFIXES):
        raise InvalidInput(
            f"path prefix {path_prefix!r} is reserved for the API and dashboard; use e.g. /c/",
            field="prefix",
        )
    if fallback_url is not None:
        parts = urlsplit(fallback_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise InvalidInput(
                f"fallback URL {fallback_url!r} must be an absolute http(s) URL",
                field="fallback_url",
            )
    domain = Domain(0, workspace.id, name, scheme, path_prefix, port, fallback_url)
    return store.add_domain(domain, now_us)
