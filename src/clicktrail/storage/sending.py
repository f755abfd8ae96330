"""Sending jobs in SQL: the `send_jobs` row of a campaign and its messages' send state.

Every method is one short transaction, so the send loop commits a message `sending` before the
provider sees it and commits the answer right after (services/sending/loop.py). One process holds a
job at a time (a lease with an expiry); a claim only takes messages while the job is
`running`, inside the claiming statement, so a cancel that commits first always wins.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from clicktrail.domain.errors import Conflict
from clicktrail.domain.models import Campaign, Contact, Workspace
from clicktrail.domain.segments import SegmentQuery
from clicktrail.domain.status import Status
from clicktrail.services.ports import NewMessage, OutgoingSms
from clicktrail.services.sending import (
    CANCELLED,
    INVALID_NUMBER,
    OPTED_OUT,
    RUNNING,
    DueMessage,
    JobCounts,
    JobSpec,
    Outcome,
    SendJob,
)
from clicktrail.storage import tables as t
from clicktrail.storage.campaigns import CampaignQueries
from clicktrail.storage.contacts import contact_from_row
from clicktrail.storage.messages import MessageQueries, message_row, token_rows
from clicktrail.storage.segments import member_page
from clicktrail.storage.sql import chunks, insert_ignore
from clicktrail.storage.workspaces import WorkspaceQueries

j, m, _c, _lm = t.send_jobs, t.messages, t.contacts, t.list_members
_SENT = (Status.SENT.value, Status.DELIVERED.value, Status.UNDELIVERED.value)
_QUEUED = Status.QUEUED.value

# The audience after a contact, by id: the workspace's contacts, or a list's members.
AUDIENCE = (
    sa.select(_c)
    .where(_c.c.workspace_id == sa.bindparam("ws"), _c.c.id > sa.bindparam("after"))
    .order_by(_c.c.id)
    .limit(sa.bindparam("limit"))
)
AUDIENCE_OF_LIST = (
    sa.select(_c)
    .join(_lm, _lm.c.contact_id == _c.c.id)
    .where(
        _c.c.workspace_id == sa.bindparam("ws"),
        _c.c.id > sa.bindparam("after"),
        _lm.c.list_id == sa.bindparam("list"),
    )
    .order_by(_c.c.id)
    .limit(sa.bindparam("limit"))
)
# Contacts whose numbers a send found valid under the phone rules in force.
PHONES_VALID_UNDER = (
    _c.update()
    .where(_c.c.id.in_(sa.bindparam("ids", expanding=True)))
    .values(phone_valid_under=sa.bindparam("rules"))
)
# Queued messages whose time has come, by id, with their contact's opt-out.
_DUE_COLUMNS = (
    m.c.id, m.c.public_id, m.c.to_phone, m.c.body, m.c.encoding, m.c.segments, m.c.attempts,
    m.c.first_attempt_us, _c.c.opted_out_us,
)  # fmt: skip
DUE = (
    sa.select(*_DUE_COLUMNS)
    .join(_c, _c.c.id == m.c.contact_id)
    .where(
        m.c.campaign_id == sa.bindparam("campaign"),
        m.c.status == _QUEUED,
        m.c.is_test.is_(sa.false()),
        sa.or_(m.c.next_attempt_us.is_(None), m.c.next_attempt_us <= sa.bindparam("now")),
    )
    .order_by(m.c.id)
    .limit(sa.bindparam("limit"))
)
# A claim: queued messages become `sending` (one more attempt) while the job runs.
CLAIM = (
    m.update()
    .where(
        m.c.id.in_(sa.bindparam("ids", expanding=True)),
        m.c.status == _QUEUED,
        sa.select(j.c.campaign_id)
        .where(j.c.campaign_id == sa.bindparam("campaign"), j.c.state == RUNNING)
        .exists(),
    )
    .values(
        status=Status.SENDING.value,
        attempts=m.c.attempts + 1,
        first_attempt_us=sa.func.coalesce(m.c.first_attempt_us, sa.bindparam("now")),
        status_us=sa.bindparam("now"),
    )
    .returning(m.c.id)
)
# The outcomes of a provider call, written to messages still queued, sending or unknown (one
# moved on meanwhile, by a receipt say, is left as it is). On SQLite the driver's executemany
# with a row of plain values per message (SQLAlchemy's per-row parameter processing cost as
# much as the update itself); on PostgreSQL one statement over arrays.
RECORD_SQLITE = (
    "UPDATE messages SET status = ?, provider = ?, "
    "provider_message_id = COALESCE(?, provider_message_id), error_code = ?, "
    "error_message = ?, sent_us = COALESCE(?, sent_us), failed_us = COALESCE(?, failed_us), "
    "next_attempt_us = ?, status_us = ? "
    "WHERE public_id = ? AND status IN ('queued', 'sending', 'unknown')"
)
RECORD_POSTGRES = sa.text(
    "UPDATE messages AS m SET status = v.status, provider = :provider, "
    "provider_message_id = COALESCE(v.ref, m.provider_message_id), "
    "error_code = v.err, error_message = v.msg, "
    "sent_us = COALESCE(v.sent, m.sent_us), "
    "failed_us = COALESCE(v.failed, m.failed_us), next_attempt_us = v.next, "
    "status_us = :now "
    "FROM unnest(CAST(:pids AS text[]), CAST(:statuses AS text[]), "
    "CAST(:refs AS text[]), CAST(:errs AS text[]), CAST(:msgs AS text[]), "
    "CAST(:sents AS bigint[]), CAST(:faileds AS bigint[]), "
    "CAST(:nexts AS bigint[])) "
    "AS v(pid, status, ref, err, msg, sent, failed, next) "
    "WHERE m.public_id = v.pid AND m.status IN ('queued', 'sending', 'unknown')"
)


def _job(r: Any) -> SendJob:
    return SendJob(
        r.campaign_id, r.state, r.provider, float(r.rate), r.quiet_hours, r.max_attempts,
        r.max_age_s, r.origin, r.wrapped_through, r.wrapped, r.skipped_opted_out,
        r.skipped_invalid, r.lease_owner, r.lease_until_us, r.last_error, r.created_us,
        r.updated_us, r.finished_us,
    )  # fmt: skip


def _record_row(o: Outcome, provider: str, now_us: int) -> tuple[Any, ...]:
    """Return the parameters of `RECORD_SQLITE` for outcome `o`."""
    return (
        o.status.value, provider, o.provider_message_id, o.error_code, o.error_message,
        now_us if o.status == Status.SENT else None,
        now_us if o.status == Status.FAILED else None,
        o.next_attempt_us, now_us, o.message_id,
    )  # fmt: skip


class SqlSendJobs:
    """Sending jobs on one SQLAlchemy engine (SQLite or PostgreSQL)."""

    def __init__(self, engine: sa.Engine, *, messages: MessageQueries | None = None) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name
        self._workspaces = WorkspaceQueries(engine)
        self._campaigns = CampaignQueries(engine)
        # Wrapped messages are stored through `messages` (its rows and tokens written once).
        self._messages = messages or MessageQueries(engine)

    # -- the job --------------------------------------------------------------------------------

    def get(self, campaign_id: int) -> SendJob | None:
        """Return the campaign's job, or None."""
        with self.engine.connect() as conn:
            r = conn.execute(sa.select(j).where(j.c.campaign_id == campaign_id)).first()
        return _job(r) if r else None

    def create(self, job: SendJob) -> SendJob:
        """Store a new job; return the one stored (an existing job of the campaign wins)."""
        row = {
            "campaign_id": job.campaign_id, "state": job.state, "provider": job.provider,
            "rate": job.rate, "quiet_hours": job.quiet_hours, "max_attempts": job.max_attempts,
            "max_age_s": job.max_age_s, "origin": job.origin,
            "wrapped_through": job.wrapped_through, "wrapped": job.wrapped,
            "created_us": job.created_us, "updated_us": job.updated_us,
        }  # fmt: skip
        with self.engine.begin() as conn:
            conn.execute(insert_ignore(conn, j), row)
        found = self.get(job.campaign_id)
        assert found is not None
        return found

    def update_settings(self, campaign_id: int, spec: JobSpec, now_us: int) -> None:
        """Apply the fields `spec` sets to the job (quiet hours '' clears them), in one
        transaction."""
        values: dict[str, Any] = {"updated_us": now_us}
        if spec.provider is not None:
            values["provider"] = spec.provider
        if spec.rate is not None:
            values["rate"] = spec.rate
        if spec.quiet_hours is not None:
            values["quiet_hours"] = spec.quiet_hours or None
        if spec.max_attempts is not None:
            values["max_attempts"] = spec.max_attempts
        if spec.max_age_s is not None:
            values["max_age_s"] = spec.max_age_s
        with self.engine.begin() as conn:
            conn.execute(j.update().where(j.c.campaign_id == campaign_id).values(values))
            if spec.quiet_hours is not None:
                # Messages waiting for the old quiet hours to end are due again now; the loop
                # applies the new ones. (Retries keep their backoff.)
                conn.execute(
                    m.update()
                    .where(
                        m.c.campaign_id == campaign_id,
                        m.c.status == Status.QUEUED.value,
                        m.c.attempts == 0,
                        m.c.next_attempt_us.is_not(None),
                    )
                    .values(next_attempt_us=None)
                )

    def acquire(
        self, campaign_id: int, owner: str, now_us: int, until_us: int, take_from: str | None
    ) -> bool:
        """Take the job's lease for `owner` until `until_us` when it is free, expired, already
        `owner`'s, or held by `take_from` (a holder known to be dead). Return True if taken."""
        free = sa.or_(
            j.c.lease_owner.is_(None), j.c.lease_owner == owner, j.c.lease_until_us < now_us
        )
        if take_from is not None:
            free = sa.or_(free, j.c.lease_owner == take_from)
        with self.engine.begin() as conn:
            done = conn.execute(
                j.update()
                .where(j.c.campaign_id == campaign_id, free)
                .values(lease_owner=owner, lease_until_us=until_us)
            )
        return done.rowcount == 1

    def renew(self, campaign_id: int, owner: str, until_us: int) -> bool:
        """Extend `owner`'s lease; False when another process holds the job now."""
        with self.engine.begin() as conn:
            done = conn.execute(
                j.update()
                .where(j.c.campaign_id == campaign_id, j.c.lease_owner == owner)
                .values(lease_until_us=until_us)
            )
        return done.rowcount == 1

    def release(self, campaign_id: int, owner: str) -> None:
        """Give up `owner`'s lease (another process may run the job at once)."""
        with self.engine.begin() as conn:
            conn.execute(
                j.update()
                .where(j.c.campaign_id == campaign_id, j.c.lease_owner == owner)
                .values(lease_owner=None, lease_until_us=None)
            )

    def set_state(
        self,
        campaign_id: int,
        state: str,
        now_us: int,
        *,
        expect: Sequence[str],
        last_error: str | None = None,
    ) -> bool:
        """Move the job to `state` if it is in one of `expect`; return True if it moved."""
        values: dict[str, Any] = {"state": state, "updated_us": now_us}
        if state in ("done", CANCELLED):
            values["finished_us"] = now_us
        if last_error is not None:
            values["last_error"] = last_error
        elif state == RUNNING:
            values["last_error"] = None
        with self.engine.begin() as conn:
            done = conn.execute(
                j.update()
                .where(j.c.campaign_id == campaign_id, j.c.state.in_(list(expect)))
                .values(values)
            )
        return done.rowcount == 1

    def cancel(self, campaign_id: int, now_us: int) -> int:
        """Cancel the job and every message of it still queued, in one transaction; return how
        many messages were cancelled. (A claim racing with this either commits first, and its
        messages are the provider's, or finds the job cancelled and claims nothing.)"""
        with self.engine.begin() as conn:
            conn.execute(
                j.update()
                .where(j.c.campaign_id == campaign_id)
                .values(state=CANCELLED, updated_us=now_us, finished_us=now_us)
            )
            done = conn.execute(
                m.update()
                .where(
                    m.c.campaign_id == campaign_id,
                    m.c.status == Status.QUEUED.value,
                    m.c.is_test.is_(sa.false()),
                )
                .values(
                    status=Status.CANCELLED.value,
                    status_us=now_us,
                    next_attempt_us=None,
                    error_code="cancelled",
                    error_message="the send was cancelled before this message went out",
                )
            )
        return int(done.rowcount)

    def runnable(self, now_us: int) -> list[tuple[int, int, str | None, int | None]]:
        """Return (campaign id, workspace id, lease owner, lease expiry) of running jobs."""
        cp = t.campaigns
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(j.c.campaign_id, cp.c.workspace_id, j.c.lease_owner, j.c.lease_until_us)
                .join(cp, cp.c.id == j.c.campaign_id)
                .where(j.c.state == RUNNING)
                .order_by(j.c.campaign_id)
            ).all()
        return [(r[0], r[1], r[2], r[3]) for r in rows]

    def campaign_of(self, campaign_id: int) -> tuple[Workspace, Campaign] | None:
        """Return the workspace and campaign of a campaign id."""
        cp, ws = t.campaigns, t.workspaces
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(ws.c.public_id, cp.c.public_id)
                .join(ws, ws.c.id == cp.c.workspace_id)
                .where(cp.c.id == campaign_id)
            ).first()
        if row is None:
            return None
        workspace = self._workspaces.find_workspace(row[0])
        campaign = self._campaigns.find_campaign(workspace.id, row[1]) if workspace else None
        return None if workspace is None or campaign is None else (workspace, campaign)

    # -- wrapping -------------------------------------------------------------------------------

    def audience(
        self, workspace_id: int, list_id: int | None, after_id: int, limit: int,
        segment: SegmentQuery | None = None,
    ) -> list[Contact]:  # fmt: skip
        """Return up to `limit` contacts of the audience with id > `after_id`, by id, opted-out
        ones included (`Contact.opted_out`): the job counts them. With `segment`, its members
        (a sendable segment has no opted-out member: storage/segments.py)."""
        if segment is not None:
            return member_page(self.engine, segment, after_id, limit)
        params = {"ws": workspace_id, "after": after_id, "limit": limit}
        with self.engine.connect() as conn:
            if list_id is None:
                rows = conn.execute(AUDIENCE, params).all()
            else:
                rows = conn.execute(AUDIENCE_OF_LIST, {**params, "list": list_id}).all()
        return [contact_from_row(r) for r in rows]

    def insert_wrapped(
        self,
        campaign_id: int,
        batch: Sequence[NewMessage],
        *,
        through: int,
        skipped_opted_out: int,
        skipped_invalid: int,
        now_us: int,
        phones_checked: Sequence[int] = (),
        phone_rules: str | None = None,
    ) -> None:
        """Store a wrapped batch (queued messages and tokens) and, in the same commit, that
        wrapping got through contact `through`, what it skipped, and that the numbers of the
        contacts `phones_checked` were found valid under `phone_rules`. Raises `Conflict` on a
        token collision (nothing is written; the caller draws new tokens)."""

        def advance(conn: sa.Connection) -> None:
            if phones_checked and phone_rules:
                for ids in chunks(phones_checked):
                    conn.execute(PHONES_VALID_UNDER, {"ids": list(ids), "rules": phone_rules})
            conn.execute(
                j.update()
                .where(j.c.campaign_id == campaign_id)
                .values(
                    wrapped_through=through,
                    wrapped=j.c.wrapped + len(batch),
                    skipped_opted_out=j.c.skipped_opted_out + skipped_opted_out,
                    skipped_invalid=j.c.skipped_invalid + skipped_invalid,
                    updated_us=now_us,
                )
            )

        self._messages.insert_messages(batch, also=advance)

    # -- sending --------------------------------------------------------------------------------

    def due(self, campaign_id: int, now_us: int, limit: int) -> list[DueMessage]:
        """Return up to `limit` queued messages of the campaign whose time has come, by id,
        with whether their contact has opted out since."""
        with self.engine.connect() as conn:
            rows = conn.execute(DUE, {"campaign": campaign_id, "now": now_us, "limit": limit}).all()
        return [
            DueMessage(
                r[0], OutgoingSms(r[1], r[2], r[3], r[4], r[5]), r[6], r[7], r[8] is not None
            )
            for r in rows
        ]

    def next_due(self, campaign_id: int) -> int | None:
        """Return when the campaign's next queued message is due (0: now; None: none queued)."""
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(
                    sa.func.count(), sa.func.min(sa.func.coalesce(m.c.next_attempt_us, 0))
                ).where(
                    m.c.campaign_id == campaign_id,
                    m.c.status == Status.QUEUED.value,
                    m.c.is_test.is_(sa.false()),
                )
            ).one()
        return None if not row[0] else int(row[1])

    def claim(self, campaign_id: int, ids: Sequence[int], now_us: int) -> set[int]:
        """Mark the messages `ids` `sending` (one more attempt) if still queued and the job
        still running; commit; return the ids claimed."""
        with self.engine.begin() as conn:
            rows = conn.execute(CLAIM, {"ids": list(ids), "campaign": campaign_id, "now": now_us})
            return set(rows.scalars().all())

    def defer(self, items: Sequence[tuple[int, int]]) -> None:
        """Set when queued messages are due next: (message id, µs)."""
        with self.engine.begin() as conn:
            conn.execute(
                m.update()
                .where(m.c.id == sa.bindparam("b_id"), m.c.status == Status.QUEUED.value)
                .values(next_attempt_us=sa.bindparam("b_next")),
                [{"b_id": i, "b_next": n} for i, n in items],
            )

    def record(self, provider: str, outcomes: Sequence[Outcome], now_us: int) -> None:
        """Write outcomes to messages still queued, sending or unknown, in one transaction
        (a message moved on meanwhile, e.g. by a receipt, is left as it is)."""
        if not outcomes:
            return
        sent, failed = Status.SENT, Status.FAILED
        with self.engine.begin() as conn:
            if self.dialect != "postgresql":
                raw = conn.connection.driver_connection
                assert raw is not None
                raw.executemany(RECORD_SQLITE, [_record_row(o, provider, now_us) for o in outcomes])
                return
            conn.execute(
                RECORD_POSTGRES,
                {
                    "provider": provider,
                    "now": now_us,
                    "pids": [o.message_id for o in outcomes],
                    "statuses": [o.status.value for o in outcomes],
                    "refs": [o.provider_message_id for o in outcomes],
                    "errs": [o.error_code for o in outcomes],
                    "msgs": [o.error_message for o in outcomes],
                    "sents": [now_us if o.status == sent else None for o in outcomes],
                    "faileds": [now_us if o.status == failed else None for o in outcomes],
                    "nexts": [o.next_attempt_us for o in outcomes],
                },
            )

    def in_flight(self, campaign_id: int) -> list[OutgoingSms]:
        """Return the campaign's messages left `sending` (test sends apart), by id."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(m.c.public_id, m.c.to_phone, m.c.body, m.c.encoding, m.c.segments)
                .where(
                    m.c.campaign_id == campaign_id,
                    m.c.status == Status.SENDING.value,
                    m.c.is_test.is_(sa.false()),
                )
                .order_by(m.c.id)
            ).all()
        return [OutgoingSms(r[0], r[1], r[2], r[3], r[4]) for r in rows]

    def release_unknown(self, campaign_id: int, resend: bool, now_us: int) -> int:
        """Queue the campaign's `unknown` messages again (`resend`) or take them as sent;
        return how many."""
        values: dict[str, Any] = {"status_us": now_us}
        if resend:
            values.update(status=Status.QUEUED.value, next_attempt_us=None)
        else:
            values.update(
                status=Status.SENT.value,
                sent_us=sa.func.coalesce(m.c.sent_us, now_us),
                error_message="taken as sent by an operator (was in doubt)",
            )
        with self.engine.begin() as conn:
            done = conn.execute(
                m.update()
                .where(
                    m.c.campaign_id == campaign_id,
                    m.c.status == Status.UNKNOWN.value,
                    m.c.is_test.is_(sa.false()),
                )
                .values(values)
            )
        return int(done.rowcount)

    def counts(self, campaign_id: int, now_us: int) -> JobCounts:
        """Count the campaign's messages (test sends apart) the way `JobCounts` says."""
        later = sa.and_(m.c.status == Status.QUEUED.value, m.c.next_attempt_us > now_us)
        q = (
            sa.select(
                m.c.status,
                m.c.sent_us.is_not(None).label("was_sent"),
                sa.case((later, 1), else_=0).label("later"),
                sa.case((m.c.status == Status.SKIPPED.value, m.c.error_code), else_=None).label(
                    "why"
                ),
                sa.func.count(),
                sa.func.coalesce(sa.func.sum(m.c.segments), 0),
            )
            .where(m.c.campaign_id == campaign_id, m.c.is_test.is_(sa.false()))
            .group_by(sa.text("1"), sa.text("2"), sa.text("3"), sa.text("4"))
        )
        out = JobCounts()
        with self.engine.connect() as conn:
            rows = conn.execute(q).all()
        for status, was_sent, later_, why, n, segs in rows:
            n, segs = int(n), int(segs)
            if status == Status.QUEUED.value:
                if later_:
                    out.deferred += n
                else:
                    out.queued += n
            elif status == Status.SENDING.value:
                out.sending += n
            elif status in _SENT or (status == Status.FAILED.value and was_sent):
                out.sent += n
                out.segments += segs
                if status == Status.DELIVERED.value:
                    out.delivered += n
            elif status == Status.FAILED.value:
                out.failed += n
            elif status == Status.CANCELLED.value:
                out.cancelled += n
            elif status == Status.UNKNOWN.value:
                out.unknown += n
            elif status == Status.SKIPPED.value:
                if why == INVALID_NUMBER:
                    out.skipped_invalid += n
                elif why == OPTED_OUT:
                    out.skipped_opted_out += n
        return out

    # -- test sends -----------------------------------------------------------------------------

    def insert_test_message(self, message: NewMessage) -> int:
        """Store a test message (queued, `is_test`) and its tokens; return its id.

        Raises `Conflict` on a token collision."""
        x = message
        try:
            with self.engine.begin() as conn:
                mid = conn.execute(
                    m.insert().returning(m.c.id),
                    {
                        **message_row(x), "is_test": True,
                        # Wrap-only key (migration 0010): apart from the contact's real message.
                        "client_ref": "test:" + x.public_id,
                    },
                ).scalar_one()  # fmt: skip
                if x.tokens:
                    conn.execute(t.tokens.insert(), token_rows(mid, x))
        except sa.exc.IntegrityError as exc:
            raise Conflict("token collision; retry with new tokens") from exc
        return int(mid)

    def claim_test(self, message_id: int, now_us: int) -> bool:
        """Mark a queued test message `sending` (committed before the provider sees it)."""
        with self.engine.begin() as conn:
            done = conn.execute(
                m.update()
                .where(m.c.id == message_id, m.c.status == Status.QUEUED.value)
                .values(
                    status=Status.SENDING.value,
                    attempts=m.c.attempts + 1,
                    first_attempt_us=now_us,
                    status_us=now_us,
                )
            )
        return done.rowcount == 1
