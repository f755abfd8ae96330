"""A workspace's API keys: create (shown once), list, revoke, rotate; and authenticating one.

A key is ``ct_`` and 32 random URL-safe characters (190 bits); only its SHA-256 hash is stored,
with a public id (``key_…``) to name it, its first 10 characters (the prefix, to recognise it),
a label, an optional expiry, the time it was last used and its revocation time. A key is
*active* until it is revoked or expires; then every use answers "unknown, revoked or expired
API key", and the dashboard sessions it opened end at their next request (they look the key up
again each time).

- Revoking is immediate. Through the API a key may revoke itself, but not the workspace's last
  active key unless asked with `force` (a tenant cannot lock itself out by mistake); the
  operator's CLI always can.
- Rotating creates a key with the same label and scopes and retires the old one: at once, or
  after a grace period (the old key then expires at the end of it; at most `MAX_GRACE_US`).
  The new key gets the expiry asked for, else the old key's lifetime again from now.
- "Last used" is written at most once a minute per key (`USE_GRANULARITY_US`): authentication
  reads the key's row, last-use time included, in one indexed query and writes only when the
  stored time is a minute old or more. That holds across processes, with no state in memory.
- `scopes` is stored (NULL: full access) but not enforced yet; rotation keeps it.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from clicktrail.domain.errors import Conflict, InvalidInput, NotFound, Unauthorized
from clicktrail.domain.ids import new_public_id
from clicktrail.domain.models import Workspace
from clicktrail.services.clock import MAX_TIME_US
from clicktrail.services.clock import now_us as clock
from clicktrail.services.listing import Page, decode_cursor, page_of
from clicktrail.services.receipts import parse_time

KEY_PREFIX = "ct_"
PREFIX_LENGTH = 10  # what lists show: "ct_" and 7 random characters
MAX_NAME = 200
USE_GRANULARITY_US = 60_000_000
MAX_GRACE_US = 30 * 86_400_000_000
UNKNOWN_KEY = "unknown, revoked or expired API key"
_DURATION = re.compile(r"(\d{1,9})\s*([smhdw]?)")
_UNIT_US = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}

KeyState = Literal["active", "expired", "revoked"]


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A stored API key (never its secret nor its hash)."""

    id: int
    public_id: str
    workspace_id: int
    name: str
    prefix: str
    scopes: str | None  # None: full access (not enforced yet)
    created_us: int
    expires_us: int | None
    last_used_us: int | None
    revoked_us: int | None

    def state(self, now_us: int) -> KeyState:
        """Return whether the key is active, expired or revoked at `now_us`."""
        if self.revoked_us is not None:
            return "revoked"
        if self.expires_us is not None and self.expires_us <= now_us:
            return "expired"
        return "active"


@dataclass(frozen=True, slots=True)
class NewKey:
    """A key about to be stored."""

    public_id: str
    workspace_id: int
    name: str
    prefix: str
    key_hash: str
    scopes: str | None
    created_us: int
    expires_us: int | None


@dataclass(frozen=True, slots=True)
class CreatedKey:
    """A new key: its secret (shown this once) and its record."""

    secret: str
    key: ApiKey


@dataclass(frozen=True, slots=True)
class Rotation:
    """What rotating did: the new key (secret included) and the old key as it is now."""

    new: CreatedKey
    old: ApiKey


class KeyAuthStore(Protocol):
    """What authenticating a key needs (`storage.keys.KeyQueries`): the key with a hash,
    revoked and expired ones too, with its workspace in one indexed query; its last use set
    when unset or <= `stale_us`."""

    def api_key_for_hash(self, key_hash: str) -> tuple[Workspace, ApiKey] | None:
        """Return the key with this hash and its workspace (None: no such key)."""
        ...

    def record_key_use(self, key_id: int, now_us: int, stale_us: int) -> None:
        """Set the key's last use to `now_us` when unset or not after `stale_us`."""
        ...


