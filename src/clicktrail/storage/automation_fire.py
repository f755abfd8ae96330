"""Carrying out automation runs on SQL (`automation_runs` with the tables their actions touch).

Implements `services.automation_fire.FireStore`. Each public method is one transaction. A claim
is an UPDATE of due pending runs (``FOR UPDATE SKIP LOCKED`` on PostgreSQL; SQLite has one
writer) that gives them a lease. Firing changes the run only while it is pending and held by
the caller, in the same transaction as the action's rows and the `automation.fired` event.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from clicktrail.domain import events as ev
from clicktrail.domain.automations import CLICKED_NO_CONVERSION, DAY_US, NOT_CLICKED, rule_of
from clicktrail.domain.errors import Conflict
from clicktrail.domain.ids import new_public_id
from clicktrail.domain.report import COUNTED_VERDICTS, is_counted
from clicktrail.domain.status import Status
from clicktrail.services.automation_fire import (
    ContactFacts,
    DueRun,
    Effect,
    SegmentEffect,
    SendEffect,
    Undispatched,
    WebhookEffect,
)
from clicktrail.services.automation_runs import FIRED, PENDING
from clicktrail.services.ports import OutgoingSms
from clicktrail.storage import tables as t
from clicktrail.storage.contacts import contact_from_row
from clicktrail.storage.deliveries import DELIVERY_PREFIX
from clicktrail.storage.events import append_events
from clicktrail.storage.sql import insert_ignore, is_postgres

_r, _a, _w, _ct = t.automation_runs, t.automations, t.workspaces, t.contacts
_m, _cp, _l, _ck, _cv = t.messages, t.campaigns, t.links, t.clicks, t.conversions
RECENT_US = 7 * DAY_US  # the frequency cap's longest period
CLIENT_REF = "automation:"  # + the run's public id: a fired run's message

# Claimed runs with their rule and workspace.
DUE_ROWS = (
    sa.select(_r.c.id, _r.c.public_id, _w.c.public_id.label("workspace"), _r.c.workspace_id,
              _r.c.automation_id, _a.c.public_id.label("automation"), _a.c.name, _a.c.enabled,
              _a.c.rule, _r.c.phone, _r.c.campaign, _r.c.trigger_key, _r.c.trigger_us, _r.c.due_us)
    .join(_a, _a.c.id == _r.c.automation_id)
    .join(_w, _w.c.id == _r.c.workspace_id)
)  # fmt: skip
CONTACT = sa.select(_ct).where(
    _ct.c.workspace_id == sa.bindparam("ws"), _ct.c.phone == sa.bindparam("phone")
)
# This contact's automated messages of the last week (the frequency cap).
RECENT_SENDS = sa.select(_r.c.fired_us).where(
    _r.c.workspace_id == sa.bindparam("ws"), _r.c.phone == sa.bindparam("phone"),
    _r.c.state == FIRED, _r.c.result.like("msg\\_%", escape="\\"),
    _r.c.fired_us > sa.bindparam("since"),
)  # fmt: skip
# Clicks of a contact on a campaign since a time, with their link's number.
CLICKS_SINCE = (
    sa.select(_ck.c.verdict, _ck.c.is_click, _l.c.idx)
    .join(_l, _l.c.id == _ck.c.link_id)
    .where(_ck.c.campaign_id == sa.bindparam("cp"), _ck.c.contact_id == sa.bindparam("ct"),
           _ck.c.at_us >= sa.bindparam("since"))
)  # fmt: skip
CONVERTED_SINCE = sa.select(_cv.c.id).where(
    _cv.c.contact_id == sa.bindparam("ct"), _cv.c.occurred_us >= sa.bindparam("since")
).limit(1)  # fmt: skip
# Queued messages of recently fired runs (a sender died between the commit and the provider).
UNDISPATCHED = (
    sa.select(_m.c.id, _m.c.public_id, _m.c.campaign_id, _m.c.to_phone, _m.c.body,
              _m.c.encoding, _m.c.segments, _w.c.public_id.label("workspace"))
    .select_from(_r)
    .join(_m, _m.c.public_id == _r.c.result)
    .join(_w, _w.c.id == _r.c.workspace_id)
    .where(_r.c.state == FIRED, _r.c.due_us >= sa.bindparam("since"),
           _m.c.status == Status.QUEUED.value)
    .order_by(_m.c.id)
)  # fmt: skip


def _due(r: Any) -> DueRun:
    return DueRun(
        r.id, r.public_id, r.workspace, r.workspace_id, r.automation_id, r.automation, r.name,
        bool(r.enabled), rule_of(r.rule), r.phone, r.campaign, r.trigger_key, r.trigger_us,
        r.due_us,
    )  # fmt: skip


def _ours(run: DueRun, owner: str) -> Any:
    return sa.and_(_r.c.id == run.id, _r.c.state == PENDING, _r.c.claimed_by == owner)


class FireQueries:
    """Due automation runs on one SQLAlchemy engine (SQLite or PostgreSQL)."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def claim(self, owner: str, now_us: int, lease_until_us: int, limit: int) -> list[DueRun]:
        """Claim up to `limit` due pending runs, earliest due first, until `lease_until_us`."""
        due = (
            sa.select(_r.c.id)
            .where(_r.c.state == PENDING, _r.c.due_us <= now_us,
                   sa.or_(_r.c.claim_until_us.is_(None), _r.c.claim_until_us <= now_us))
            .order_by(_r.c.due_us)
            .limit(limit)
        )  # fmt: skip
        with self.engine.connect() as conn:  # nothing due: no write transaction (SQLite's lock)
            if conn.execute(due.limit(1)).first() is None:
                return []
        with self.engine.begin() as conn:
            if is_postgres(conn):
                due = due.with_for_update(skip_locked=True)
            ids = [
                r.id
                for r in conn.execute(
                    _r.update()
                    .where(_r.c.id.in_(due.scalar_subquery()))
                    .values(claimed_by=owner, claim_until_us=lease_until_us,
                            attempts=_r.c.attempts + 1, updated_us=now_us)
                    .returning(_r.c.id)
                )
            ]  # fmt: skip
            rows = list(conn.execute(DUE_ROWS.where(_r.c.id.in_(ids)))) if ids else []
        return sorted((_due(r) for r in rows), key=lambda d: (d.due_us, d.id))

    def contact_facts(self, run: DueRun, now_us: int) -> ContactFacts:
        """The run's contact and what its conditions look at (`FireStore.contact_facts`)."""
        ws, phone = run.workspace_id, run.phone
        with self.engine.connect() as conn:
            row = conn.execute(CONTACT, {"ws": ws, "phone": phone}).first()
            contact = None if row is None else contact_from_row(row)
            args = {"ws": ws, "phone": phone, "since": now_us - RECENT_US}
            recent = [int(x) for x in conn.execute(RECENT_SENDS, args).scalars()]
            clicked = converted = bot = False
            kind = run.rule.trigger.kind
            if contact is not None and kind == NOT_CLICKED and run.campaign is not None:
                cp = conn.execute(
                    sa.select(_cp.c.id).where(_cp.c.workspace_id == ws, _cp.c.slug == run.campaign)
                ).scalar()
                link = run.rule.trigger.link
                for r in conn.execute(
                    CLICKS_SINCE, {"cp": cp or -1, "ct": contact.id, "since": run.trigger_us}
                ):
                    # A click with no verdict yet counts: when in doubt, no follow-up.
                    if is_counted(r.verdict, r.is_click) and (link is None or r.idx + 1 == link):
                        clicked = True
            if contact is not None and kind == CLICKED_NO_CONVERSION:
                args = {"ct": contact.id, "since": run.trigger_us}
                converted = conn.execute(CONVERTED_SINCE, args).first() is not None
            if run.trigger_key.startswith("click/"):
                verdict = conn.execute(
                    sa.select(_ck.c.verdict).where(_ck.c.click_id == run.trigger_key[6:])
                ).first()
                bot = (
                    verdict is not None
                    and verdict[0] is not None
                    and (verdict[0] not in COUNTED_VERDICTS)
                )
        return ContactFacts(contact, recent, clicked, converted, bot)

    def finish(
        self, run: DueRun, owner: str, state: str, reason: str | None, now_us: int,
        due_us: int | None = None,
    ) -> bool:  # fmt: skip
        """End (or, pending with `due_us`, postpone) a run we hold; False if not ours."""
        values: dict[str, Any] = {"state": state, "reason": reason, "claimed_by": None,
                                  "claim_until_us": None, "updated_us": now_us}  # fmt: skip
        if due_us is not None:
            values["due_us"] = due_us
        with self.engine.begin() as conn:
            done = conn.execute(_r.update().where(_ours(run, owner)).values(**values)).rowcount
        return bool(done)

    def fire(
        self, run: DueRun, owner: str, effect: Effect, event: dict[str, Any], now_us: int
    ) -> int | None:
        """Fire `run` with `effect` and its event in one transaction (`FireStore.fire`)."""
        result = effect.message.public_id if isinstance(effect, SendEffect) else None
        try:
            with self.engine.begin() as conn:
                moved = conn.execute(
                    _r.update().where(_ours(run, owner))
                    .values(state=FIRED, reason=None, fired_us=now_us, result=result,
                            claimed_by=None, claim_until_us=None, updated_us=now_us)
                ).rowcount  # fmt: skip
                if not moved:
                    return None
                new = ev.event(run.workspace_id, ev.AUTOMATION_FIRED, run.public_id, now_us, event)
                append_events(conn, [new], now_us)
                if isinstance(effect, SendEffect):
                    return self._store_message(conn, run, effect, now_us)
                if isinstance(effect, WebhookEffect):
                    self._deliver(conn, run, effect, new.key, now_us)
                else:
                    self._membership(conn, effect, now_us)
                return 0
        except sa.exc.IntegrityError as exc:
            raise Conflict("token collision; retry with new tokens") from exc

    def _store_message(
        self, conn: sa.Connection, run: DueRun, effect: SendEffect, now_us: int
    ) -> int:
        x = effect.message
        links = dict(
            conn.execute(sa.select(_l.c.url, _l.c.id).where(_l.c.campaign_id == x.campaign_id)).all()
        )  # fmt: skip
        for _tok, url, _dest in x.links:
            if url not in links:  # the follow-up's own link, made once per URL
                top = conn.execute(
                    sa.select(sa.func.max(_l.c.idx)).where(_l.c.campaign_id == x.campaign_id)
                ).scalar()
                links[url] = conn.execute(
                    _l.insert().returning(_l.c.id),
                    {"campaign_id": x.campaign_id, "idx": (top if top is not None else -1) + 1,
                     "url": url, "role": "cta", "options": {}},
                ).scalar_one()  # fmt: skip
        mid = conn.execute(
            _m.insert().returning(_m.c.id),
            {"public_id": x.public_id, "campaign_id": x.campaign_id, "contact_id": x.contact_id,
             "to_phone": x.to_phone, "body": x.body, "encoding": x.encoding,
             "segments": x.segments, "status": Status.QUEUED.value, "queued_us": now_us,
             "status_us": now_us, "client_ref": CLIENT_REF + run.public_id},
        ).scalar_one()  # fmt: skip
        if x.links:
            conn.execute(
                t.tokens.insert(),
                [{"token": tok, "message_id": mid, "link_id": links[url],
                  "campaign_id": x.campaign_id, "contact_id": x.contact_id, "destination": dest}
                 for tok, url, dest in x.links],
            )  # fmt: skip
        return int(mid)

    def _deliver(
        self, conn: sa.Connection, run: DueRun, effect: WebhookEffect, key: str, now_us: int
    ) -> None:
        event_id = conn.execute(sa.select(t.events.c.id).where(t.events.c.key == key)).scalar_one()
        conn.execute(
            insert_ignore(conn, t.webhook_deliveries),
            [{"public_id": new_public_id(DELIVERY_PREFIX), "workspace_id": run.workspace_id,
              "endpoint_id": effect.endpoint_id, "event_id": event_id, "state": "pending",
              "attempts": 0, "next_attempt_us": now_us, "created_us": now_us}],
        )  # fmt: skip

    def _membership(self, conn: sa.Connection, effect: SegmentEffect, now_us: int) -> None:
        sm = t.segment_members
        if effect.add:
            conn.execute(
                insert_ignore(conn, sm),
                [{"segment_id": effect.segment_id, "contact_id": effect.contact_id,
                  "added_us": now_us}],
            )  # fmt: skip
        else:
            conn.execute(
                sm.delete().where(
                    sm.c.segment_id == effect.segment_id, sm.c.contact_id == effect.contact_id
                )
            )

    def undispatched(self, limit: int, now_us: int) -> list[Undispatched]:
        """Queued messages of runs due in the last week and fired, oldest first."""
        with self.engine.connect() as conn:
            rows = conn.execute(UNDISPATCHED.limit(limit), {"since": now_us - RECENT_US}).all()
        return [
            Undispatched(r.id, r.workspace, r.campaign_id,
                         OutgoingSms(r.public_id, r.to_phone, r.body, r.encoding, r.segments))
            for r in rows
        ]  # fmt: skip


__all__: Sequence[str] = ["FireQueries"]
