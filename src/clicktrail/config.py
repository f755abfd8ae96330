"""Settings, declared once.

Each setting has a name, a type, a default and a help text (the `help` metadata). Values come, in
increasing priority, from the defaults, an optional TOML file (``CLICKTRAIL_CONFIG``, else
``clicktrail.toml`` in the project folder: the nearest of the current folder and its parents
holding ``clicktrail.toml`` or ``var/clicktrail.db``; keys are setting names, top level or under
``[clicktrail]``), and ``CLICKTRAIL_<NAME>`` environment variables. `docs/configuration.md`
documents every setting; a test fails when one is missing there.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from clicktrail.domain.errors import InvalidInput
from clicktrail.domain.guessing import MissGuard


def _s(default: Any, help: str) -> Any:
    return field(default=default, metadata={"help": help})


@dataclass(frozen=True)
class Settings:
    """Every clicktrail setting with its default. Build with `load_settings()`."""

    data_dir: str = _s(
        "var",
        "Folder for the embedded SQLite database, click spool and outbox. Relative, from the "
        "default or the TOML file: in the project folder (see 'Where the data is').",
    )
    database_url: str = _s(
        "",
        "SQLAlchemy URL of the database. Empty: SQLite at <data_dir>/clicktrail.db. "
        "postgresql://user@host/db selects PostgreSQL (driver psycopg 3).",
    )
    host: str = _s("127.0.0.1", "Interface the server listens on. 0.0.0.0 exposes it to all.")
    port: int = _s(8787, "TCP port the server listens on.")
    spool_dir: str = _s(
        "",
        "Folder of the click spool (clicks are appended here before the redirect is answered). "
        "Empty: <data_dir>/spool. Must be on local disk and private to this machine.",
    )
    click_flush_interval: float = _s(
        0.05, "Seconds between writes of buffered clicks to the database."
    )
    click_flush_max: int = _s(5000, "Buffered clicks that trigger an early write.")
    token_cache_size: int = _s(
        100_000,
        "Resolved tokens kept in memory per server process (about 250 bytes each). They keep "
        "redirecting while the database is away.",
    )
    redirect_miss_burst: int = _s(
        200,
        "Unknown tokens one client (an IPv4 address or an IPv6 /64) may miss at once before "
        "its lookups of uncached tokens are refused with 429 (token guessing; cached links "
        "still redirect). 0: no limit.",
    )
    redirect_miss_rate: float = _s(
        20.0, "Unknown tokens per second a client may go on missing after its burst."
    )
    token_prefetch_interval: float = _s(
        5.0,
        "Seconds between loads of newly sent tokens into the token cache (the newest "
        "token_cache_size at start, then each new send's), so first clicks need no lookup. "
        "0: off.",
    )
    outbox_path: str = _s(
        "", "File the outbox provider appends messages to. Empty: <data_dir>/outbox.jsonl."
    )
    default_region: str = _s(
        "", "ISO country code for phone numbers written without +country code (e.g. US, GB)."
    )
    workers: int = _s(
        1,
        "Server processes. Each serves redirects and the API on the same port (the kernel "
        "balances connections); use PostgreSQL beyond one on a busy SQLite file.",
    )
    trusted_proxies: str = _s(
        "",
        "Comma-separated IPs or CIDR ranges of proxies allowed to set the client IP through "
        "X-Forwarded-For / Forwarded (e.g. 127.0.0.1,10.0.0.0/8). Empty: those headers are "
        "never trusted.",
    )
    tls_certfile: str = _s(
        "", "PEM certificate chain: serve HTTPS directly (with tls_keyfile). Empty: plain HTTP."
    )
    tls_keyfile: str = _s("", "PEM private key for tls_certfile.")
    bot_settle_seconds: int = _s(
        900,
        "Seconds after a request before its bot verdict is final (behavioural windows closed).",
    )
    bot_finalize_interval: float = _s(
        30.0, "Seconds between passes that finalize settled verdicts in the server."
    )
    bot_early_campaigns: int = _s(
        3,
        "An address seen fetching links before people can (before the delivery receipt or "
        "within 2 s of it) in this many campaigns is listed: its requests count as scanners.",
    )
    bot_early_days: int = _s(30, "How long early sightings count toward listing an address.")
    bot_networks_file: str = _s(
        "",
        "IP range file for the bot rules, for every workspace (clicktrail's CSV "
        "cidr,owner,kind,source, or a cloud provider's published range file): its networks "
        "count as hosting unless the file says another kind. Each workspace adds its own lists "
        "with `clicktrail bots networks`. Empty: only the built-in dataset.",
    )
    send_rate: float = _s(
        10.0,
        "Messages per second per sender number or messaging service when a send names no rate "
        "(0: no limit). The outbox provider has no limit unless one is given.",
    )
    send_max_attempts: int = _s(
        8, "Attempts per message refused for now (429, 5xx, timeouts) before it fails."
    )
    send_max_age: int = _s(
        21600, "Seconds after its first attempt that a message refused for now is given up."
    )
    send_in_server: bool = _s(
        True,
        "The server runs sending jobs in the background: those started through the API, and "
        "running jobs whose sender process died. Off: jobs run only under `campaign send`.",
    )
    jobs_cpus: str = _s(
        "",
        "CPUs the jobs process of `clicktrail serve` runs on, as a Linux CPU list ('3', "
        "'2-3', '0,2'). Empty: the server's. Give it a core the server processes do not use "
        "when redirects keep the machine busy: a job sharing a redirect's core delays that "
        "core's redirects by up to a scheduler tick, whatever its priority (ADR 0011).",
    )
    secret_env_prefix: str = _s(
        "CLICKTRAIL_PROVIDER_",
        "Provider secrets given as ${NAME} references (only by the operator's CLI, never "
        "through the API) resolve only for environment variables whose names start with this; "
        "it may not cover a CLICKTRAIL_ setting (CLICKTRAIL_DATABASE_URL is never readable).",
    )
    outbound_allow_networks: str = _s(
        "",
        "Comma-separated IPs or CIDR ranges the server may send provider requests to although "
        "they are loopback, private, link-local or otherwise refused (e.g. 10.1.2.0/24 for an "
        "aggregator on your network). Empty: public addresses only.",
    )
    outbound_allow_http: bool = _s(
        False, "Provider requests may use plain http (default: https only)."
    )
    webhook_timeout: float = _s(
        10.0, "Seconds a webhook endpoint has to answer an attempt before it counts as failed."
    )
    webhook_concurrency: int = _s(
        16, "Webhook attempts the jobs process has in flight at once (threads)."
    )
    webhook_disable_failures: int = _s(
        50,
        "A webhook endpoint is disabled after this many failed attempts in a row that also "
        "span webhook_disable_after seconds (0: never disabled for failures).",
    )
    webhook_disable_after: int = _s(
        259_200, "Seconds a run of failed attempts must span before its endpoint is disabled."
    )
    stream_url: str = _s(
        "",
        "Broker the jobs process publishes every outbox event to, for consumers at scale "
        "(docs/streams.md): nats://host:4222 (NATS JetStream) or redis://host:6379/0 (Redis "
        "Streams). Empty: no stream-out.",
    )
    stream_prefix: str = _s(
        "clicktrail",
        "Start of the stream's subjects (<prefix>.<workspace>.<event type>) and Redis keys "
        "(<prefix>:events:<workspace>).",
    )
    stream_name: str = _s(
        "CLICKTRAIL", "The JetStream stream (subjects <prefix>.>), created when missing."
    )
    stream_workspaces: str = _s(
        "",
        "Comma-separated slugs of the workspaces whose events are streamed. Empty: every "
        "workspace.",
    )
    stream_dedup_window: float = _s(
        300.0,
        "Seconds of JetStream's duplicate window when clicktrail creates the stream: an event "
        "published again within it (after a crash or a lost acknowledgement) is dropped.",
    )
    stream_maxlen: int = _s(
        0,
        "Entries each Redis stream keeps, approximately (XADD MAXLEN ~); older ones are "
        "trimmed. 0: no trimming.",
    )
    log_level: str = _s("info", "Server log level: debug, info, warning, error.")
    access_log: bool = _s(False, "Log every HTTP request (slows the redirect).")

    @property
    def resolved_database_url(self) -> str:
        """The database URL to use, with the default and the psycopg 3 driver filled in."""
        url = self.database_url
        if not url:
            return f"sqlite:///{Path(self.data_dir) / 'clicktrail.db'}"
        if url.startswith(("postgresql://", "postgres://")):
            return "postgresql+psycopg://" + url.split("://", 1)[1]
        return url

    @property
    def database_label(self) -> str:
        """The database for people: the SQLite file's absolute path, else the URL with its
        password masked."""
        url = self.resolved_database_url
        if url.startswith("sqlite:///"):
            return str(Path(url.removeprefix("sqlite:///")).absolute())
        scheme, sep, rest = url.partition("://")
        user, at, host = rest.rpartition("@")
        if at and ":" in user:
            user = user.split(":", 1)[0] + ":***"
        return scheme + sep + user + at + host

    def jobs_cpu_set(self) -> set[int] | None:
        """The CPUs of `jobs_cpus` (None when empty: no change of affinity).

        Raises `InvalidInput` naming `jobs_cpus` for a malformed list or a CPU this machine
        does not have."""
        return cpu_list(self.jobs_cpus, "jobs_cpus") if self.jobs_cpus.strip() else None

    def miss_guard(self) -> MissGuard | None:
        """The redirect's token-guessing guard, None when turned off.

        Raises `InvalidInput` naming ``redirect_miss_rate`` when it is not above 0.
        """
        if self.redirect_miss_burst <= 0:
            return None
        if self.redirect_miss_rate <= 0:
            raise InvalidInput(
                "redirect_miss_rate must be above 0 (set redirect_miss_burst to 0 to turn the "
                "token-guessing limit off)",
                field="redirect_miss_rate",
            )
        return MissGuard(self.redirect_miss_burst, self.redirect_miss_rate)

    def stream_workspace_set(self) -> frozenset[str] | None:
        """The slugs of `stream_workspaces` (None: every workspace)."""
        slugs = frozenset(x.strip() for x in self.stream_workspaces.split(",") if x.strip())
        return slugs or None

    def checked_secret_env_prefix(self) -> str:
        """The checked `secret_env_prefix`. Raises `InvalidInput` naming it when it is empty,
        not a variable-name prefix, or covers the variable of a clicktrail setting."""
        prefix = self.secret_env_prefix
        if not prefix or not all(c.isalnum() or c == "_" for c in prefix):
            raise InvalidInput(
                f"secret_env_prefix: {prefix!r} must be letters, digits and _ (not empty)",
                field="secret_env_prefix",
            )
        covered = sorted(v for v in setting_variables() if v.startswith(prefix))
        if covered:
            raise InvalidInput(
                f"secret_env_prefix: {prefix!r} would let providers read {covered[0]}",
                field="secret_env_prefix",
            )
        return prefix

    @property
    def resolved_spool_dir(self) -> Path:
        """The click spool folder."""
        return Path(self.spool_dir) if self.spool_dir else Path(self.data_dir) / "spool"

    @property
    def resolved_outbox_path(self) -> Path:
        """The outbox file."""
        return Path(self.outbox_path) if self.outbox_path else Path(self.data_dir) / "outbox.jsonl"


def setting_help() -> dict[str, tuple[str, Any, str]]:
    """Return {name: (type name, default, help)} for every setting, for docs and `config`."""
    out: dict[str, tuple[str, Any, str]] = {}
    for f in fields(Settings):
        out[f.name] = (str(f.type), f.default, f.metadata["help"])
    return out


def setting_variables() -> list[str]:
    """Return the environment variable of every setting (``CLICKTRAIL_<NAME>``) and
    ``CLICKTRAIL_CONFIG``."""
    return ["CLICKTRAIL_CONFIG", *("CLICKTRAIL_" + f.name.upper() for f in fields(Settings))]


def _coerce(name: str, kind: str, raw: Any, source: str) -> Any:
    try:
        if kind == "bool":
            if isinstance(raw, bool):
                return raw
            text = str(raw).strip().lower()
            if text in ("1", "true", "yes", "on"):
                return True
            if text in ("0", "false", "no", "off", ""):
                return False
            raise ValueError(raw)
        if kind == "int":
            if isinstance(raw, bool | float):
                raise ValueError(raw)
            return int(raw)
        if kind == "float":
            return float(raw)
        return str(raw)
    except ValueError:
        raise InvalidInput(f"{source}: {name} must be a {kind}, got {raw!r}", field=name) from None


def load_settings(
    env: Mapping[str, str] | None = None, overrides: Mapping[str, Any] | None = None
) -> Settings:
    """Return settings from defaults, the TOML file, the environment and `overrides`.

    Raises `InvalidInput` naming the file or variable with a bad or unknown value.
    """
    env = os.environ if env is None else env
    kinds = {f.name: str(f.type) for f in fields(Settings)}
    values: dict[str, Any] = {}

    config_path = env.get("CLICKTRAIL_CONFIG")
    project = None if config_path else find_project()
    path = Path(config_path) if config_path else (project or Path()) / "clicktrail.toml"
    # A relative data_dir (the default `var`, or one the file gives) is the project's: in the
    # file's folder, else in the folder found upward; from the environment or an option, in
    # the current folder. So a command run from a subfolder opens the project's database.
    home = path.parent if config_path or path.exists() else project
    if config_path or path.exists():
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise InvalidInput(
                f"config file {path} does not exist", field="CLICKTRAIL_CONFIG"
            ) from None
        except tomllib.TOMLDecodeError as exc:
            raise InvalidInput(f"config file {path}: {exc}", field=str(path)) from None
        table = data.get("clicktrail", data)
        if table is not data:
            stray = sorted(k for k in data if k != "clicktrail")
            if stray:
                raise InvalidInput(
                    f"config file {path}: {', '.join(stray)} outside the [clicktrail] table; "
                    "put every setting under [clicktrail]",
                    field=stray[0],
                )
        for key, raw in table.items():
            if key not in kinds:
                raise InvalidInput(
                    f"config file {path}: unknown setting {key!r}; see docs/configuration.md",
                    field=key,
                )
            values[key] = _coerce(key, kinds[key], raw, str(path))
    data_dir = Path(values.get("data_dir", Settings.data_dir))
    if home is not None and not data_dir.is_absolute():
        values["data_dir"] = str(home.absolute() / data_dir)

    for name, kind in kinds.items():
        var = "CLICKTRAIL_" + name.upper()
        if var in env:
            values[name] = _coerce(name, kind, env[var], var)

    for key, raw in (overrides or {}).items():
        if raw is not None:
            values[key] = _coerce(key, kinds[key], raw, "option")
    return replace(Settings(), **values)


PROJECT_MARKERS = ("clicktrail.toml", "var/clicktrail.db")


def find_project(start: Path | None = None) -> Path | None:
    """Return the nearest of `start` (default: the current folder) and its parents that holds
    a `PROJECT_MARKERS` file, or None when none does (or the current folder is gone)."""
    try:
        here = (start or Path.cwd()).absolute()
    except OSError:
        return None
    for folder in (here, *here.parents):
        if any((folder / marker).is_file() for marker in PROJECT_MARKERS):
            return folder
    return None


def cpu_list(text: str, name: str) -> set[int]:
    """Return the CPUs of a Linux CPU list (``0``, ``2-3``, ``0,2-3``), each one this machine
    has. Raises `InvalidInput` naming setting `name` and what is wrong."""
    cpus: set[int] = set()
    have = os.cpu_count() or 1
    for part in text.replace(" ", "").split(","):
        lo, dash, hi = part.partition("-")
        if not lo.isdigit() or (dash and not hi.isdigit()):
            raise InvalidInput(
                f"{name}: {part!r} is not a CPU number or range (e.g. '3', '2-3', '0,2')",
                field=name,
            )
        first, last = int(lo), int(hi) if dash else int(lo)
        if first > last:
            raise InvalidInput(f"{name}: range {part!r} runs backwards", field=name)
        if last >= have:
            raise InvalidInput(
                f"{name}: CPU {last} does not exist (this machine has CPUs 0-{have - 1})",
                field=name,
            )
        cpus.update(range(first, last + 1))
    return cpus