class KeyStore(Protocol):
    """Persistence of a workspace's API keys (implemented by `storage.keys.KeyQueries`).

    Every method is scoped to `workspace_id`: another workspace's keys are never found.
    """

    def add_key(self, key: NewKey) -> ApiKey:
        """Store `key` and return its record."""
        ...

    def keys_page(self, workspace_id: int, after: str | None, limit: int | None) -> list[ApiKey]:
        """Return the workspace's keys in creation order after the one whose public id is
        `after` (None: from the first), up to `limit` (None: all)."""
        ...

    def find_key(
        self, workspace_id: int, public_id: str | None = None, key_hash: str | None = None
    ) -> ApiKey | None:
        """Return the workspace's key with this public id (or with this hash)."""
        ...

    def revoke_key(
        self, workspace_id: int, public_id: str, now_us: int, keep_one_active: bool
    ) -> ApiKey | None:
        """Revoke the key (a revoked key stays as it was) and return it; None when the
        workspace has no such key. With `keep_one_active`, raises `Conflict` instead when it is
        the workspace's last active key; the check and the write are one transaction."""
        ...

    def rotate_key(
        self, workspace_id: int, public_id: str, new: NewKey, retire_us: int, now_us: int
    ) -> tuple[ApiKey, ApiKey] | None:
        """In one transaction: store `new` and retire the old key (revoked now when `retire_us`
        is `now_us`, else expiring at `retire_us` unless it expires sooner). Returns (new key,
        old key as it is now); None when the workspace has no such key. Raises `Conflict` if
        the old key is revoked."""
        ...


def hash_key(key: str) -> str:
    """Return the stored form of an API key (SHA-256; keys are 190-bit random, so no salt)."""
    return hashlib.sha256(key.encode()).hexdigest()


def parse_duration(value: Any, field: str) -> int:
    """Return µs from ``90d``, ``12h``, ``30m``, ``45s``, ``2w`` or a whole number of seconds.

    Raises `InvalidInput` naming `field`.
    """
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 10**9:
        return value * 1_000_000
    m = _DURATION.fullmatch(value.strip().lower()) if isinstance(value, str) else None
    if m is None:
        raise InvalidInput(
            f"{field}: {value!r} is not a duration (e.g. 90d, 12h, 30m, 45s, 2w, or seconds)",
            field=field,
        )
    return int(m[1]) * _UNIT_US[m[2]] * 1_000_000


def expiry_us(now_us: int, *, expires_at: Any = None, expires_in: Any = None) -> int | None:
    """Return when a new key expires: at `expires_at` (ISO 8601 or Unix seconds) or
    `expires_in` (a duration) from `now_us`; None (never) when neither is given.

    Raises `InvalidInput` naming the field when both are given, for a bad value, or for a
    time not in the future.
    """
    if expires_at is not None and expires_in is not None:
        raise InvalidInput("give expires_at or expires_in, not both", field="expires_in")
    if expires_in is not None:
        field, at = "expires_in", now_us + parse_duration(expires_in, "expires_in")
    elif expires_at is not None and expires_at != "":
        try:
            field, at = "expires_at", parse_time(expires_at, "expires_at", now_us)
        except (ValueError, OverflowError):  # nan, inf
            raise InvalidInput(
                f"expires_at: {expires_at!r} is not a time", field="expires_at"
            ) from None
    else:
        return None
    if at >= MAX_TIME_US:
        raise InvalidInput(f"{field}: {expires_at or expires_in!r} is after 9999", field=field)
    if at <= now_us:
        raise InvalidInput(
            f"{field}: the key would be expired already ({expires_at or expires_in!r}); "
            "give a time in the future",
            field=field,
        )
    return at


def _new_key(
    workspace_id: int, name: str, scopes: str | None, now_us: int, expires: int | None
) -> tuple[str, NewKey]:
    secret = KEY_PREFIX + secrets.token_urlsafe(24)
    return secret, NewKey(
        new_public_id("key", 12), workspace_id, name, secret[:PREFIX_LENGTH], hash_key(secret),
        scopes, now_us, expires,
    )  # fmt: skip


def check_name(name: str | None) -> str:
    """Return the key's label (``default`` when empty). Raises `InvalidInput` (field ``name``)."""
    name = (name or "").strip() or "default"
    if len(name) > MAX_NAME or any(ord(c) < 32 or c == "\x7f" for c in name):
        raise InvalidInput(
            f"key name must be at most {MAX_NAME} printable characters", field="name"
        )
    return name


def create_key(
    keys: KeyStore, ws: Workspace, name: str | None, now_us: int, *, expires_us: int | None = None
) -> CreatedKey:
    """Create an API key for the workspace; return it with its secret (shown this once, only
    its hash is stored). Raises `InvalidInput` for a bad name or an expiry not in the future
    (field ``expires_at``)."""
    name = check_name(name)
    if expires_us is not None and expires_us <= now_us:
        raise InvalidInput("expires_at: the key would be expired already", field="expires_at")
    secret, new = _new_key(ws.id, name, None, now_us, expires_us)
    return CreatedKey(secret, keys.add_key(new))


