"""Attribution on SQL: settings, the revision guard, conversions to attribute, a contact's
touches, and credits (implements `services.attribution.AttributionStore`).

Each public method is one transaction. `put_credits` is the revision guard: it reads the
workspace's revision with a row lock (PostgreSQL; on SQLite its first statement is a write,
which takes the database's write lock) and writes nothing when it moved.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict
from itertools import groupby
from operator import itemgetter
from typing import Any

import sqlalchemy as sa

from clicktrail.domain.attribution import (
    CampaignCredits,
    ClickTouch,
    CreditSums,
    Delays,
    Delivery,
    SettingsOverride,
)
from clicktrail.domain.report import COUNTED_VERDICTS
from clicktrail.services.attribution import (
    ConversionFact,
    CreditRow,
    Touches,
    WorkspaceRules,
)
from clicktrail.storage import tables as t
from clicktrail.storage.recredit import (
    RECREDIT,
    RECREDIT_BOUNDS,
    RECREDIT_SETTINGS,
    recredit_params,
)
from clicktrail.storage.sql import chunks, insert_ignore, insert_tuples, is_postgres, upsert

_s, _st, _cc = t.attribution_settings, t.attribution_state, t.conversion_credits
_cv, _m, _c, _k = t.conversions, t.messages, t.clicks, t.clicks.alias("k")
OPTOUT = "optout"
LAG_US = 300 * 1_000_000  # a conversion recorded this long ago has surely committed
MICROS = 1_000_000

SETTINGS = sa.select(
    _s.c.campaign_id, _s.c.model, _s.c.click_window_us, _s.c.delivery_window_us
).where(_s.c.workspace_id == sa.bindparam("ws"))
STATE = sa.select(_st.c.revision, _st.c.attributed_revision).where(
    _st.c.workspace_id == sa.bindparam("ws")
)
LOCK_STATE = STATE.with_for_update()
SHARE_STATE = STATE.with_for_update(read=True)
BUMP = (
    _st.update()
    .where(_st.c.workspace_id == sa.bindparam("ws"))
    .values(revision=_st.c.revision + 1, updated_us=sa.bindparam("now"))
)
STALE = sa.select(_st.c.workspace_id, _st.c.revision).where(
    _st.c.revision != _st.c.attributed_revision
)
WORKSPACES_WITH_CONVERSIONS = sa.select(_cv.c.workspace_id).distinct()
OPTOUT_LINKS = (
    sa.select(t.links.c.id)
    .join(t.campaigns, t.campaigns.c.id == t.links.c.campaign_id)
    .where((t.campaigns.c.workspace_id == sa.bindparam("ws")) & (t.links.c.role == OPTOUT))
)
# A conversion with who converted: its own contact, else its click's, else its message's.
# `pending`: it names a click id that is not among the stored clicks yet (still in the inbox).
_CONVERSION = (
    sa.select(
        _cv.c.id, _cv.c.workspace_id,
        sa.func.coalesce(_cv.c.contact_id, _k.c.contact_id, _m.c.contact_id),
        _cv.c.occurred_us, (_cv.c.click_id.is_not(None) & _k.c.id.is_(None)),
    )
    .select_from(_cv)
    .outerjoin(_k, _k.c.click_id == _cv.c.click_id)
    .outerjoin(_m, _m.c.id == _cv.c.message_id)
)  # fmt: skip
CONVERSIONS_PAGE = (
    _CONVERSION.where((_cv.c.workspace_id == sa.bindparam("ws")) & (_cv.c.id > sa.bindparam("after")))
    .order_by(_cv.c.id)
    .limit(sa.bindparam("limit"))
)  # fmt: skip
_HAS_CREDITS = sa.exists().where(_cc.c.conversion_id == _cv.c.id)
NEW_CONVERSIONS = (
    _CONVERSION.where((_cv.c.id > sa.bindparam("floor")) & ~_HAS_CREDITS)
    .order_by(_cv.c.id)
    .limit(sa.bindparam("limit"))
)
# The newest conversion recorded long enough ago (`LAG_US`) that none before it can still be
# committing: the floor of the search for new ones can move up to it.
SURELY_COMMITTED = sa.select(sa.func.max(_cv.c.id)).where(
    (_cv.c.id > sa.bindparam("floor")) & (_cv.c.received_us < sa.bindparam("before"))
)
UNSETTLED = _CONVERSION.where(
    _cv.c.id.in_(
        sa.select(_cc.c.conversion_id)
        .where(~_cc.c.settled & (_cc.c.conversion_id > sa.bindparam("after")))
        .distinct()
        .order_by(_cc.c.conversion_id)
        .limit(sa.bindparam("limit"))
        .scalar_subquery()
    )
).order_by(_cv.c.id)
# A contact's delivered messages and its GETs that may count: counted verdicts or none yet,
# and any that is not final (it may still become one). Test sends are no touches. Raw SQL run
# on the driver's cursor: re-attribution reads millions of these rows, and SQLAlchemy's row
# processing would be most of its time. `{contacts}`: ``= ANY(%s)`` (an array) on PostgreSQL,
# an IN list on SQLite.
_COUNTED = ", ".join(f"'{v}'" for v in COUNTED_VERDICTS)  # our own constants
TOUCHES = f"""
SELECT m.contact_id, m.id, m.campaign_id, m.delivered_us, k.id, k.click_id, k.link_id,
       k.at_us, k.verdict, k.final
