"""A workspace's webhook endpoints: create, list, change, rotate their secret, delete
(docs/webhooks.md).

An endpoint is a URL, the event types it subscribes to (domain/events.py), a ``whsec_`` secret
of its own that signs every request (Standard Webhooks), and a state: enabled, or disabled by
its owner, by a 410 answer or after a run of failures (services/deliveries.py). For
`click.created` two options: `humans_only` (no click whose verdict is a bot's) and
`provisional` (sent at once with the request-level verdict, rather than once the verdict is
final after the settle window).

Rotating a secret keeps the old one signing beside the new one for a grace period (at most
`MAX_GRACE_US`), so receivers can switch without losing a request: the `webhook-signature`
header then carries both signatures. Secrets are stored as they are, since signing needs them;
they are shown when created or rotated and on asking for them (API key or operator).

The URL is checked against the outbound policy when it is set (no private or loopback
address, https only, unless the operator allows them) and again at every connection.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from clicktrail.domain import events
from clicktrail.domain.errors import Conflict, InvalidInput, NotFound
from clicktrail.domain.ids import new_public_id
from clicktrail.domain.models import Workspace
from clicktrail.services.listing import Page, decode_cursor, page_of

MAX_ENDPOINTS = 50  # per workspace
MAX_URL = 2048
MAX_DESCRIPTION = 200
DEFAULT_GRACE_US = 86_400_000_000  # a rotated-out secret keeps signing for a day
MAX_GRACE_US = 7 * 86_400_000_000
ENDPOINT_PREFIX = "ep"
NOT_FOUND = "webhook endpoint not found in this workspace"

UrlCheck = Callable[[str, str], str]  # (url, field) -> url; raises InvalidInput (outbound policy)


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A stored webhook endpoint, its secrets included (shown only where asked for)."""

    id: int
    public_id: str
    workspace_id: int
    url: str
    description: str
    event_types: tuple[str, ...]
    humans_only: bool
    provisional: bool
    enabled: bool
    disabled_reason: str | None
    disabled_us: int | None
    secret: str
    old_secret: str | None
    old_secret_until_us: int | None
    failures: int
    failing_since_us: int | None
    created_us: int
    updated_us: int

    def signing_secrets(self, now_us: int) -> list[str]:
        """Return the secrets that sign a request sent at `now_us`: the current one, and the
        previous one while its grace period lasts."""
        out = [self.secret]
        if self.old_secret and (self.old_secret_until_us or 0) > now_us:
            out.append(self.old_secret)
        return out


@dataclass(frozen=True, slots=True)
class EndpointChange:
    """What an update changes (None: left as it is)."""

    url: str | None = None
    event_types: tuple[str, ...] | None = None
    description: str | None = None
    humans_only: bool | None = None
    provisional: bool | None = None
    enabled: bool | None = None


class WebhookStore(Protocol):
    """A workspace's webhook endpoints (implemented by `storage.webhooks.WebhookQueries`).
    Every method is scoped to `workspace_id`."""

    def add_endpoint(self, endpoint: Endpoint, max_endpoints: int) -> Endpoint:
        """Store `endpoint` (its `id` ignored) and return it as stored; raises `Conflict` when
        the workspace has `max_endpoints` already."""
        ...

    def endpoint(self, workspace_id: int, public_id: str) -> Endpoint | None:
        """Return the workspace's endpoint `public_id` (None: no such endpoint here)."""
        ...

    def endpoints_page(self, workspace_id: int, after: str | None, limit: int) -> list[Endpoint]:
        """Return up to `limit` endpoints after the one named `after`, oldest first."""
        ...

    def update_endpoint(self, workspace_id: int, public_id: str, change: EndpointChange,
                        now_us: int) -> Endpoint | None:  # fmt: skip
        """Apply `change`; enabling clears the failure run and the reason it was disabled.
        Return the endpoint as it is now (None: not found)."""
        ...

    def rotate_secret(self, workspace_id: int, public_id: str, secret: str, until_us: int,
                      now_us: int) -> Endpoint | None:  # fmt: skip
        """Make `secret` the endpoint's secret, the current one signing until `until_us`."""
        ...

    def delete_endpoint(self, workspace_id: int, public_id: str) -> bool:
        """Delete the endpoint with its deliveries and their log; False when not found."""
        ...


def _description(text: str | None) -> str:
    text = (text or "").strip()
    if len(text) > MAX_DESCRIPTION or "\x00" in text:
        raise InvalidInput(
            f"description must be at most {MAX_DESCRIPTION} characters, without NUL",
            field="description",
        )
    return text


