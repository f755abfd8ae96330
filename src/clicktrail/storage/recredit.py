"""Re-attribution in the database (PostgreSQL): a batch of a workspace's conversions credited
again by one statement (`RECREDIT`), which writes only the credits that change.

The database picks the winning touches with the rules of `domain.attribution.attribute`
(tests/attribution/test_in_database.py runs both on random data full of edge cases and
compares them row by row). `NEW_CREDITS` gives, for the conversions with ids in (after, upto],
taken in contact order (`conv`: who converted as `storage.attribution._CONVERSION` says, the
click id and message looked up only when given), one row per model:

* `a`, per conversion, over the contact's requests that may count (`TOUCHES`: test sends apart)
  at or before the conversion, through the covering indexes of migration 0021 (a nested loop:
  the contact's messages, then each message's requests, in index order because the
  conversions come in contact order): the latest and the earliest *eligible* one
  (attributable: a counted verdict or none yet, not on an opt-out link; within its campaign's
  click window) as arrays [at, click row, message, campaign, link], so that max and min order
  them by time, then by row id (the domain's tiebreak); and whether one within a window is not
  final yet, opt-out links apart (then the credits are not settled);
* `v`, only for conversions without an eligible click: the latest delivery within its
  campaign's delivery window, by delivery time then message id, of a message without an
  attributable request at or before the conversion (whatever the window: a clicked message is
  no view);
* the rows: last click, first click and last touch to the clicks when there is one, else last
  touch to the view, else one `none` row; settled unless `a` says so or the conversion's click
  id is not stored yet.

Windows: the campaigns' own as arrays (`w_campaign`, `w_click`, `w_delivery`, looked up with
`array_position`), the workspace's as `click_us` and `delivery_us`; `optout`: the workspace's
opt-out links.

`RECREDIT` then compares them with the stored credits of the range and writes the difference:
a credit whose columns all stay (its revision apart) is left as it is, one that changes is
updated (with the new revision), one of a model that no longer applies is deleted, a new one
inserted. A window change alters few credits, so it costs few index entries (the report's wide
index of migration 0023 among them); the first attribution inserts them all. Every part of the
statement reads one snapshot; conversions committed after it are not in the range's credits
(their credits are written by `put_credits`, which waits for the batch's share lock on the
workspace's state row) and the jobs' next pass attributes them. Two re-attributions of one
workspace at once (`clicktrail attribution rerun` beside the jobs) run under the same revision
(both hold the share lock): a credit the other inserted first is kept (ON CONFLICT DO NOTHING)
rather than failing the batch.
"""

from __future__ import annotations

from typing import Any

from clicktrail.domain.report import COUNTED_VERDICTS
from clicktrail.services.attribution import CreditRow, WorkspaceRules

CREDIT_COLUMNS = CreditRow._fields
# What a re-attribution compares: every column but the key and the revision.
_COMPARED = [c for c in CREDIT_COLUMNS if c not in ("conversion_id", "model", "revision")]

_COUNTED = ", ".join(f"'{v}'" for v in COUNTED_VERDICTS)  # our own constants
_COUNTS = f"(k.verdict IS NULL OR k.verdict IN ({_COUNTED}))"
_OPTOUT = "k.link_id = ANY(%(optout)s)"


def _window(kind: str, campaign: str) -> str:
    return (
        f"COALESCE((%(w_{kind})s::bigint[])[array_position(%(w_campaign)s::bigint[], "
        f"{campaign})], %({kind}_us)s)"
    )