FROM messages m
LEFT JOIN clicks k ON k.message_id = m.id AND k.is_click
     AND (k.verdict IS NULL OR k.verdict IN ({_COUNTED}) OR NOT k.final)
WHERE m.contact_id {{contacts}} AND NOT m.is_test
  AND (m.delivered_us IS NOT NULL OR k.id IS NOT NULL)
"""
DELETE_CREDITS = "DELETE FROM conversion_credits WHERE conversion_id {ids}"

CREDIT_COLUMNS = CreditRow._fields
FINISH = (
    _st.update()
    .where(_st.c.workspace_id == sa.bindparam("ws"))
    .values(attributed_revision=sa.bindparam("rev"), updated_us=sa.bindparam("now"))
)
# The conversions report sums a campaign's credits under one model in SQL, over the covering
# index `ix_conversion_credits_report` (campaign, model, kind, link, delay, contact, credit,
# settled, conversion; migration 0023). Values are read from
# `conversions` by primary key at report time (a `replace` duplicate changes them there).
_OF_CAMPAIGN = (_cc.c.campaign_id == sa.bindparam("campaign")) & (
    _cc.c.model == sa.bindparam("model")
)
_VALUED = _cv.c.value_micros.is_not(None)
# Per (link, kind, currency): credit, credited value (micros), credit of conversions
# with a value, how many had one, how many are not settled.
CREDIT_SUMS = (
    sa.select(
        _cc.c.link_id, _cc.c.kind, _cv.c.currency, sa.func.sum(_cc.c.credit),
        sa.func.sum(_cv.c.value_micros * _cc.c.credit),
        sa.func.sum(sa.case((_VALUED, _cc.c.credit), else_=0.0)),
        sa.func.count(_cv.c.value_micros),
        sa.func.sum(sa.case((_cc.c.settled, 0), else_=1)),
    )
    .join(_cv, _cv.c.id == _cc.c.conversion_id)
    .where(_OF_CAMPAIGN)
    .group_by(_cc.c.link_id, _cc.c.kind, _cv.c.currency)
)  # fmt: skip
# Who was credited and the delays of click credits, in the index's order (kind, link, delay):
# two narrow columns per credit, read on the driver's cursor. Distinct contacts and the delays'
# percentiles are no sums: counted from this in Python they cost a third of what COUNT(DISTINCT)
# and window functions do in SQL (bench/RESULTS.md, "Conversions report").
CREDITED_CONTACTS = """
SELECT kind, link_id, contact_id, delay_us, credit > 0 FROM conversion_credits
WHERE campaign_id = {p} AND model = {p} ORDER BY kind, link_id, delay_us
"""


def _in_list(conn: sa.Connection, sql: str, name: str, ids: Sequence[int]) -> list[tuple[str, Any]]:
    """Return `sql` with its `{name}` condition and parameters for `ids`: one ``= ANY(%s)``
    statement on PostgreSQL, IN lists of at most `CHUNK` on SQLite."""
    if not ids:
        return []
    if is_postgres(conn):
        return [(sql.replace("{" + name + "}", "= ANY(%s)"), (list(ids),))]
    return [
        (sql.replace("{" + name + "}", f"IN ({', '.join('?' * len(part))})"), tuple(part))
        for part in chunks(ids)
    ]


def _fact(row: Sequence[Any]) -> ConversionFact:
    cid, ws, contact, at_us, pending = row
    return ConversionFact(int(cid), int(ws), contact, int(at_us), bool(pending))


class AttributionQueries:
    """Attribution settings and credits on one SQLAlchemy engine (SQLite or PostgreSQL)."""

    def __init__(self, engine: sa.Engine, *, in_database: bool | None = None) -> None:
        self.engine = engine
        self._floor = 0  # every conversion up to this id has credits (NEW_CONVERSIONS)
        # Re-attribution in the database (`recredit`): PostgreSQL's unless told otherwise (the
        # comparison test and the bench run the Python path there too).
        self._in_database = is_postgres(engine) if in_database is None else in_database
        if self._in_database and not is_postgres(engine):
            raise ValueError("re-attribution in the database needs PostgreSQL")

    def in_database(self) -> bool:
        """Whether `recredit` is available: the database picks the winning touches."""
        return self._in_database

    def attribution_overrides(
        self, workspace_id: int
    ) -> tuple[SettingsOverride | None, dict[int, SettingsOverride]]:
        """Return the workspace's stored settings and those of its campaigns, by id."""
        with self.engine.connect() as conn:
            rows = conn.execute(SETTINGS, {"ws": workspace_id}).all()
        ws = None
        campaigns = {}
        for cid, model, click_us, delivery_us in rows:
            over = SettingsOverride(model, click_us, delivery_us)
            if cid == 0:
                ws = over
            else:
                campaigns[cid] = over
        return ws, campaigns

    def put_attribution_settings(
        self, workspace_id: int, campaign_id: int, over: SettingsOverride, *, bump: bool,
        now_us: int,
    ) -> int:  # fmt: skip
        """Store `over` for the workspace (`campaign_id` 0) or a campaign; with `bump`, raise
        the workspace's revision in the same transaction. Return the revision."""
        values = {**asdict(over), "updated_us": now_us}
        with self.engine.begin() as conn:
            self._ensure_state(conn, workspace_id, now_us)
            conn.execute(
                upsert(conn, _s, {"workspace_id": workspace_id, "campaign_id": campaign_id,
                                  **values}, ["workspace_id", "campaign_id"], values)
            )  # fmt: skip
            if bump:
                conn.execute(BUMP, {"ws": workspace_id, "now": now_us})
            return int(conn.execute(STATE, {"ws": workspace_id}).one()[0])

    @staticmethod
    def _ensure_state(conn: sa.Connection, workspace_id: int, now_us: int) -> None:
        conn.execute(
            insert_ignore(conn, _st).values(
                workspace_id=workspace_id, revision=0, attributed_revision=0, updated_us=now_us
            )
        )

    def attribution_revisions(self, workspace_id: int) -> tuple[int, int]:
        """Return (revision, attributed_revision) of a workspace ((0, 0) if never set)."""
        with self.engine.connect() as conn:
            row = conn.execute(STATE, {"ws": workspace_id}).first()
        return (0, 0) if row is None else (int(row[0]), int(row[1]))

    def bump_revisions(self, workspace_ids: Iterable[int] | None, now_us: int) -> None:
        """Raise the revision of these workspaces (None: every workspace with conversions)."""
        with self.engine.begin() as conn:
            ids = (
                list(conn.execute(WORKSPACES_WITH_CONVERSIONS).scalars())
                if workspace_ids is None
                else list(workspace_ids)
            )
            for ws in ids:
                self._ensure_state(conn, ws, now_us)
                conn.execute(BUMP, {"ws": ws, "now": now_us})

    def stale_workspaces(self) -> list[tuple[int, int]]:
        """Return (workspace id, revision) of workspaces whose revision is not attributed."""
        with self.engine.connect() as conn:
            return [(int(a), int(b)) for a, b in conn.execute(STALE)]

    def conversions_page(
        self, workspace_id: int, after_id: int, limit: int
    ) -> list[ConversionFact]:
        """Return up to `limit` of the workspace's conversions after id `after_id`, by id."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                CONVERSIONS_PAGE, {"ws": workspace_id, "after": after_id, "limit": limit}
            )
            return [_fact(r) for r in rows]

    def new_conversions(self, limit: int, now_us: int) -> list[ConversionFact]:
        """Return up to `limit` conversions without credits, by id. The search starts above
        a floor that only moves past conversions recorded `LAG_US` ago (so one still
        committing when a later one was seen is found later)."""
        with self.engine.connect() as conn:
            rows = conn.execute(NEW_CONVERSIONS, {"floor": self._floor, "limit": limit}).all()
            if len(rows) < limit:
                old = conn.execute(
                    SURELY_COMMITTED, {"floor": self._floor, "before": now_us - LAG_US}
                ).scalar()
                if old is not None:
                    first_new = rows[0][0] - 1 if rows else old
                    self._floor = max(self._floor, min(int(old), first_new))
        return [_fact(r) for r in rows]

    def unsettled_conversions(self, after_id: int, limit: int) -> list[ConversionFact]:
        """Return up to `limit` conversions after `after_id` with credits not settled, by id."""
        with self.engine.connect() as conn:
            rows = conn.execute(UNSETTLED, {"after": after_id, "limit": limit})
            return [_fact(r) for r in rows]

    def optout_links(self, workspace_id: int) -> set[int]:
        """Return the ids of the workspace's opt-out links."""
        with self.engine.connect() as conn:
            return set(conn.execute(OPTOUT_LINKS, {"ws": workspace_id}).scalars())

    def touches(self, contact_ids: Sequence[int]) -> dict[int, Touches]:
        """Return the touches of these contacts (see `TOUCHES`)."""
        out: dict[int, Touches] = {}
        seen: set[int] = set()
        with self.engine.connect() as conn:
            for sql, params in _in_list(conn, TOUCHES, "contacts", contact_ids):
                raw = conn.connection.driver_connection
                assert raw is not None
                cur = raw.cursor()
                cur.execute(sql, params)
                for (
                    contact,
                    mid,
                    cid,
                    delivered,
                    kid,
                    click_id,
                    lid,
                    at,
                    verdict,
                    final,
                ) in cur.fetchall():
                    touches = out.get(contact)
                    if touches is None:
                        touches = out[contact] = Touches([], [])
                    if delivered is not None and mid not in seen:
                        seen.add(mid)
                        touches.deliveries.append(Delivery(mid, cid, delivered))
                    if kid is not None:
                        touches.clicks.append(
                            ClickTouch(kid, click_id, mid, cid, lid, at, True, verdict,
                                       bool(final))
                        )  # fmt: skip
                cur.close()
        return out

    def put_credits(
        self, workspace_id: int, revision: int, conversion_ids: Sequence[int],
        rows: Sequence[CreditRow], *, finished: bool = False, now_us: int = 0,
    ) -> bool:  # fmt: skip
        """Replace the credits of `conversion_ids` by `rows` if the workspace's revision is
        still `revision`, and with `finished` mark that revision attributed. Return False
        (nothing written) when the revision moved."""
        with self.engine.begin() as conn:
            self._ensure_state(conn, workspace_id, now_us)
            current = conn.execute(LOCK_STATE, {"ws": workspace_id}).one()[0]
            if current != revision:
                return False
            for sql, params in _in_list(conn, DELETE_CREDITS, "ids", conversion_ids):
                conn.exec_driver_sql(sql, params)
            if rows:
                insert_tuples(conn, _cc, CREDIT_COLUMNS, rows)
            if finished:
                conn.execute(FINISH, {"ws": workspace_id, "rev": revision, "now": now_us})
        return True

    def recredit_bounds(self, workspace_id: int, after_id: int, size: int) -> list[tuple[int, int]]:
        """Return the batches of the workspace's conversions after `after_id`, `size` each:
        the last id of each and its size."""
        with self.engine.connect() as conn:
            raw = conn.connection.driver_connection
            assert raw is not None
            with raw.cursor() as cur:
                cur.execute(RECREDIT_BOUNDS, {"ws": workspace_id, "after": after_id, "size": size})
                rows = cur.fetchall()
        bounds, before = [], 0
        for last_id, rank in rows:
            bounds.append((int(last_id), int(rank) - before))
            before = int(rank)
        return bounds

    def recredit(
        self, workspace_id: int, rules: WorkspaceRules, after_id: int, upto_id: int, now_us: int
    ) -> bool:
        """Credit again the workspace's conversions with ids in (`after_id`, `upto_id`] as
        `RECREDIT` picks them under `rules` (writing only the credits that change), if the
        workspace's revision is still `rules.revision`. Return False (nothing written) when it
        moved. The revision is read with a share lock: batches of one re-attribution run side
        by side, and a settings change (which updates the row) or a `put_credits` (which locks
        it) waits for them, or they see its new revision."""
        params = recredit_params(workspace_id, rules, after_id, upto_id)
        with self.engine.begin() as conn:
            self._ensure_state(conn, workspace_id, now_us)
            if conn.execute(SHARE_STATE, {"ws": workspace_id}).one()[0] != rules.revision:
                return False
            raw = conn.connection.driver_connection
            assert raw is not None
            with raw.cursor() as cur:
                for setting in RECREDIT_SETTINGS:
                    cur.execute(setting)
                cur.execute(RECREDIT, params)
        return True

    def campaign_credits(self, campaign_id: int, model: str) -> CampaignCredits:
        """Return the campaign's credits under `model`, summed: credit, revenue and the
        unsettled in SQL (`CREDIT_SUMS`), contacts and delays from `CREDITED_CONTACTS`."""
        key = {"campaign": campaign_id, "model": model}
        total = _Group()
        links: dict[int, _Group] = {}
        unsettled = 0
        with self.engine.connect() as conn:
            for row in conn.execute(CREDIT_SUMS, key):
                link, kind, currency, credit, value, valued_credit, valued, not_settled = row
                unsettled += int(not_settled)
                groups = [total] if link is None else [total, links.setdefault(link, _Group())]
                for g in groups:
                    g.add(kind, currency, float(credit), value, valued_credit, valued)
            sql = CREDITED_CONTACTS.format(p="%s" if is_postgres(conn) else "?")
            raw = conn.connection.driver_connection
            assert raw is not None
            cur = raw.cursor()
            try:
                cur.execute(sql, (campaign_id, model))
                rows = cur.fetchall()
            finally:
                cur.close()
        contacts: set[int] = set()
        click_contacts: set[int] = set()
        delays: list[int] = []
        for (kind, link), grouped in groupby(rows, key=itemgetter(0, 1)):
            part = list(grouped)
            credited = {r[2] for r in part if r[4]}
            contacts |= credited
            of_link = None
            if link is not None:
                of_link = links.get(link) or links.setdefault(link, _Group())
                of_link.contacts |= credited
            if kind == "click":
                click_contacts |= credited
                ds = [r[3] for r in part]
                delays += ds
                if of_link is not None:
                    of_link.click_contacts |= credited
                    of_link.delays += ds  # one run per link: ascending
        total.contacts, total.click_contacts = contacts, click_contacts
        total.delays = sorted(delays)  # ascending runs, one per link: a merge
        return CampaignCredits(total.sums(), {lid: g.sums() for lid, g in links.items()}, unsettled)


class _Group:
    """A campaign's or a link's credit sums as the queries of `campaign_credits` fill them."""

    def __init__(self) -> None:
        self.credit = 0.0
        self.click_credit = 0.0
        self.revenue: dict[str, tuple[float, float]] = {}  # currency: (micros, credit)
        self.contacts: set[int] = set()  # credited (credit > 0), and for clicks
        self.click_contacts: set[int] = set()
        self.delays: list[int] = []  # of click credits, ascending

    def add(
        self, kind: str, currency: str | None, credit: float, value: float | None,
        valued_credit: float | None, valued: int,
    ) -> None:  # fmt: skip
        self.credit += credit
        if kind == "click":
            self.click_credit += credit
        if currency is not None and valued:
            rev, of = self.revenue.get(currency, (0.0, 0.0))
            self.revenue[currency] = (rev + float(value or 0), of + float(valued_credit or 0))

    def sums(self) -> CreditSums:
        return CreditSums(
            self.credit,
            self.click_credit,
            len(self.contacts),
            len(self.click_contacts),
            {cur: (micros / MICROS, credit) for cur, (micros, credit) in self.revenue.items()},
            Delays.of_ranks(len(self.delays), self.delays),
        )
