"""The tables of what follows a message: conversions and their keys, other channels'
touchpoints, attribution settings and credits, campaign holdouts (issue 16).

The same `metadata` as `tables.core`; conventions there (times in µs, internal integer keys).
"""

from __future__ import annotations

import sqlalchemy as sa

from clicktrail.storage.tables.core import BigId, Micros, clicks, id_column, messages, metadata

# Conversions (migration 0015, storage/conversions.py, docs/conversions.md): an outcome tied to
# a click (`click_id`: the public click id the redirect put in the destination URL, the key of
# `clicks.click_id`, which may still be in the inbox when the conversion arrives) or to a
# contact, with what the click resolved to. `value_micros`: millionths of `currency`'s unit
# (ISO 4217; both NULL without a value). `dedup_key` (domain/conversions.py) is unique per
# workspace forever: a retried postback, beacon or API call never counts twice.
conversions = sa.Table(
    "conversions",
    metadata,
    id_column(),
    sa.Column("public_id", sa.String(32), nullable=False, unique=True),
    sa.Column("workspace_id", BigId, sa.ForeignKey("workspaces.id"), nullable=False),
    sa.Column("event", sa.String(64), nullable=False),
    sa.Column("value_micros", sa.BigInteger),
    sa.Column("currency", sa.String(3)),
    sa.Column("occurred_us", Micros, nullable=False),
    sa.Column("received_us", Micros, nullable=False),
    sa.Column("click_id", sa.String(32)),
    sa.Column("contact_id", BigId, sa.ForeignKey("contacts.id")),
    sa.Column("message_id", BigId),
    sa.Column("campaign_id", BigId),
    sa.Column("link_id", BigId),
    sa.Column("txn", sa.String(128)),
    sa.Column("source", sa.String(16), nullable=False),
    sa.Column("dedup_key", sa.String(255), nullable=False),
    sa.Column("meta", sa.JSON(none_as_null=True)),
    sa.Column("updated_us", Micros),  # when mode `replace` last changed the value
    sa.UniqueConstraint("workspace_id", "dedup_key"),
    sa.Index(None, "workspace_id", "id"),
    sa.Index(None, "campaign_id", "occurred_us"),
    sa.Index(None, "contact_id", "occurred_us"),
    sa.Index(None, "click_id"),
)

# What a second conversion of an event does in a workspace (`duplicate_mode`: ignore, count,
# replace); an event without a row is `ignore`.
conversion_events = sa.Table(
    "conversion_events",
    metadata,
    sa.Column("workspace_id", BigId, sa.ForeignKey("workspaces.id"), primary_key=True),
    sa.Column("event", sa.String(64), primary_key=True),
    sa.Column("duplicate_mode", sa.String(16), nullable=False),
    sa.Column("updated_us", Micros, nullable=False),
)

# Conversions refused from postbacks, pixels and beacons (their callers are networks and
# browsers an operator cannot ask): why (`reason`: an outcome or error code, `field`,
# `detail`), the request's query string with secrets masked, and the client address. Bounded:
# each workspace keeps its newest rows (storage/conversions.py `REJECTED_KEPT`); refusals that
# name no workspace (an unknown secret or key) have `workspace_id` NULL and are read by the
# operator's CLI only.
rejected_conversions = sa.Table(
    "rejected_conversions",
    metadata,
    id_column(),
    sa.Column("workspace_id", BigId, sa.ForeignKey("workspaces.id")),
    sa.Column("at_us", Micros, nullable=False),
    sa.Column("source", sa.String(16), nullable=False),
    sa.Column("reason", sa.String(32), nullable=False),
    sa.Column("field", sa.String(64)),
    sa.Column("detail", sa.String(500), nullable=False),
    sa.Column("query", sa.String(2048), nullable=False),
    sa.Column("ip", sa.String(45)),
    sa.Index(None, "workspace_id", "id"),
)

