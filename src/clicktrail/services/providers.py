"""SMS provider accounts of a workspace, and the delivery receipts their webhooks post.

A workspace configures named providers besides the built-in outbox: a Twilio account or a
generic HTTP API (with presets for aggregators). Each kind is an adapter (`clicktrail.sms`)
that this module sees through the `ProviderKind` port: it checks and splits the options of a
new provider, builds the sender, and reads and authenticates the webhooks of its receipts.

Secrets (auth tokens, API secrets) are kept apart from the other settings and never shown (see
`masked`). Where they may come from is a security boundary: a workspace's API key gives secret
*values* only (`add_provider` refuses any ``${NAME}`` from it, naming the option), while the
operator (the CLI, on the host) may store ``${NAME}`` references, resolved from the process
environment each time the provider is used (`resolve_secrets`) and only for names under the
operator's prefix (`SecretEnvironment`, setting ``secret_env_prefix``): otherwise any tenant
could have the server read ``${CLICKTRAIL_DATABASE_URL}`` into a request to a host of theirs.
References are only ever whole secrets: nothing substitutes the environment into templates,
URLs or headers.

Receipts from webhooks go through the receipts service like every other receipt: a status only
moves forward. A receipt naming no message clicktrail knows is answered 200 (the provider
would retry it otherwise), logged and counted on the provider (`unknown_receipts`).
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

from clicktrail.domain.errors import Conflict, InvalidInput, NotFound
from clicktrail.domain.ids import new_public_id
from clicktrail.domain.models import Receipt, Workspace
from clicktrail.domain.status import RECEIPT_STATUSES, Status
from clicktrail.services import receipts
from clicktrail.services.ports import SmsProvider
from clicktrail.services.receipts import ReceiptOutcome, ReceiptStore
from clicktrail.services.workspaces import WorkspaceStore

log = logging.getLogger("clicktrail.providers")

BUILT_IN = ("outbox",)
NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")
ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
# Variables a ``${NAME}`` reference may read unless the operator sets secret_env_prefix.
DEFAULT_ENV_PREFIX = "CLICKTRAIL_PROVIDER_"
MASK = "********"
# The query parameter that carries clicktrail's message id on each message's status callback
# URL, so a receipt finds its message even when the provider's answer to the send was lost.
MESSAGE_ID_PARAM = "ct"


@dataclass(frozen=True)
class ProviderConfig:
    """A provider account of a workspace, as stored.

    `secrets` hold values as given: plain, or ``${ENV}`` references (see `resolve_secrets`).
    """

    id: int
    public_id: str
    workspace_id: int
    workspace_ref: str  # the workspace's public id
    name: str
    kind: str
    settings: dict[str, Any]
    secrets: dict[str, str]
    created_us: int
    updated_us: int
    unknown_receipts: int = 0
    last_receipt_us: int | None = None

    def masked(self) -> dict[str, Any]:
        """Return settings and secrets for display: a plain secret is replaced by a mask, an
        ``${ENV}`` reference is shown (it names a variable, it is not the secret)."""
        return {
            **self.settings,
            **{k: v if is_env_ref(v) else MASK for k, v in sorted(self.secrets.items())},
        }


@dataclass(frozen=True)
class Resolved:
    """A provider account with its secrets resolved: what an adapter works with."""

    config: ProviderConfig
    secrets: dict[str, str]

    @property
    def settings(self) -> dict[str, Any]:
        """The stored settings."""
        return self.config.settings


@dataclass(frozen=True)
class InboundWebhook:
    """A webhook request as received: the URL the server saw, its raw query, headers (lower-
    case names) and body."""

    url: str
    query: str
    headers: Mapping[str, str]
    body: bytes


@dataclass(frozen=True)
class ProviderReceipt:
    """One receipt in a provider's words, mapped: `status` is None when clicktrail records
    nothing for it (queued, accepted, buffered…); `message_id` is clicktrail's id when the
    provider echoed it back; `at_us` None means when it arrived."""

    provider_message_id: str | None
    status: Status | None
    raw_status: str
    message_id: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    at_us: int | None = None


@dataclass(frozen=True)
class MessageRef:
    """A message a receipt names."""

    id: int
    public_id: str
    provider_message_id: str | None


class ProviderKind(Protocol):
    """One kind of provider (implemented in `clicktrail.sms.twilio` and `clicktrail.sms.http`)."""

    name: str

    def configure(
        self, name: str, options: Mapping[str, Any]
    ) -> tuple[dict[str, Any], dict[str, str]]:
        """Check the options of a new provider called `name`; return (settings, secrets).

        Raises `InvalidInput` naming the option at fault.
        """
        ...

    def build(
        self, provider: Resolved, known_refs: Callable[[Sequence[str]], set[str]]
    ) -> SmsProvider:
        """Return the sender of `provider`. `known_refs` tells which provider message ids
        clicktrail has already recorded (for `reconcile`)."""
        ...

    def authentic(self, provider: Resolved, hook: InboundWebhook) -> bool:
        """Return True if `hook` was sent by `provider` (signature, token or HMAC checked)."""
        ...

    def read_receipts(self, provider: Resolved, hook: InboundWebhook) -> list[ProviderReceipt]:
        """Return the receipts `hook` carries. Raises `InvalidInput` for a malformed body."""
        ...


class ProviderStore(Protocol):
    """Persistence of provider accounts (implemented by `storage.providers.ProviderRepo`)."""

    def add_provider(
        self,
        *,
        public_id: str,
        workspace_id: int,
        name: str,
        kind: str,
        settings: dict[str, Any],
        secrets: dict[str, str],
        now_us: int,
    ) -> ProviderConfig: ...
    def list_providers(self, workspace_id: int) -> list[ProviderConfig]: ...
    def find_provider(self, workspace_id: int, name: str) -> ProviderConfig | None: ...
    def remove_provider(self, workspace_id: int, name: str) -> bool: ...
    def providers_of_kind(self, kind: str, name: str | None = None) -> list[ProviderConfig]: ...
    def message_for_receipt(
        self, workspace_id: int, provider_message_id: str | None, message_id: str | None
    ) -> MessageRef | None: ...
    def note_provider_ref(self, message: MessageRef, provider: str, ref: str) -> None: ...
    def record_delivery_error(
        self, message: MessageRef, code: str | None, text: str | None
    ) -> None: ...
    def note_receipts(self, provider_id: int, unknown: int, now_us: int) -> None: ...
    def known_provider_refs(self, refs: Sequence[str]) -> set[str]: ...


# -- secrets ------------------------------------------------------------------------------------


def is_env_ref(value: str) -> bool:
    """Return True if `value` is exactly one ``${NAME}`` reference."""
    return ENV_REF.fullmatch(value) is not None


def check_secret(value: Any, field: str) -> str:
    """Return `value` as a secret: a non-empty string, plain or a ``${ENV}`` reference.

    Raises `InvalidInput` naming `field`.
    """
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(f"{field} is required (a value or an ${{ENV}} reference)", field=field)
    if "${" in value and not is_env_ref(value.strip()):
        raise InvalidInput(
            f"{field}: write an environment reference as ${{NAME}} alone (letters, digits, _)",
            field=field,
        )
    return value.strip() if is_env_ref(value.strip()) else value


class SecretEnvironment(Mapping[str, str]):
    """The environment variables ``${NAME}`` secrets may read: those of `environ` whose names
    start with `prefix` (the setting ``secret_env_prefix``); the others look unset."""

    def __init__(self, environ: Mapping[str, str], prefix: str = DEFAULT_ENV_PREFIX) -> None:
        self.environ = environ
        self.prefix = prefix

    def allows(self, name: str) -> bool:
        """Return True if a reference may read the variable `name`."""
        return bool(self.prefix) and name.startswith(self.prefix)

    def __getitem__(self, name: str) -> str:
        if not self.allows(name):
            raise KeyError(name)
        return self.environ[name]

    def __iter__(self) -> Iterator[str]:
        return (name for name in self.environ if self.allows(name))

    def __len__(self) -> int:
        return sum(1 for _ in self)


def env_refs_in(options: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """Yield (option path, variable name) for each ``${NAME}`` in the strings of `options`
    (objects and lists walked; paths like ``params.token``, ``request.body.0``)."""
    if isinstance(options, str):
        for match in ENV_REF.finditer(options):
            yield path, match.group(1)
    elif isinstance(options, Mapping):
        for key, value in options.items():
            yield from env_refs_in(value, f"{path}.{key}" if path else str(key))
    elif isinstance(options, list):
        for i, value in enumerate(options):
            yield from env_refs_in(value, f"{path}.{i}" if path else str(i))


def check_env_refs(options: Mapping[str, Any], env_prefix: str | None) -> None:
    """Refuse environment references the caller may not make: any at all when `env_prefix` is
    None (an API caller), else those outside the prefix (the operator's CLI).

    Raises `InvalidInput` naming the option that holds the reference.
    """
    for path, name in env_refs_in(options):
        if env_prefix is None:
            raise InvalidInput(
                f"{path}: ${{{name}}} is a reference to the server's environment, which only "
                "the operator can configure (clicktrail provider add); give the secret's value",
                field=path,
            )
        if not SecretEnvironment({}, env_prefix).allows(name):
            raise InvalidInput(
                f"{path}: ${{{name}}} cannot be read: references resolve only for variables "
                f"whose names start with {env_prefix} (setting secret_env_prefix)",
                field=path,
            )


def resolve_secrets(config: ProviderConfig, env: Mapping[str, str]) -> Resolved:
    """Return `config` with each ``${ENV}`` secret replaced by the variable's value, read from
    `env` as a `SecretEnvironment` (a plain mapping gets the default prefix).

    Raises `InvalidInput` naming the secret whose variable is unset, empty, or outside the
    prefix (a reference stored before references were the operator's only, for instance).
    """
    source = env if isinstance(env, SecretEnvironment) else SecretEnvironment(env)
    out: dict[str, str] = {}
    for key, value in config.secrets.items():
        match = ENV_REF.fullmatch(value)
        if match is None:
            out[key] = value
            continue
        if not source.allows(match.group(1)):
            raise InvalidInput(
                f"provider {config.name!r}: {key} refers to ${{{match.group(1)}}}, which "
                f"references may not read (only names starting with {source.prefix}: setting "
                "secret_env_prefix)",
                field=key,
            )
        found = source.get(match.group(1), "")
        if not found:
            raise InvalidInput(
                f"provider {config.name!r}: {key} refers to ${{{match.group(1)}}}, which is "
                "not set in this process's environment",
                field=key,
            )
        out[key] = found
    return Resolved(config, out)


# -- options ------------------------------------------------------------------------------------


def check_keys(options: Mapping[str, Any], allowed: Sequence[str], where: str = "") -> None:
    """Raise `InvalidInput` naming the first key of `options` not in `allowed`."""
    for key in options:
        if key not in allowed:
            name = f"{where}{key}"
            raise InvalidInput(
                f"unknown option {name!r}; options: {', '.join(allowed)}", field=name
            )


def check_url(value: Any, field: str) -> str:
    """Return `value` if it is an absolute http(s) URL with a host. Raises `InvalidInput`."""
    if isinstance(value, str):
        parts = urlsplit(value.strip())
        if parts.scheme in ("http", "https") and parts.hostname and not parts.fragment:
            return value.strip()
    raise InvalidInput(f"{field}: {value!r} is not an http(s) URL with a host", field=field)


def check_number(value: Any, field: str, low: float, high: float) -> float:
    """Return `value` as a number between `low` and `high`. Raises `InvalidInput`."""
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            value = float(value)
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise InvalidInput(f"{field} must be a number from {low:g} to {high:g}", field=field)
    return float(value)


def callback_for(url: str, message_id: str) -> str:
    """Return the status callback URL of one message: `url` with clicktrail's message id in
    the ``ct`` query parameter (a receipt then finds its message even without the provider's
    id)."""
    parts = urlsplit(url)
    query = parts.query + ("&" if parts.query else "") + urlencode({MESSAGE_ID_PARAM: message_id})
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))


def echoed_message_id(query: str) -> str | None:
    """Return clicktrail's message id from the query of a status callback, if there."""
    values = parse_qs(query).get(MESSAGE_ID_PARAM)
    return values[-1] if values else None


# -- configuration ------------------------------------------------------------------------------


def check_name(name: str) -> str:
    """Return `name` if it can name a provider. Raises `InvalidInput` naming ``name``."""
    if not NAME.fullmatch(name):
        raise InvalidInput(
            f"provider name {name!r} must be 1-32 lowercase letters, digits, '-' or '_'",
            field="name",
        )
    if name in BUILT_IN:
        raise InvalidInput(f"provider name {name!r} is built in; choose another", field="name")
    return name


def add_provider(
    providers: ProviderStore,
    kinds: Mapping[str, ProviderKind],
    workspace: Workspace,
    *,
    name: str,
    kind: str,
    options: Mapping[str, Any],
    now_us: int,
    env_prefix: str | None = None,
) -> ProviderConfig:
    """Configure a provider account for `workspace`. Options may hold ``${NAME}`` references
    to the environment only when `env_prefix` is given (the operator's CLI), and only to names
    under it; an API caller gives None.

    Raises `InvalidInput` for a bad name, an unknown kind or bad options (naming the option),
    a reference the caller may not make, `Conflict` when the workspace already has a provider
    of that name.
    """
    check_name(name)
    check_env_refs(options, env_prefix)
    spec = kinds.get(kind)
    if spec is None:
        raise InvalidInput(
            f"provider kind {kind!r} is not one of {', '.join(sorted(kinds))}", field="kind"
        )
    if providers.find_provider(workspace.id, name) is not None:
        raise Conflict(
            f"workspace {workspace.slug!r} already has a provider {name!r}; remove it first",
            field="name",
        )
    settings, secrets = spec.configure(name, options)
    return providers.add_provider(
        public_id=new_public_id("prv", 12),
        workspace_id=workspace.id,
        name=name,
        kind=kind,
        settings=settings,
        secrets=secrets,
        now_us=now_us,
    )


def get_provider(providers: ProviderStore, workspace: Workspace, name: str) -> ProviderConfig:
    """Return the provider `name` of `workspace`. Raises `NotFound` listing the known ones."""
    found = providers.find_provider(workspace.id, name)
    if found is None:
        known = [p.name for p in providers.list_providers(workspace.id)]
        raise NotFound(
            f"provider {name!r} not found in workspace {workspace.slug!r} (providers: "
            f"{', '.join([*BUILT_IN, *known])})",
            field="provider",
        )
    return found


def remove_provider(providers: ProviderStore, workspace: Workspace, name: str) -> None:
    """Remove the provider `name` of `workspace` (messages keep its name). Raises `NotFound`."""
    get_provider(providers, workspace, name)
    providers.remove_provider(workspace.id, name)


def build_sender(
    providers: ProviderStore,
    kinds: Mapping[str, ProviderKind],
    workspace: Workspace,
    name: str,
    env: Mapping[str, str],
) -> SmsProvider:
    """Return the sender of the workspace's provider `name`, secrets resolved from `env`.

    Raises `NotFound` for an unknown name, `InvalidInput` for an unset secret variable.
    """
    config = get_provider(providers, workspace, name)
    resolved = resolve_secrets(config, env)
    return kinds[config.kind].build(resolved, providers.known_provider_refs)


# -- receipts from webhooks ---------------------------------------------------------------------


@dataclass
class WebhookOutcome:
    """What a webhook request did. `authentic` false: no configured provider vouches for it
    (nothing was read). `ignored`: receipts with a status clicktrail does not record."""

    authentic: bool
    received: int = 0
    applied: int = 0
    unchanged: int = 0
    ignored: int = 0
    unknown: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """Return the outcome as the webhook's JSON answer."""
        return {
            "received": self.received,
            "applied": self.applied,
            "unchanged": self.unchanged,
            "ignored": self.ignored,
            "unknown": self.unknown,
        }


class WebhookRepos(Protocol):
    """What applying a provider's receipts needs, one repository per area: the provider's
    workspace, and its messages the receipts move."""

    @property
    def workspaces(self) -> WorkspaceStore:
        """Workspaces: the provider's."""
        ...

    @property
    def messages(self) -> ReceiptStore:
        """Messages: receipts applied there."""
        ...


def record_webhook(
    repos: WebhookRepos,
    providers: ProviderStore,
    kind: ProviderKind,
    hook: InboundWebhook,
    *,
    env: Mapping[str, str],
    now_us: int,
    name: str | None = None,
) -> WebhookOutcome:
    """Authenticate a receipts webhook of `kind` (optionally the providers called `name`) and
    apply its receipts in the workspace of each provider that vouches for it.

    Unknown messages are counted on the provider and logged, never an error. Raises
    `InvalidInput` for a malformed body of an authentic request.
    """
    vouching: list[Resolved] = []
    for config in providers.providers_of_kind(kind.name, name):
        try:
            resolved = resolve_secrets(config, env)
        except InvalidInput as exc:
            log.warning("cannot check a %s webhook against %s: %s", kind.name, config.name, exc)
            continue
        if kind.authentic(resolved, hook):
            vouching.append(resolved)
    outcome = WebhookOutcome(authentic=bool(vouching))
    if not vouching:
        return outcome
    parsed = kind.read_receipts(vouching[0], hook)
    outcome.received = len(parsed)
    for item in parsed:
        if item.status is None or item.status not in RECEIPT_STATUSES:
            outcome.ignored += 1
            continue
        result = None
        for provider in vouching:
            result = _apply(repos, providers, provider.config, item, now_us)
            if result is not None:
                break
        if result is None:
            ref = item.provider_message_id or item.message_id or "?"
            outcome.unknown.append(ref)
            log.warning(
                "%s receipt for unknown message %s (status %s) ignored",
                kind.name,
                ref,
                item.raw_status,
            )
        else:
            outcome.applied += result.applied
            outcome.unchanged += result.unchanged
    providers.note_receipts(vouching[0].config.id, len(outcome.unknown), now_us)
    return outcome


def _apply(
    repos: WebhookRepos,
    providers: ProviderStore,
    config: ProviderConfig,
    item: ProviderReceipt,
    now_us: int,
) -> ReceiptOutcome | None:
    """Apply one receipt in `config`'s workspace; None when no message there matches it."""
    message = providers.message_for_receipt(
        config.workspace_id, item.provider_message_id, item.message_id
    )
    if message is None:
        return None
    if item.provider_message_id and message.provider_message_id is None:
        # The provider took the message but its answer never reached us (a crash, a timeout):
        # the receipt, found by the id we put on the callback URL, tells the provider's id.
        providers.note_provider_ref(message, config.name, item.provider_message_id)
    workspace = repos.workspaces.find_workspace(config.workspace_ref)
    assert workspace is not None  # a provider's workspace is never deleted
    assert item.status is not None
    result = receipts.record_receipts(
        repos.messages,
        workspace,
        [Receipt(message.public_id, item.status.value, item.at_us or now_us)],
        where=["receipt"],
        skip_unknown=True,
        source=f"webhook:{config.kind}",
        now_us=now_us,
    )
    if (
        result.applied
        and item.status in (Status.FAILED, Status.UNDELIVERED)
        and (item.error_code or item.error_message)
    ):
        providers.record_delivery_error(message, item.error_code, item.error_message)
    return result