def _url(url: str, check_url: UrlCheck) -> str:
    url = url.strip()
    if not url or len(url) > MAX_URL or any(c.isspace() or ord(c) < 32 for c in url):
        raise InvalidInput(
            f"url must be an absolute URL of at most {MAX_URL} characters, without spaces",
            field="url",
        )
    return check_url(url, "url")


def create_endpoint(
    store: WebhookStore,
    workspace: Workspace,
    url: str,
    event_types: Sequence[str],
    now_us: int,
    check_url: UrlCheck,
    *,
    description: str | None = None,
    humans_only: bool = False,
    provisional: bool = False,
    secret: str | None = None,
) -> Endpoint:
    """Create an enabled endpoint with a new secret (or `secret`, a ``whsec_`` one); return it.

    Raises `InvalidInput` naming the field (URL refused by the outbound policy, unknown event
    type, bad secret), `Conflict` past `MAX_ENDPOINTS`.
    """
    ep = Endpoint(
        id=0, public_id=new_public_id(ENDPOINT_PREFIX), workspace_id=workspace.id,
        url=_url(url, check_url), description=_description(description),
        event_types=tuple(events.check_event_types(event_types)), humans_only=humans_only,
        provisional=provisional, enabled=True, disabled_reason=None, disabled_us=None,
        secret=events.new_secret() if secret is None else events.check_secret(secret),
        old_secret=None, old_secret_until_us=None, failures=0, failing_since_us=None,
        created_us=now_us, updated_us=now_us,
    )  # fmt: skip
    return store.add_endpoint(ep, MAX_ENDPOINTS)


def get_endpoint(store: WebhookStore, workspace: Workspace, public_id: str) -> Endpoint:
    """Return the workspace's endpoint `public_id`; raises `NotFound` (another workspace's
    endpoint included)."""
    found = store.endpoint(workspace.id, public_id) if public_id.startswith("ep_") else None
    if found is None:
        raise NotFound(NOT_FOUND, field="endpoint")
    return found


def list_endpoints(
    store: WebhookStore, workspace: Workspace, limit: int, cursor: str | None
) -> Page[Endpoint]:
    """Return a page of the workspace's endpoints, oldest first."""
    after = decode_cursor("webhook-endpoints", cursor)
    rows = store.endpoints_page(workspace.id, after, limit + 1)
    return page_of("webhook-endpoints", rows, limit, lambda r: r.public_id)


def update_endpoint(
    store: WebhookStore,
    workspace: Workspace,
    public_id: str,
    change: EndpointChange,
    now_us: int,
    check_url: UrlCheck,
) -> Endpoint:
    """Change an endpoint; return it as it is now. Raises `InvalidInput` naming the field,
    `NotFound`."""
    get_endpoint(store, workspace, public_id)
    checked = EndpointChange(
        url=None if change.url is None else _url(change.url, check_url),
        event_types=None if change.event_types is None
        else tuple(events.check_event_types(change.event_types)),
        description=None if change.description is None else _description(change.description),
        humans_only=change.humans_only, provisional=change.provisional, enabled=change.enabled,
    )  # fmt: skip
    done = store.update_endpoint(workspace.id, public_id, checked, now_us)
    if done is None:
        raise NotFound(NOT_FOUND, field="endpoint")
    return done


def rotate_secret(
    store: WebhookStore,
    workspace: Workspace,
    public_id: str,
    now_us: int,
    *,
    grace_us: int = DEFAULT_GRACE_US,
    secret: str | None = None,
) -> Endpoint:
    """Give the endpoint a new secret (or `secret`); the current one keeps signing for
    `grace_us` (0: retired at once). Return the endpoint, new secret included.

    Raises `InvalidInput` for a grace over `MAX_GRACE_US` or a bad secret, `NotFound`, and
    `Conflict` when the new secret is the current one.
    """
    if not 0 <= grace_us <= MAX_GRACE_US:
        raise InvalidInput("grace must be from 0 to 7 days", field="grace")
    current = get_endpoint(store, workspace, public_id)
    new = events.new_secret() if secret is None else events.check_secret(secret)
    if new == current.secret:
        raise Conflict("the new secret is the endpoint's current secret", field="secret")
    done = store.rotate_secret(workspace.id, public_id, new, now_us + grace_us, now_us)
    if done is None:
        raise NotFound(NOT_FOUND, field="endpoint")
    return done


def delete_endpoint(store: WebhookStore, workspace: Workspace, public_id: str) -> None:
    """Delete an endpoint, its deliveries and their log. Raises `NotFound`."""
    get_endpoint(store, workspace, public_id)
    if not store.delete_endpoint(workspace.id, public_id):
        raise NotFound(NOT_FOUND, field="endpoint")
