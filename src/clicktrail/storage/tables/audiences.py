"""The tables of engagement scores and segments (issue 17): a workspace's scoring settings,
each contact's kept score, the contacts whose score must be computed again, segments and the
members of static ones.

The same `metadata` as `tables.core`; conventions there (times in µs, internal integer keys).
"""

from __future__ import annotations

import sqlalchemy as sa

from clicktrail.storage.tables.core import BigId, Micros, metadata

# A workspace's scoring (domain/engagement.py, docs/segments.md); a workspace without a row
# scores with the defaults. `revision` goes up with every change; `scoring_revision` only with
# a change of weights or half-life: rows of `contact_engagement` stamped with an older epoch
# (`domain.engagement.scoring_epoch`) are stale, and the jobs process scores them again.
engagement_settings = sa.Table(
    "engagement_settings",
    metadata,
    sa.Column("workspace_id", BigId, sa.ForeignKey("workspaces.id"), primary_key=True),
    sa.Column("click_weight", sa.Float, nullable=False),
    sa.Column("conversion_weight", sa.Float, nullable=False),
    sa.Column("preview_weight", sa.Float, nullable=False),
    sa.Column("half_life_days", sa.Float, nullable=False),
    sa.Column("engaged_min", sa.Float, nullable=False),
    sa.Column("at_risk_min", sa.Float, nullable=False),
    sa.Column("revision", sa.Integer, nullable=False),
    sa.Column("updated_us", Micros, nullable=False),
    sa.Column("scoring_revision", sa.Integer, nullable=False, server_default="0"),
)

# One row per contact with at least one event that counts (a contact without one scores 0):
# `score_key` is log2 of the decayed total's numerator (`domain.engagement.key_of`; NULL: a
# total of zero), so "score >= x now" is a range of `ix_contact_engagement_band`. Counts and
# last times serve the segment filters ("no click in N days", "converted"). `revision` is the
# scoring epoch the row was computed under (`domain.engagement.scoring_epoch`): rows below the
# workspace's are found through `ix_contact_engagement_epoch` and scored again.
contact_engagement = sa.Table(
    "contact_engagement",
    metadata,
    sa.Column("contact_id", BigId, sa.ForeignKey("contacts.id"), primary_key=True),
    sa.Column("workspace_id", BigId, sa.ForeignKey("workspaces.id"), nullable=False),
    sa.Column("score_key", sa.Float(precision=53)),
    sa.Column("clicks", sa.Integer, nullable=False),
    sa.Column("conversions", sa.Integer, nullable=False),
    sa.Column("previews", sa.Integer, nullable=False),
    sa.Column("last_click_us", Micros),
    sa.Column("last_conversion_us", Micros),
    sa.Column("last_event_us", Micros),
    sa.Column("revision", sa.Integer, nullable=False),
    sa.Column("updated_us", Micros, nullable=False),
    sa.Index("ix_contact_engagement_band", "workspace_id", "score_key"),
    sa.Index("ix_contact_engagement_last_click", "workspace_id", "last_click_us"),
    sa.Index("ix_contact_engagement_epoch", "workspace_id", "revision", "contact_id"),
)

# Contacts whose events changed (a click stored or given another verdict, a conversion),
# written in the same transaction as the change; the click pipeline of the jobs process
# (services/engagement.py) computes their rows again and deletes the rows it read, by `seq`.
engagement_dirty = sa.Table(
    "engagement_dirty",
    metadata,
    sa.Column("seq", BigId, primary_key=True, autoincrement=True),
    sa.Column("contact_id", BigId, nullable=False),
)

# Segments (docs/segments.md, domain/segments.py): a saved filter (`kind` "filter", `filter` the
# checked conditions as JSON) or a static list (`kind` "static": members in `segment_members`,
# added and removed by hand, the API, or automations). `builtin`: one of the built-in segments
# (engaged, at-risk, unengaged, never-clicked), created for a workspace when first named.
segments = sa.Table(
    "segments",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("public_id", sa.String(32), nullable=False, unique=True),
    sa.Column("workspace_id", BigId, sa.ForeignKey("workspaces.id"), nullable=False),
    sa.Column("slug", sa.String(64), nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("filter", sa.JSON(none_as_null=True)),
    sa.Column("builtin", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("created_us", Micros, nullable=False),
    sa.Column("updated_us", Micros, nullable=False),
    sa.UniqueConstraint("workspace_id", "slug"),
)

segment_members = sa.Table(
    "segment_members",
    metadata,
    sa.Column("segment_id", BigId, sa.ForeignKey("segments.id"), primary_key=True),
    sa.Column("contact_id", BigId, sa.ForeignKey("contacts.id"), primary_key=True),
    sa.Column("added_us", Micros, nullable=False),
    sa.Index("ix_segment_members_contact", "contact_id"),
)
