"""The tables of workspaces, contacts, campaigns, messages, clicks, their rollups, opt-outs,
providers and sending jobs.

Times are integers: microseconds since the Unix epoch, UTC (columns end in ``_us``). One
representation on SQLite and PostgreSQL keeps time arithmetic (time to click since delivery,
buckets) the same plain SQL on both; see docs/adr/0002-times-as-integer-microseconds.md.
Integer keys stay internal; the API shows ``public_id`` strings.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
    }
)

# SQLite only autoincrements an INTEGER PRIMARY KEY; PostgreSQL gets 64-bit keys.
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Micros = sa.BigInteger


def id_column() -> sa.Column[int]:
    return sa.Column("id", BigId, primary_key=True, autoincrement=True)


workspaces = sa.Table(
    "workspaces",
    metadata,
    id_column(),
    sa.Column("public_id", sa.String(32), nullable=False, unique=True),
    sa.Column("slug", sa.String(64), nullable=False, unique=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("is_demo", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("created_us", Micros, nullable=False),
)

# A key is found by its hash (unique index: one lookup per request) and named by `public_id`.
# `scopes` NULL means full access; scopes are not enforced yet (migration 0014 made room).
# `last_used_us` is written at most once a minute per key (services/keys.py).
api_keys = sa.Table(
    "api_keys",
    metadata,
    id_column(),
    sa.Column("workspace_id", BigId, sa.ForeignKey("workspaces.id"), nullable=False, index=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("prefix", sa.String(16), nullable=False),
    sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("created_us", Micros, nullable=False),
    sa.Column("revoked_us", Micros),
    sa.Column("public_id", sa.String(32), nullable=False, unique=True),
    sa.Column("expires_us", Micros),
    sa.Column("last_used_us", Micros),
    sa.Column("scopes", sa.Text),
)

domains = sa.Table(
    "domains",
    metadata,
    id_column(),
    sa.Column("workspace_id", BigId, sa.ForeignKey("workspaces.id"), nullable=False, index=True),
    sa.Column("host", sa.String(253), nullable=False, unique=True),
    sa.Column("scheme", sa.String(5), nullable=False),
    sa.Column("port", sa.Integer),
    sa.Column("path_prefix", sa.String(32), nullable=False),
    sa.Column("fallback_url", sa.Text),
    sa.Column("created_us", Micros, nullable=False),
)

contacts = sa.Table(
    "contacts",
    metadata,
    id_column(),
    sa.Column("workspace_id", BigId, sa.ForeignKey("workspaces.id"), nullable=False),
    sa.Column("phone", sa.String(20), nullable=False),
    sa.Column("external_id", sa.String(200)),
    sa.Column("first_name", sa.String(200)),
    sa.Column("attributes", sa.JSON, nullable=False),
    sa.Column("opted_out_us", Micros),
    sa.Column("created_us", Micros, nullable=False),
    sa.Column("updated_us", Micros, nullable=False),
    # The phone rules the number was last found valid under (services.contacts.PHONE_RULES);
    # NULL: not checked since stored. A send checks a number again when they differ.
    sa.Column("phone_valid_under", sa.String(40)),
    # ISO 3166 region of the phone ("ZZ": unknown), set when stored (migration 0024): segments
    # filter on it.
    sa.Column("country", sa.String(2)),
    sa.UniqueConstraint("workspace_id", "phone"),
    sa.Index(None, "workspace_id", "external_id"),
    # Segment sizes: opted-in contacts and countries counted from an index (migration 0024).
    sa.Index("ix_contacts_segments", "workspace_id", "opted_out_us", "country"),
)

contact_lists = sa.Table(
    "contact_lists",
    metadata,
    id_column(),
    sa.Column("workspace_id", BigId, sa.ForeignKey("workspaces.id"), nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("created_us", Micros, nullable=False),
    sa.UniqueConstraint("workspace_id", "name"),
)

list_members = sa.Table(
    "list_members",
    metadata,
    sa.Column("list_id", BigId, sa.ForeignKey("contact_lists.id"), primary_key=True),
    sa.Column("contact_id", BigId, sa.ForeignKey("contacts.id"), primary_key=True),
)

campaigns = sa.Table(
    "campaigns",
    metadata,
    id_column(),
    sa.Column("public_id", sa.String(32), nullable=False, unique=True),
    sa.Column("workspace_id", BigId, sa.ForeignKey("workspaces.id"), nullable=False),
    sa.Column("slug", sa.String(64), nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("template", sa.Text, nullable=False),
    sa.Column("domain_id", BigId, sa.ForeignKey("domains.id"), nullable=False),
    sa.Column("list_id", BigId, sa.ForeignKey("contact_lists.id")),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("created_us", Micros, nullable=False),
    sa.Column("sent_us", Micros),
    # Sending options: {"smart_encoding": bool, "shift_table": str | null}.
    sa.Column("options", sa.JSON, nullable=False, server_default=sa.text("'{}'")),
    # The audience as a segment (tables.audiences.segments; migration 0024), instead of a list.
    sa.Column("segment_id", BigId),
    sa.UniqueConstraint("workspace_id", "slug"),
)

links = sa.Table(
    "links",
    metadata,
    id_column(),
    sa.Column("campaign_id", BigId, sa.ForeignKey("campaigns.id"), nullable=False),
    sa.Column("idx", sa.Integer, nullable=False),
    sa.Column("url", sa.Text, nullable=False),
    sa.Column("role", sa.String(16), nullable=False),
    # Per-link overrides: {"utm": {name: value, "" removes}, "utm_enabled": bool}.
    sa.Column("options", sa.JSON, nullable=False, server_default=sa.text("'{}'")),
    sa.UniqueConstraint("campaign_id", "idx"),
)

messages = sa.Table(
    "messages",
    metadata,
    id_column(),
    sa.Column("public_id", sa.String(32), nullable=False, unique=True),
    sa.Column("campaign_id", BigId, sa.ForeignKey("campaigns.id"), nullable=False),
    sa.Column("contact_id", BigId, sa.ForeignKey("contacts.id"), nullable=False),
    sa.Column("to_phone", sa.String(20), nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("encoding", sa.String(8), nullable=False),
    sa.Column("segments", sa.Integer, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("provider", sa.String(32)),
    sa.Column("provider_message_id", sa.String(128)),
    sa.Column("error_code", sa.String(64)),
    sa.Column("error_message", sa.Text),  # the provider's words for error_code (migration 0008)
    sa.Column("queued_us", Micros, nullable=False),
    sa.Column("sent_us", Micros),
    sa.Column("delivered_us", Micros),
    sa.Column("failed_us", Micros),
    sa.Column("status_us", Micros, nullable=False),
    # Sending jobs (migration 0009, storage/sending.py): tries so far, when the next may start
    # (NULL: now; set by retry backoff and quiet hours), when the first started; test sends
    # (`is_test`) are real messages kept out of reports, exports and CTR.
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("next_attempt_us", Micros),
    sa.Column("first_attempt_us", Micros),
    sa.Column("is_test", sa.Boolean, nullable=False, server_default=sa.false()),
    # Wrap-only messages (migration 0010): the sender's key for the message ('' for messages of
    # a send), and a digest of the text asked for, so a retried wrap returns the same message.
    sa.Column("client_ref", sa.String(200), nullable=False, server_default=""),
    sa.Column("text_digest", sa.String(32)),
    # The campaign variant the message carries (migration 0028; NULL without variants).
    sa.Column("variant", sa.String(32)),
    sa.UniqueConstraint("campaign_id", "contact_id", "client_ref"),
    # With `id`: the send loop claims a campaign's queued messages in id order from it.
    sa.Index("ix_messages_campaign_id_status", "campaign_id", "status", "id"),
    sa.Index(None, "provider_message_id"),  # receipts name the provider's id (migration 0008)
)

message_events = sa.Table(
    "message_events",
    metadata,
    id_column(),
    sa.Column("message_id", BigId, sa.ForeignKey("messages.id"), nullable=False, index=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("at_us", Micros, nullable=False),
    sa.Column("source", sa.String(32), nullable=False),
    sa.Column("applied", sa.Boolean, nullable=False),
    sa.Column("recorded_us", Micros, nullable=False),
)

tokens = sa.Table(
    "tokens",
    metadata,
    sa.Column("token", sa.String(16), primary_key=True),
    sa.Column("message_id", BigId, sa.ForeignKey("messages.id"), nullable=False, index=True),
    sa.Column("link_id", BigId, sa.ForeignKey("links.id"), nullable=False),
    sa.Column("campaign_id", BigId, sa.ForeignKey("campaigns.id"), nullable=False),
    sa.Column("contact_id", BigId, sa.ForeignKey("contacts.id"), nullable=False),
    # Set only when the link's URL is personalized; otherwise the link's URL is the destination.
    sa.Column("destination", sa.Text),
)

clicks = sa.Table(
    "clicks",
    metadata,
    id_column(),
    # Made by the redirect server; unique so that replaying the spool never doubles a click.
    sa.Column("click_id", sa.String(32), nullable=False, unique=True),
    sa.Column("token", sa.String(16), nullable=False),
    sa.Column("campaign_id", BigId, nullable=False),
    sa.Column("link_id", BigId, nullable=False),
    sa.Column("message_id", BigId, nullable=False, index=True),
    sa.Column("contact_id", BigId, nullable=False),
    sa.Column("at_us", Micros, nullable=False),
    sa.Column("method", sa.String(8), nullable=False),
    sa.Column("is_click", sa.Boolean, nullable=False),
    sa.Column("ip", sa.String(45)),
    sa.Column("user_agent", sa.Text),
    sa.Column("headers", sa.JSON, nullable=False),
    # Bot classification (docs/bots.md): provisional at insert, final after the settle
    # window; re-classification rewrites these, never the raw signals above.
    sa.Column("verdict", sa.String(16)),
    sa.Column("score", sa.SmallInteger),
    sa.Column("reasons", sa.JSON(none_as_null=True)),
    sa.Column("classifier_version", sa.String(16)),
    sa.Column("final", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Index(None, "campaign_id", "at_us"),
    sa.Index("ix_clicks_final_at_us", "final", "at_us"),
    # Covering indexes of the report queries (storage/reports.py, migration 0005).
    sa.Index(
        "ix_clicks_report", "campaign_id", "message_id", "link_id", "verdict", "is_click", "at_us"
    ),
    sa.Index("ix_clicks_report_ua", "campaign_id", "user_agent", "link_id", "verdict", "is_click"),
)

# Where the redirect's click writer puts requests: the spool lines of a batch as they are, one
# row per batch and no secondary index, so that a click costs about a microsecond to store
# (issue 4). The classification job moves them from here to `clicks` with their provisional
# verdicts, usually within a second (services/bots.py, ADR 0006).
click_inbox = sa.Table(
    "click_inbox",
    metadata,
    sa.Column("seq", BigId, primary_key=True, autoincrement=True),
    # The click log's spool lines of one write, newline-separated: JSON arrays in
    # `domain.clicks.CLICK_FIELDS` order (one row per batch, not per click: migration 0013).
    sa.Column("raw", sa.Text, nullable=False),
    sa.Column("n", sa.Integer, nullable=False, server_default="1"),  # lines in `raw`
)

# Messages per campaign, recipient country and status: the one report figure that needs every
# message's phone, kept as a rollup checked against live status counts (storage/rollup.py).
report_country_counts = sa.Table(
    "report_country_counts",
    metadata,
    sa.Column("campaign_id", BigId, sa.ForeignKey("campaigns.id"), primary_key=True),
    sa.Column("country", sa.String(2), primary_key=True),
    sa.Column("status", sa.String(16), primary_key=True),
    sa.Column("messages", sa.Integer, nullable=False),
)

# Per-recipient click rollup of the full report (storage/rollup.py, migration 0006): one row
# per message with at least one GET, recomputed from `clicks` and the message's delivery time
# for every message touched by a click insert, a verdict update or a delivery receipt.
# `flags`: 1 counted click, 2 raw click, 4 counted engagement click, 8 raw engagement click,
# 16 counted opt-out click. `clicks`, `first_us`, `last_us`: counted engagement clicks;
# `first_delay_us`: first one minus delivery (NULL without receipt); `first_bucket`: its timing
# bucket (-1 before delivery, -2 without receipt, NULL without counted engagement click).
message_clicks = sa.Table(
    "message_clicks",
    metadata,
    sa.Column("campaign_id", BigId, primary_key=True),
    sa.Column("message_id", BigId, primary_key=True),
    sa.Column("country", sa.String(2), nullable=False),
    sa.Column("flags", sa.SmallInteger, nullable=False),
    sa.Column("clicks", sa.Integer, nullable=False),
    sa.Column("first_us", Micros),
    sa.Column("last_us", Micros),
    sa.Column("first_delay_us", Micros),
    sa.Column("first_bucket", sa.SmallInteger),
    sa.Index("ix_message_clicks_flags", "campaign_id", "country", "flags", "first_bucket"),
    sa.Index("ix_message_clicks_first", "campaign_id", "first_bucket", "first_delay_us"),
    sqlite_with_rowid=False,
)

# Per (message, link) with at least one GET: `counted` is 1 when one of them is counted.
message_link_clicks = sa.Table(
    "message_link_clicks",
    metadata,
    sa.Column("campaign_id", BigId, primary_key=True),
    sa.Column("message_id", BigId, primary_key=True),
    sa.Column("link_id", BigId, primary_key=True),
    sa.Column("counted", sa.SmallInteger, nullable=False),
    sa.Index("ix_message_link_clicks_link", "campaign_id", "link_id", "counted"),
    sqlite_with_rowid=False,
)

# Counted engagement clicks per (message, timing bucket of time since delivery; -1 before the
# receipt, -2 without one).
message_click_buckets = sa.Table(
    "message_click_buckets",
    metadata,
    sa.Column("campaign_id", BigId, primary_key=True),
    sa.Column("message_id", BigId, primary_key=True),
    sa.Column("bucket", sa.Integer, primary_key=True),
    sa.Column("clicks", sa.Integer, nullable=False),
    sa.Index("ix_message_click_buckets_bucket", "campaign_id", "bucket", "clicks"),
    sqlite_with_rowid=False,
)

# Addresses seen fetching links too early to be people (before the delivery receipt, or within
# seconds of it), one row per campaign. Seen early in several campaigns, an address is listed
# for a while and its requests count as scanner traffic (docs/bots.md).
early_sightings = sa.Table(
    "early_sightings",
    metadata,
    sa.Column("entity", sa.String(64), primary_key=True),
    sa.Column("campaign_id", BigId, primary_key=True),
    sa.Column("at_us", Micros, nullable=False),
)

# A workspace's own CIDR lists for bot filtering (migration 0012, docs/bots.md): each range
# with the list it belongs to, its kind (`RANGE_KINDS`: hosting, mobile, relay…) and owner.
# `cidr` is normalized (`domain.network.normalize_cidr`), so a range is in a list at most once.
network_ranges = sa.Table(
    "network_ranges",
    metadata,
    id_column(),
    sa.Column("workspace_id", BigId, sa.ForeignKey("workspaces.id"), nullable=False),
    sa.Column("list_name", sa.String(64), nullable=False),
    sa.Column("cidr", sa.String(64), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("owner", sa.String(200), nullable=False, server_default=""),
    sa.Column("created_us", Micros, nullable=False),
    sa.UniqueConstraint("workspace_id", "list_name", "cidr"),
)

# One row per workspace that ever had network ranges: `revision` goes up in the transaction of
# every change to its lists, so the classifier (jobs process) reloads a workspace's lists by
# reading this small table once a second, never the ranges themselves.
network_list_revisions = sa.Table(
    "network_list_revisions",
    metadata,
    sa.Column("workspace_id", BigId, sa.ForeignKey("workspaces.id"), primary_key=True),
    sa.Column("revision", sa.BigInteger, nullable=False),
    sa.Column("updated_us", Micros, nullable=False),
)

# Opt-out history (migration 0010): every opt-out and opt-in of a contact, when it happened and
# what caused it (`source`: ``keyword:STOP via twilio inbound``, ``api``, ``import``…). The
# contact's current state is `contacts.opted_out_us`; an event older than the contact's latest
# one is kept but not `applied` (the latest wins, whatever order events arrive in).
opt_out_events = sa.Table(
    "opt_out_events",
    metadata,
    id_column(),
    sa.Column("workspace_id", BigId, sa.ForeignKey("workspaces.id"), nullable=False),
    sa.Column("contact_id", BigId, sa.ForeignKey("contacts.id"), nullable=False),
    sa.Column("opted_out", sa.Boolean, nullable=False),  # true: opt-out; false: opt back in
    sa.Column("at_us", Micros, nullable=False),
    sa.Column("source", sa.String(100), nullable=False),
    sa.Column("keyword", sa.String(16)),
    sa.Column("to_number", sa.String(32)),  # the number a keyword was sent to
    sa.Column("note", sa.String(500)),
    sa.Column("applied", sa.Boolean, nullable=False),
    sa.Column("recorded_us", Micros, nullable=False),
    sa.Index(None, "contact_id", "at_us"),
    sa.Index(None, "workspace_id", "id"),
)

# What a workspace answers to HELP, and to opt-out and opt-in keywords (NULL: no reply).
keyword_replies = sa.Table(
    "keyword_replies",
    metadata,
    sa.Column("workspace_id", BigId, sa.ForeignKey("workspaces.id"), primary_key=True),
    sa.Column("help", sa.Text),
    sa.Column("opt_out", sa.Text),
    sa.Column("opt_in", sa.Text),
    sa.Column("updated_us", Micros, nullable=False),
)

# SMS provider accounts of a workspace (Twilio, generic HTTP): `settings` holds what is not
# secret, `secrets` holds tokens as given, plain or as ``${ENV}`` references resolved when used
# (docs/providers.md). `unknown_receipts` counts webhook receipts that named no known message.
sms_providers = sa.Table(
    "sms_providers",
    metadata,
    id_column(),
    sa.Column("public_id", sa.String(32), nullable=False, unique=True),
    sa.Column("workspace_id", BigId, sa.ForeignKey("workspaces.id"), nullable=False),
    sa.Column("name", sa.String(32), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False, index=True),
    sa.Column("settings", sa.JSON, nullable=False),
    sa.Column("secrets", sa.JSON, nullable=False),
    sa.Column("unknown_receipts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("last_receipt_us", Micros),
    sa.Column("created_us", Micros, nullable=False),
    sa.Column("updated_us", Micros, nullable=False),
    sa.UniqueConstraint("workspace_id", "name"),
)

# Test sends are few: reports subtract them through this small partial index (migration 0009).
sa.Index(
    "ix_messages_is_test",
    messages.c.campaign_id,
    messages.c.status,
    sqlite_where=messages.c.is_test,
    postgresql_where=messages.c.is_test,
)

# One sending job per campaign (migration 0009, storage/sending.py, docs/providers.md): its state
# (running, paused, cancelled, held, done), how it sends (provider, rate, quiet hours, retry
# limits), how far wrapping got and what it skipped, and which process holds it (`lease_owner`
# ``host:pid:nonce`` until `lease_until_us`; a dead holder's lease is taken over).
send_jobs = sa.Table(
    "send_jobs",
    metadata,
    sa.Column("campaign_id", BigId, sa.ForeignKey("campaigns.id"), primary_key=True),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("provider", sa.String(64), nullable=False),
    sa.Column("rate", sa.Float, nullable=False),
    sa.Column("quiet_hours", sa.String(16)),
    sa.Column("max_attempts", sa.Integer, nullable=False),
    sa.Column("max_age_s", sa.Integer, nullable=False),
    sa.Column("origin", sa.String(8), nullable=False),
    sa.Column("wrapped_through", BigId, nullable=False, server_default="0"),
    sa.Column("wrapped", sa.Integer, nullable=False, server_default="0"),
    sa.Column("skipped_opted_out", sa.Integer, nullable=False, server_default="0"),
    sa.Column("skipped_invalid", sa.Integer, nullable=False, server_default="0"),
    sa.Column("lease_owner", sa.String(128)),
    sa.Column("lease_until_us", Micros),
    sa.Column("last_error", sa.Text),
    sa.Column("created_us", Micros, nullable=False),
    sa.Column("updated_us", Micros, nullable=False),
    sa.Column("finished_us", Micros),
    sa.Index(None, "state"),
)