def list_keys(
    keys: KeyStore, ws: Workspace, limit: int | None = None, cursor: str | None = None
) -> Page[ApiKey]:
    """Return the workspace's keys, oldest first (a page of `limit`, or all), revoked and
    expired ones included. Raises `InvalidInput` for a bad cursor."""
    after = decode_cursor("keys", cursor)
    rows = keys.keys_page(ws.id, after, None if limit is None else limit + 1)
    if limit is None:
        return Page(rows)
    return page_of("keys", rows, limit, lambda k: k.public_id)


def get_key(keys: KeyStore, ws: Workspace, ref: str) -> ApiKey:
    """Return the workspace's key named by `ref`: its public id (``key_…``) or the key itself
    (``ct_…``, for a key found in a log). Raises `NotFound` (field ``key``) otherwise."""
    found = None
    if ref.startswith(KEY_PREFIX):
        found = keys.find_key(ws.id, key_hash=hash_key(ref.strip()))
    elif ref.startswith("key_") and "\x00" not in ref:
        found = keys.find_key(ws.id, public_id=ref)
    if found is None:
        raise _not_found(ref)
    return found


def _not_found(ref: str) -> NotFound:
    # Never echo a secret back: a key given by value is shown by its prefix.
    shown = ref[:PREFIX_LENGTH] + "…" if ref.startswith(KEY_PREFIX) else ref[:40]
    return NotFound(f"API key {shown!r} not found in this workspace", field="key")


def revoke_key(
    keys: KeyStore, ws: Workspace, ref: str, now_us: int, *, keep_one_active: bool
) -> ApiKey:
    """Revoke the workspace's key `ref` (see `get_key`) at once and return it; revoking a
    revoked key changes nothing. With `keep_one_active` (the API without ``force``), raises
    `Conflict` rather than revoke the workspace's last active key. Raises `NotFound` for a key
    the workspace does not have."""
    key = get_key(keys, ws, ref)
    done = keys.revoke_key(ws.id, key.public_id, now_us, keep_one_active)
    if done is None:
        raise _not_found(ref)
    return done


def rotate_key(
    keys: KeyStore,
    ws: Workspace,
    ref: str,
    now_us: int,
    *,
    grace_us: int = 0,
    expires_us: int | None = None,
) -> Rotation:
    """Replace the workspace's key `ref` by a new one with the same name and scopes.

    The old key stops working at once, or after `grace_us` (at most `MAX_GRACE_US`). The new
    key expires at `expires_us`, else after the old key's lifetime if it had one. Raises
    `NotFound` for a key the workspace does not have, `Conflict` for a revoked key,
    `InvalidInput` (field ``grace``) for a grace period out of range.
    """
    if not 0 <= grace_us <= MAX_GRACE_US:
        raise InvalidInput(f"grace: at most {MAX_GRACE_US // 86_400_000_000} days", field="grace")
    old = get_key(keys, ws, ref)
    if old.revoked_us is not None:
        raise Conflict(f"API key {old.public_id} is revoked; create a new key instead", field="key")
    if expires_us is None and old.expires_us is not None:
        expires_us = now_us + max(old.expires_us - old.created_us, USE_GRANULARITY_US)
    secret, new = _new_key(ws.id, old.name, old.scopes, now_us, expires_us)
    done = keys.rotate_key(ws.id, old.public_id, new, now_us + grace_us, now_us)
    if done is None:
        raise _not_found(ref)
    return Rotation(CreatedKey(secret, done[0]), done[1])


def authenticate(
    store: KeyAuthStore, authorization: str | None, now_us: int | None = None
) -> Workspace:
    """Return the workspace of a ``Bearer <key>`` header whose key is active, noting its use.

    Raises `Unauthorized` for no header, a malformed one, or an unknown, revoked or expired key.
    """
    if not authorization:
        raise Unauthorized("missing Authorization header: send 'Authorization: Bearer <api key>'")
    scheme, _, key = authorization.partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise Unauthorized("Authorization must be 'Bearer <api key>'")
    ws = workspace_for_hash(store, hash_key(key.strip()), now_us)
    if ws is None:
        raise Unauthorized(UNKNOWN_KEY)
    return ws


def workspace_for_hash(
    store: KeyAuthStore, key_hash: str, now_us: int | None = None
) -> Workspace | None:
    """Return the workspace of the active key with this hash (None: unknown, revoked or
    expired), noting its use: one indexed read, and a write at most once a minute per key."""
    found = store.api_key_for_hash(key_hash)
    if found is None:
        return None
    ws, key = found
    now = clock() if now_us is None else now_us
    if key.state(now) != "active":
        return None
    if key.last_used_us is None or now - key.last_used_us >= USE_GRANULARITY_US:
        store.record_key_use(key.id, now, now - USE_GRANULARITY_US)
    return ws