# Credentials of the conversion endpoints that are not API keys: postback secrets (`kind`
# ``postback``, for affiliate networks' server-to-server calls) and publishable keys
# (``publishable``, browser-safe: the snippet and the pixel). Found by `lookup` (the part after
# the kind's prefix, unique), checked by comparing SHA-256 hashes in constant time.
conversion_keys = sa.Table(
    "conversion_keys",
    metadata,
    id_column(),
    sa.Column("public_id", sa.String(32), nullable=False, unique=True),
    sa.Column("workspace_id", BigId, sa.ForeignKey("workspaces.id"), nullable=False, index=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("lookup", sa.String(16), nullable=False, unique=True),
    sa.Column("key_hash", sa.String(64), nullable=False),
    # The currency of a value sent without one (affiliate networks that pay in one currency).
    sa.Column("default_currency", sa.String(3)),
    sa.Column("created_us", Micros, nullable=False),
    sa.Column("revoked_us", Micros),
)

# Other channels' touches of a workspace's contacts (email, paid social, web, …: docs/
# touchpoints.md), for multi-touch attribution beside clicktrail's own SMS deliveries and clicks
# (which are read from `messages` and `clicks`, never copied here). `campaign` and `source` are
# the other tool's labels, not clicktrail campaigns. Stored once per workspace and `dedup_key`
# (the caller's `touch_id`, else ``=`` and the public id), forever.
touchpoints = sa.Table(
    "touchpoints",
    metadata,
    id_column(),
    sa.Column("public_id", sa.String(32), nullable=False, unique=True),
    sa.Column("workspace_id", BigId, sa.ForeignKey("workspaces.id"), nullable=False),
    sa.Column("channel", sa.String(32), nullable=False),
    sa.Column("contact_id", BigId, sa.ForeignKey("contacts.id"), nullable=False),
    sa.Column("occurred_us", Micros, nullable=False),
    sa.Column("received_us", Micros, nullable=False),
    sa.Column("campaign", sa.String(128)),
    sa.Column("source", sa.String(128)),
    sa.Column("touch_id", sa.String(128)),
    sa.Column("dedup_key", sa.String(160), nullable=False),
    sa.Column("meta", sa.JSON(none_as_null=True)),
    sa.UniqueConstraint("workspace_id", "dedup_key"),
    sa.Index(None, "workspace_id", "id"),
    sa.Index(None, "contact_id", "occurred_us"),
)
# Attribution settings (migration 0017, docs/attribution.md): one row for a workspace
# (`campaign_id` 0) and one per campaign that overrides it; NULL inherits (a campaign from its
# workspace, a workspace from the defaults: last click, 5 days after a click, 12 hours after a
# delivery).
attribution_settings = sa.Table(
    "attribution_settings",
    metadata,
    sa.Column("workspace_id", BigId, sa.ForeignKey("workspaces.id"), primary_key=True),
    sa.Column("campaign_id", BigId, primary_key=True),  # 0: the workspace's own settings
    sa.Column("model", sa.String(16)),
    sa.Column("click_window_us", Micros),
    sa.Column("delivery_window_us", Micros),
    sa.Column("updated_us", Micros, nullable=False),
)

# A workspace's attribution revision: it goes up in the transaction of every change that
# calls for re-attributing its history (windows, a re-classification); credits carry the
# revision they were computed under, and a write of credits computed under an older revision
# is refused (the revision guard of services/attribution.py). `attributed_revision`: the
# newest revision whose full re-attribution finished.
attribution_state = sa.Table(
    "attribution_state",
    metadata,
    sa.Column("workspace_id", BigId, sa.ForeignKey("workspaces.id"), primary_key=True),
    sa.Column("revision", sa.BigInteger, nullable=False),
    sa.Column("attributed_revision", sa.BigInteger, nullable=False),
    sa.Column("updated_us", Micros, nullable=False),
)

# The credit each model gives for each conversion (services/attribution.py): one row per
# (conversion, model); `kind` ``click`` (a click, `click_row` its clicks.id), ``view`` (a
# delivered message, view-through) or ``none`` (nothing eligible: campaign and credit empty).
# Values are read from `conversions` (a `replace` duplicate changes them); `delay_us` is the
# time from the touch to the conversion. `settled` false: a click in the window still had a provisional
# verdict, so the jobs process attributes it again until it has none.
conversion_credits = sa.Table(
    "conversion_credits",
    metadata,
    sa.Column("conversion_id", BigId, primary_key=True),
    sa.Column("model", sa.String(16), primary_key=True),
    sa.Column("workspace_id", BigId, nullable=False),
    sa.Column("contact_id", BigId),
    sa.Column("kind", sa.String(8), nullable=False),
    sa.Column("campaign_id", BigId),
    sa.Column("message_id", BigId),
    sa.Column("link_id", BigId),
    sa.Column("click_row", BigId),
    sa.Column("credit", sa.Float, nullable=False),
    sa.Column("delay_us", Micros),
    sa.Column("conversion_us", Micros, nullable=False),
    sa.Column("revision", sa.BigInteger, nullable=False),
    sa.Column("settled", sa.Boolean, nullable=False),
    # The conversions report's sums, index-only but for the conversions' values (migration
    # 0023; it replaced (campaign_id, model, link_id)).
    sa.Index(
        "ix_conversion_credits_report",
        *("campaign_id", "model", "kind", "link_id", "delay_us", "contact_id", "credit"),
        *("settled", "conversion_id"),
    ),
    sa.Index("ix_conversion_credits_workspace", "workspace_id", "settled"),
)

# Attribution looks a converting contact's messages up, and their requests: covering indexes
# of re-attribution in the database (storage/recredit.py `RECREDIT`, migration 0021).
sa.Index(
    "ix_messages_attribution", messages.c.contact_id,
    postgresql_include=["id", "campaign_id", "delivered_us", "is_test"],
)  # fmt: skip
sa.Index(
    "ix_clicks_attribution", clicks.c.message_id, clicks.c.at_us,
    postgresql_include=["id", "link_id", "is_click", "verdict", "final"],
)  # fmt: skip

# Campaign holdouts (migration 0019, storage/holdouts.py, docs/attribution.md "Holdout and
# lift"): a campaign's draw, made once when its send starts (the seed, share and stratification
# it used, how many contacts were eligible and held out, per stratum: {name: [eligible, held]}),
# and the held-out contacts, who get no message.
holdout_draws = sa.Table(
    "holdout_draws",
    metadata,
    sa.Column("campaign_id", BigId, sa.ForeignKey("campaigns.id"), primary_key=True),
    sa.Column("seed", sa.BigInteger, nullable=False),
    sa.Column("share", sa.Float, nullable=False),
    sa.Column("stratify", sa.String(200)),
    sa.Column("eligible", sa.Integer, nullable=False),
    sa.Column("held", sa.Integer, nullable=False),
    sa.Column("strata", sa.JSON, nullable=False),
    sa.Column("drawn_us", Micros, nullable=False),
)

campaign_holdouts = sa.Table(
    "campaign_holdouts",
    metadata,
    sa.Column("campaign_id", BigId, sa.ForeignKey("campaigns.id"), primary_key=True),
    sa.Column("contact_id", BigId, sa.ForeignKey("contacts.id"), primary_key=True),
    sa.Column("stratum", sa.Text, nullable=False),
)