NEW_CREDITS = f"""
SELECT c.id AS conversion_id, r.model, c.workspace_id, c.contact_id, r.kind, r.campaign_id,
       r.message_id, r.link_id, r.click_row, r.credit, c.at_us - r.touch_us AS delay_us,
       c.at_us AS conversion_us, %(revision)s::bigint AS revision,
       NOT (COALESCE(a.unsettled, false) OR c.pending) AS settled
FROM (
    SELECT cv.id, cv.workspace_id, cv.occurred_us AS at_us,
           COALESCE(cv.contact_id, k.contact_id, m.contact_id) AS contact_id,
           cv.click_id IS NOT NULL AND k.id IS NULL AS pending
    FROM conversions cv
    LEFT JOIN LATERAL (SELECT k.id, k.contact_id FROM clicks k WHERE k.click_id = cv.click_id
                       OFFSET 0) k ON true
    LEFT JOIN LATERAL (SELECT m.contact_id FROM messages m WHERE m.id = cv.message_id
                       OFFSET 0) m ON true
    WHERE cv.workspace_id = %(ws)s AND cv.id > %(after)s AND cv.id <= %(upto)s
    ORDER BY 4, 1
) c
CROSS JOIN LATERAL (
    SELECT max(ARRAY[k.at_us, k.id, m.id, m.campaign_id, k.link_id]) FILTER (WHERE eligible)
               AS last,
           min(ARRAY[k.at_us, k.id, m.id, m.campaign_id, k.link_id]) FILTER (WHERE eligible)
               AS first,
           bool_or(in_window AND NOT k.final AND NOT {_OPTOUT}) AS unsettled
    FROM messages m
    JOIN clicks k ON k.message_id = m.id AND k.at_us <= c.at_us AND k.is_click
         AND ({_COUNTS} OR NOT k.final)
    CROSS JOIN LATERAL (
        SELECT c.at_us - k.at_us <= {_window("click", "m.campaign_id")} AS in_window) i
    CROSS JOIN LATERAL (SELECT in_window AND {_COUNTS} AND NOT {_OPTOUT} AS eligible) e
    WHERE m.contact_id = c.contact_id AND NOT m.is_test
) a
LEFT JOIN LATERAL (
    SELECT m.delivered_us, m.id, m.campaign_id
    FROM messages m
    WHERE a.last IS NULL AND m.contact_id = c.contact_id AND NOT m.is_test
      AND m.delivered_us <= c.at_us
      AND c.at_us - m.delivered_us <= {_window("delivery", "m.campaign_id")}
      AND NOT EXISTS (
          SELECT FROM clicks k WHERE k.message_id = m.id AND k.at_us <= c.at_us AND k.is_click
             AND {_COUNTS} AND NOT {_OPTOUT})
    ORDER BY m.delivered_us DESC, m.id DESC
    LIMIT 1
) v ON true
CROSS JOIN LATERAL (VALUES
    ('last_click', 'click', a.last[4], a.last[3], a.last[5], a.last[2], 1.0::float8, a.last[1]),
    ('first_click', 'click', a.first[4], a.first[3], a.first[5], a.first[2], 1.0, a.first[1]),
    ('last_touch', 'click', a.last[4], a.last[3], a.last[5], a.last[2], 1.0, a.last[1]),
    ('last_touch', 'view', v.campaign_id, v.id, NULL, NULL, 1.0, v.delivered_us),
    ('none', 'none', NULL, NULL, NULL, NULL, 0.0, NULL)
) AS r (model, kind, campaign_id, message_id, link_id, click_row, credit, touch_us)
WHERE CASE r.kind WHEN 'click' THEN a.last IS NOT NULL
                  WHEN 'view' THEN a.last IS NULL AND v.id IS NOT NULL
                  ELSE a.last IS NULL AND v.id IS NULL END
"""
_IN_RANGE = (
    "cc.workspace_id = %(ws)s AND cc.conversion_id > %(after)s AND cc.conversion_id <= %(upto)s"
)
_SAME_KEY = "cc.conversion_id = x.conversion_id AND cc.model = x.model"
# `n`: the new credits; `o`: the stored ones of the range, read once; `x`: those that change.
RECREDIT = f"""
WITH n AS MATERIALIZED ({NEW_CREDITS}),
o AS MATERIALIZED (
    SELECT {", ".join(f"cc.{c}" for c in CREDIT_COLUMNS)} FROM conversion_credits cc
    WHERE {_IN_RANGE}
), x AS MATERIALIZED (
    SELECT COALESCE(n.conversion_id, o.conversion_id) AS conversion_id,
           COALESCE(n.model, o.model) AS model,
           {", ".join(f"n.{c}" for c in CREDIT_COLUMNS[2:])}, o.conversion_id IS NULL AS new,
           n.conversion_id IS NULL AS gone
    FROM n FULL JOIN o ON o.conversion_id = n.conversion_id AND o.model = n.model
    WHERE o.conversion_id IS NULL OR n.conversion_id IS NULL
       OR ({", ".join(f"o.{c}" for c in _COMPARED)})
          IS DISTINCT FROM ({", ".join(f"n.{c}" for c in _COMPARED)})
), changed AS (
    UPDATE conversion_credits cc
    SET {", ".join(f"{c} = x.{c}" for c in _COMPARED)}, revision = x.revision
    FROM x WHERE NOT x.new AND NOT x.gone AND {_SAME_KEY} AND {_IN_RANGE}
), deleted AS (
    DELETE FROM conversion_credits cc USING x WHERE x.gone AND {_SAME_KEY} AND {_IN_RANGE}
)
INSERT INTO conversion_credits ({", ".join(CREDIT_COLUMNS)})
SELECT {", ".join(CREDIT_COLUMNS)} FROM x WHERE x.new
ON CONFLICT (conversion_id, model) DO NOTHING
"""
# The batches after `after`: the id of every `size`-th of the workspace's conversions and of
# the last one, with its rank.
RECREDIT_BOUNDS = """
SELECT id, n FROM (
    SELECT id, row_number() OVER (ORDER BY id) AS n, count(*) OVER () AS total
    FROM conversions WHERE workspace_id = %(ws)s AND id > %(after)s
) b
WHERE n %% %(size)s = 0 OR n = total
ORDER BY id
"""
# A batch's new and stored credits, their sorts and joins in memory; no JIT: its compile time
# varies by a second or more per statement and bought nothing here.
RECREDIT_SETTINGS = ("SET LOCAL work_mem = '256MB'", "SET LOCAL jit = off")


def recredit_params(
    workspace_id: int, rules: WorkspaceRules, after_id: int, upto_id: int
) -> dict[str, Any]:
    """Return the parameters of `NEW_CREDITS` and `RECREDIT` for a batch under `rules`."""
    windows = sorted(rules.windows.items())
    return {
        "ws": workspace_id, "after": after_id, "upto": upto_id, "revision": rules.revision,
        "click_us": rules.default.click_us, "delivery_us": rules.default.delivery_us,
        "w_campaign": [c for c, _ in windows], "w_click": [w.click_us for _, w in windows],
        "w_delivery": [w.delivery_us for _, w in windows], "optout": sorted(rules.optout),
    }  # fmt: skip
