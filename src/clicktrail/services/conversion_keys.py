"""The credentials of the conversion endpoints that are not API keys: postback secrets and
publishable keys (docs/conversions.md).

- A **postback secret** (``pbs_…``) goes in the postback URL an affiliate network calls
  (``&secret=…``): server to server, never shown to browsers. Each network gets its own, named,
  revoked on its own.
- A **publishable key** (``pk_…``) is browser-safe: it sits in landing pages (the snippet, the
  pixel) and can do one thing, report a conversion of one of the workspace's clicks by click
  id. It can read nothing and cannot name contacts (a phone number oracle otherwise).

A credential is its kind's prefix, 12 characters that find it (`lookup`, unique) and 32 random
ones (190 bits). Only its SHA-256 hash is stored; checking one finds the row by `lookup` and
compares hashes with `hmac.compare_digest`, in time independent of where they differ. The
secret is shown once, when created. A workspace has at most `MAX_ACTIVE` active ones per kind.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Literal, Protocol

from clicktrail.domain import conversions as rules
from clicktrail.domain.errors import InvalidInput, NotFound, Unauthorized
from clicktrail.domain.ids import new_public_id
from clicktrail.domain.models import Workspace
from clicktrail.domain.tokens import ALPHABET

KeyKind = Literal["postback", "publishable"]
PREFIXES: dict[str, str] = {"postback": "pbs_", "publishable": "pk_"}
NAMES = {"postback": "postback secret", "publishable": "publishable key"}
LOOKUP_LENGTH = 12
RANDOM_LENGTH = 32
MAX_NAME = 200
MAX_ACTIVE = 100


@dataclass(frozen=True, slots=True)
class ConversionKey:
    """A stored postback secret or publishable key (never its secret nor its hash)."""

    id: int
    public_id: str
    workspace_id: int
    kind: str
    name: str
    prefix: str  # the kind's prefix and the lookup part: recognisable, not secret
    default_currency: str | None
    created_us: int
    revoked_us: int | None


@dataclass(frozen=True, slots=True)
class NewConversionKey:
    """A credential about to be stored."""

    public_id: str
    workspace_id: int
    kind: str
    name: str
    lookup: str
    key_hash: str
    default_currency: str | None
    created_us: int


@dataclass(frozen=True, slots=True)
class CreatedConversionKey:
    """A new credential: its secret (shown this once) and its record."""

    secret: str
    key: ConversionKey


class ConversionKeyStore(Protocol):
    """Conversion credentials as this service needs them (`storage.conversion_keys`)."""

    def add_conversion_key(self, key: NewConversionKey, max_active: int) -> ConversionKey:
        """Store a credential. Raises `Conflict` when the workspace already has `max_active`
        active ones of its kind."""
        ...

    def conversion_key_for_lookup(
        self, kind: str, lookup: str
    ) -> tuple[Workspace, ConversionKey, str] | None:
        """Return the active credential of `kind` with this lookup part, its workspace and its
        stored hash (None: none)."""
        ...

    def conversion_keys(self, workspace_id: int, kind: str) -> list[ConversionKey]:
        """Return the workspace's credentials of `kind`, oldest first, revoked ones too."""
        ...

    def revoke_conversion_key(
        self, workspace_id: int, kind: str, public_id: str, now_us: int
    ) -> ConversionKey | None:
        """Revoke a credential (again: no change); return it (None: not the workspace's)."""
        ...


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _random(n: int) -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(n))


def create_key(
    store: ConversionKeyStore,
    ws: Workspace,
    kind: KeyKind,
    name: str,
    now_us: int,
    *,
    default_currency: str | None = None,
) -> CreatedConversionKey:
    """Create a postback secret or publishable key named `name`; return it with its secret.

    `default_currency` (ISO 4217) is the currency of values sent without one. Raises
    `InvalidInput` naming ``name`` or ``default_currency``; `Conflict` past `MAX_ACTIVE`.
    """
    label = name.strip()
    if not label or len(label) > MAX_NAME or not label.isprintable():
        raise InvalidInput(
            f"name must be 1 to {MAX_NAME} printable characters (e.g. the network's name)",
            field="name",
        )
    currency = rules.currency_code(default_currency, "default_currency")
    lookup = _random(LOOKUP_LENGTH)
    secret = PREFIXES[kind] + lookup + _random(RANDOM_LENGTH)
    key = store.add_conversion_key(
        NewConversionKey(
            new_public_id("pbk" if kind == "postback" else "pkk", 12), ws.id, kind, label, lookup,
            _hash(secret), currency, now_us,
        ),
        MAX_ACTIVE,
    )  # fmt: skip
    return CreatedConversionKey(secret, key)


def list_keys(store: ConversionKeyStore, ws: Workspace, kind: KeyKind) -> list[ConversionKey]:
    """Return the workspace's credentials of `kind`, oldest first, revoked ones too."""
    return store.conversion_keys(ws.id, kind)


def revoke_key(
    store: ConversionKeyStore, ws: Workspace, kind: KeyKind, public_id: str, now_us: int
) -> ConversionKey:
    """Revoke one of the workspace's credentials at once; return it. Raises `NotFound` for an
    id the workspace does not have (another workspace's included)."""
    found = (
        store.revoke_conversion_key(ws.id, kind, public_id, now_us)
        if len(public_id) <= 32
        else None
    )
    if found is None:
        raise NotFound(f"{NAMES[kind]} {public_id[:40]!r} not found in this workspace", field="id")
    return found


def authenticate(
    store: ConversionKeyStore, kind: KeyKind, secret: str | None
) -> tuple[Workspace, ConversionKey]:
    """Return the workspace and credential of an active `secret` of `kind`.

    Raises `Unauthorized` (naming the parameter ``secret`` or ``key``) for a missing, malformed,
    unknown or revoked one, all alike.
    """
    field = "secret" if kind == "postback" else "key"
    prefix = PREFIXES[kind]
    if not secret:
        raise Unauthorized(f"missing {field}: the workspace's {NAMES[kind]}", field=field)
    unknown = Unauthorized(f"unknown or revoked {NAMES[kind]}", field=field)
    if len(secret) != len(prefix) + LOOKUP_LENGTH + RANDOM_LENGTH or not secret.startswith(prefix):
        raise unknown
    found = store.conversion_key_for_lookup(kind, secret[len(prefix) : len(prefix) + LOOKUP_LENGTH])
    if found is None:
        raise unknown
    ws, key, stored_hash = found
    if not hmac.compare_digest(_hash(secret).encode(), stored_hash.encode()):
        raise unknown
    return ws, key
