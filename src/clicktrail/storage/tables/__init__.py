"""Every table of clicktrail, on one `metadata`: `core` (workspaces, contacts, campaigns,
messages, clicks and their rollups, opt-outs, providers, sending jobs) and `outcomes`
(conversions, touchpoints, attribution, holdouts), `audiences` (engagement scores and
segments) and `events` (the event outbox, webhook endpoints and deliveries).

Times are integers: microseconds since the Unix epoch, UTC (columns end in ``_us``). One
representation on SQLite and PostgreSQL keeps time arithmetic (time to click since delivery,
buckets) the same plain SQL on both; see docs/adr/0002-times-as-integer-microseconds.md.
Integer keys stay internal; the API shows ``public_id`` strings.
"""

from __future__ import annotations

from clicktrail.storage.tables.audiences import (
    contact_engagement,
    engagement_dirty,
    engagement_settings,
)
from clicktrail.storage.tables.core import (
    BigId,
    Micros,
    api_keys,
    campaigns,
    click_inbox,
    clicks,
    contact_lists,
    contacts,
    domains,
    early_sightings,
    keyword_replies,
    links,
    list_members,
    message_click_buckets,
    message_clicks,
    message_events,
    message_link_clicks,
    messages,
    metadata,
    network_list_revisions,
    network_ranges,
    opt_out_events,
    report_country_counts,
    send_jobs,
    sms_providers,
    tokens,
    workspaces,
)
from clicktrail.storage.tables.events import (
    event_cursors,
    events,
    webhook_attempts,
    webhook_deliveries,
    webhook_endpoints,
)
from clicktrail.storage.tables.outcomes import (
    attribution_settings,
    attribution_state,
    campaign_holdouts,
    conversion_credits,
    conversion_events,
    conversion_keys,
    conversions,
    holdout_draws,
    rejected_conversions,
    touchpoints,
)

__all__ = [
    "BigId",
    "Micros",
    "api_keys",
    "attribution_settings",
    "attribution_state",
    "campaign_holdouts",
    "campaigns",
    "click_inbox",
    "clicks",
    "contact_engagement",
    "contact_lists",
    "contacts",
    "conversion_credits",
    "conversion_events",
    "conversion_keys",
    "conversions",
    "domains",
    "early_sightings",
    "engagement_dirty",
    "engagement_settings",
    "event_cursors",
    "events",
    "holdout_draws",
    "keyword_replies",
    "links",
    "list_members",
    "message_click_buckets",
    "message_clicks",
    "message_events",
    "message_link_clicks",
    "messages",
    "metadata",
    "network_list_revisions",
    "network_ranges",
    "opt_out_events",
    "rejected_conversions",
    "report_country_counts",
    "send_jobs",
    "sms_providers",
    "tokens",
    "touchpoints",
    "webhook_attempts",
    "webhook_deliveries",
    "webhook_endpoints",
    "workspaces",
]
