"""Sending jobs through the service, on SQLite and PostgreSQL, with scripted providers and a
fake clock: retries and backoff, permanent failures, rate, skips, pause/resume/cancel, quiet
hours, leases and the in-doubt rule."""

from __future__ import annotations

import itertools
import os
import socket
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from sendkit import FakeTime, ScriptedProvider, sending_for

from clicktrail.domain.errors import Conflict, InvalidInput
from clicktrail.domain.models import Campaign, ContactInput, Workspace
from clicktrail.domain.status import Status
from clicktrail.services.ports import OutgoingSms, SendResult
from clicktrail.services.sending import JobSpec, Outcome, Sending
from clicktrail.sms.outbox import OutboxProvider
from clicktrail.storage import tables as t
from factories import NOW_US, Repos, make_campaign, make_contacts, make_domain, make_workspace


def world(store: Repos, n: int = 10) -> tuple[Workspace, Campaign]:
    ws = make_workspace(store)
    make_domain(store, ws)
    make_contacts(store, ws, n)
    return ws, make_campaign(store, ws)


def statuses(store: Repos, cp: Campaign) -> Counter[str]:
    with store.engine.connect() as conn:
        rows = conn.execute(
            sa.select(t.messages.c.status).where(
                t.messages.c.campaign_id == cp.id, t.messages.c.is_test.is_(False)
            )
        ).scalars()
        return Counter(rows)


def message_row(store: Repos, to: str) -> sa.Row[tuple[object, ...]]:
    with store.engine.connect() as conn:
        return conn.execute(sa.select(t.messages).where(t.messages.c.to_phone == to)).one()


def test_a_send_is_a_job_that_sends_each_recipient_once(store: Repos, tmp_path: Path) -> None:
    ws, cp = world(store, 25)
    outbox = OutboxProvider(tmp_path / "outbox.jsonl")
    sending = sending_for(store, outbox)
    summary = sending.send(ws, cp, outbox, batch_size=7)
    assert (summary.created, summary.sent, summary.failed, summary.state) == (25, 25, 0, "done")
    lines = (tmp_path / "outbox.jsonl").read_text().splitlines()
    assert len(lines) == 25 and len({line.split('"to": ')[1][:14] for line in lines}) == 25
    st = sending.status(cp)
    assert (st.state, st.created, st.counts.sent, st.counts.queued, st.running) == (
        "done", 25, 25, 0, False,
    )  # fmt: skip
    assert st.rate == 0.0  # the outbox declares no limit
    assert store.campaigns.find_campaign(ws.id, cp.slug).status == "sent"  # type: ignore[union-attr]
    with pytest.raises(Conflict, match="already been sent"):
        sending.send(ws, cp, outbox)


def test_bad_job_settings_name_the_field(store: Repos) -> None:
    ws, cp = world(store, 1)
    sending = sending_for(store, ScriptedProvider())
    for spec, field in [
        (JobSpec(rate=-1), "rate"), (JobSpec(quiet_hours="9pm-8am"), "quiet_hours"),
        (JobSpec(max_attempts=0), "max_attempts"), (JobSpec(max_age_s=0), "max_age"),
    ]:  # fmt: skip
        with pytest.raises(InvalidInput) as exc:
            sending.send(ws, cp, spec=spec)
        assert exc.value.field == field
    assert sending.jobs.get(cp.id) is None  # nothing half-written
    assert statuses(store, cp) == Counter()


def test_opted_out_and_invalid_recipients_are_skipped_and_counted(store: Repos) -> None:
    ws, cp = world(store, 6)
    # An invalid number (stored before validation got stricter, say) and an opted-out contact.
    store.contacts.upsert_contacts(
        ws.id, [ContactInput("+15555550100", "bad", None, {})], None, NOW_US
    )
    with store.engine.begin() as conn:
        conn.execute(
            t.contacts.update().where(t.contacts.c.phone == "+14155550001").values(opted_out_us=1)
        )
    opted_later = "+14155550004"

    def opt_out_late(batch: object) -> None:
        # A contact opts out after wrapping, before their message is due.
        with store.engine.begin() as conn:
            conn.execute(
                t.contacts.update().where(t.contacts.c.phone == opted_later).values(opted_out_us=2)
            )

    provider = ScriptedProvider(before_send=opt_out_late)
    sending = sending_for(store, provider, rate=0)
    summary = sending.send(ws, cp, batch_size=1)
    handed = {to for _, to, _, _ in provider.handed}
    assert "+14155550001" not in handed and "+15555550100" not in handed
    assert opted_later not in handed
    assert (summary.created, summary.sent) == (5, 4)
    assert (summary.skipped_opted_out, summary.skipped_invalid) == (2, 1)
    st = sending.status(cp)
    c = st.counts
    assert (c.sent, c.skipped_opted_out, c.skipped_invalid, c.queued) == (4, 2, 1, 0)
    assert st.state == "done"
    row = message_row(store, opted_later)
    assert (row.status, row.error_code) == ("skipped", "opted_out")


def test_transient_refusals_back_off_then_fail_permanent_ones_fail_at_once(
    store: Repos,
) -> None:
    ws, cp = world(store, 3)
    a, b, c = "+14155550000", "+14155550001", "+14155550002"

    def answer(m: OutgoingSms, attempt: int) -> SendResult:
        if m.to == a and attempt <= 2:  # 429 with Retry-After: 30, twice
            return SendResult(m.message_id, Status.QUEUED, error_code="429",
                              error_message="Too Many Requests", retry_after=30)  # fmt: skip
        if m.to == b:  # 503 every time
            return SendResult(m.message_id, Status.QUEUED, error_code="http_503",
                              error_message="Service Unavailable")  # fmt: skip
        if m.to == c:
            return SendResult(m.message_id, Status.FAILED, error_code="21211",
                              error_message="The 'To' number is not a valid phone number.")  # fmt: skip
        return SendResult(m.message_id, Status.SENT, "SM" + m.message_id)

    fake = FakeTime()
    provider = ScriptedProvider(answer, clock=fake.clock)
    sending = sending_for(store, provider, fake, rate=0, max_attempts=4, backoff_s=2.0)
    summary = sending.send(ws, cp)
    assert summary.state == "done"
    times = {to: [at for _, x, at, _ in provider.handed if x == to] for to in (a, b, c)}
    # a: refused twice with Retry-After 30 s (longer than the backoff), then sent.
    assert len(times[a]) == 3
    assert times[a][1] - times[a][0] >= 30_000_000 and times[a][2] - times[a][1] >= 30_000_000
    ra = message_row(store, a)
    assert (ra.status, ra.attempts, ra.provider_message_id) == ("sent", 3, "SM" + ra.public_id)
    # A Retry-After holds the whole sender: nothing at all went out during a's 30 s.
    everything = [at for _, _, at, _ in provider.handed]
    for held_from in times[a][:2]:
        assert not [x for x in everything if held_from < x < held_from + 30_000_000]
    # b: four attempts, each after its exponential backoff at least (jitter 0.5: 1.5 s, 3 s,
    # 6 s; the first two also waited out a's Retry-After), then failed.
    gaps = [y - x for x, y in zip(times[b], times[b][1:], strict=False)]
    assert len(times[b]) == 4
    assert [round(g / 1e6, 1) for g in gaps] == [30.0, 30.0, 6.0]
    rb = message_row(store, b)
    assert (rb.status, rb.attempts, rb.error_code) == ("failed", 4, "http_503")
    assert rb.error_message == "gave up after 4 attempt(s): Service Unavailable"
    # c: permanent: failed at the first answer, the provider's code and words kept.
    rc = message_row(store, c)
    assert (rc.status, rc.attempts, rc.error_code) == ("failed", 1, "21211")
    assert "not a valid phone number" in rc.error_message
    assert len(times[c]) == 1
    st = sending.status(cp)
    assert (st.counts.sent, st.counts.failed) == (1, 2)


def test_backoff_doubles_with_jitter_between_attempts(store: Repos) -> None:
    ws, cp = world(store, 1)
    fake = FakeTime()

    def answer(m: OutgoingSms, attempt: int) -> SendResult:
        if attempt < 5:
            return SendResult(m.message_id, Status.QUEUED, error_code="http_500")
        return SendResult(m.message_id, Status.SENT, "ok")

    provider = ScriptedProvider(answer, clock=fake.clock)
    sending_for(store, provider, fake, rate=0, backoff_s=2.0).send(ws, cp)
    times = [at for _, _, at, _ in provider.handed]
    gaps = [round((y - x) / 1e6, 1) for x, y in itertools.pairwise(times)]
    assert gaps == [1.5, 3.0, 6.0, 12.0]  # 2 × 2^(n-1), half fixed, half × jitter 0.5
    assert message_row(store, "+14155550000").status == "sent"


def test_a_message_refused_for_longer_than_max_age_fails(store: Repos) -> None:
    ws, cp = world(store, 1)
    fake = FakeTime()

    def answer(m: OutgoingSms, _attempt: int) -> SendResult:
        return SendResult(m.message_id, Status.QUEUED, error_code="429", retry_after=40)

    provider = ScriptedProvider(answer, clock=fake.clock)
    sending = sending_for(store, provider, fake, rate=0, max_attempts=50)
    sending.send(ws, cp, spec=JobSpec(max_age_s=100))
    row = message_row(store, "+14155550000")
    assert row.status == "failed" and row.attempts <= 4
    assert row.error_code in ("429", "expired")


def test_the_rate_limit_spaces_hand_overs(store: Repos) -> None:
    ws, cp = world(store, 20)
    fake = FakeTime()
    provider = ScriptedProvider(clock=fake.clock)
    sending = sending_for(store, provider, fake)
    sending.send(ws, cp, spec=JobSpec(rate=5))
    times = sorted(at for _, _, at, _ in provider.handed)
    assert len(times) == 20
    # A burst of 5, then 5 per second: 15 more take 3 s.
    assert times[-1] - times[0] >= 2_900_000
    for start in times:
        assert sum(1 for x in times if start <= x < start + 1_000_000) <= 10


def test_provider_exceptions_retry_when_resending_is_safe(store: Repos) -> None:
    ws, cp = world(store, 4)
    fake = FakeTime()
    provider = ScriptedProvider(fail_batches=2, reconcile_complete=True, clock=fake.clock)
    sending = sending_for(store, provider, fake, rate=0)
    summary = sending.send(ws, cp, batch_size=2)
    assert summary.state == "done"
    assert provider.deliveries() == {f"+1415555{i:04d}": 1 for i in range(4)}
    assert statuses(store, cp) == Counter(sent=4)


def test_provider_exceptions_hold_messages_when_resending_is_not_safe(store: Repos) -> None:
    ws, cp = world(store, 4)
    provider = ScriptedProvider(fail_batches=1)  # can neither reconcile nor dedupe
    sending = sending_for(store, provider, FakeTime(), rate=0)
    summary = sending.send(ws, cp, batch_size=2)
    assert (summary.state, summary.unknown, summary.sent) == ("held", 2, 2)
    st = sending.status(cp)
    assert (st.state, st.counts.unknown, st.counts.sent) == ("held", 2, 2)
    assert store.campaigns.find_campaign(ws.id, cp.slug).status == "sending"  # type: ignore[union-attr]
    held = [m for m, _ in Counter(provider.calls[0]).items()]
    # Not sent again by a new run: they stay held.
    again = sending.run(ws, cp)
    assert again.state == "held"
    assert all(len([1 for c in provider.calls for x in c if x == m]) == 1 for m in held)
    # The operator decides: take them as sent.
    assert sending.release(cp, resend=False) == 2
    st = sending.status(cp)
    assert (st.state, st.counts.unknown, st.counts.sent) == ("done", 0, 4)


def test_released_messages_can_be_resent(store: Repos) -> None:
    ws, cp = world(store, 2)
    provider = ScriptedProvider(fail_batches=1)
    sending = sending_for(store, provider, FakeTime(), rate=0)
    assert sending.send(ws, cp, batch_size=2).state == "held"
    assert sending.release(cp, resend=True) == 2
    assert sending.status(cp).state == "running"
    assert sending.run(ws, cp).state == "done"
    assert statuses(store, cp) == Counter(sent=2)


def test_pause_stops_between_batches_and_resume_finishes(store: Repos) -> None:
    ws, cp = world(store, 10)
    calls = 0
    sending: Sending

    def pause_at_third(_batch: object) -> None:
        nonlocal calls
        calls += 1
        if calls == 3:
            sending.pause(cp)

    provider = ScriptedProvider(before_send=pause_at_third)
    sending = sending_for(store, provider, rate=0)
    summary = sending.send(ws, cp, batch_size=2)
    assert (summary.state, summary.sent) == ("paused", 6)  # the batch in hand completes
    st = sending.status(cp)
    assert (st.state, st.counts.sent, st.counts.queued, st.running) == ("paused", 6, 4, False)
    with pytest.raises(Conflict, match="paused"):
        sending.send(ws, cp)
    with pytest.raises(Conflict, match="cannot pause"):
        sending.pause(cp)
    sending.resume(cp)
    assert sending.run(ws, cp).state == "done"
    assert provider.deliveries() == {f"+1415555{i:04d}": 1 for i in range(10)}


def test_cancel_leaves_unsent_messages_cancelled_for_good(store: Repos) -> None:
    ws, cp = world(store, 10)
    calls = 0
    sending: Sending

    def cancel_at_second(_batch: object) -> None:
        nonlocal calls
        calls += 1
        if calls == 2:
            sending.cancel(cp)

    provider = ScriptedProvider(before_send=cancel_at_second)
    sending = sending_for(store, provider, rate=0)
    summary = sending.send(ws, cp, batch_size=2)
    assert (summary.state, summary.sent) == ("cancelled", 4)
    assert statuses(store, cp) == Counter(sent=4, cancelled=6)
    st = sending.status(cp)
    assert (st.state, st.counts.sent, st.counts.cancelled, st.counts.queued) == (
        "cancelled", 4, 6, 0,
    )  # fmt: skip
    assert store.campaigns.find_campaign(ws.id, cp.slug).status == "cancelled"  # type: ignore[union-attr]
    for attempt in (lambda: sending.send(ws, cp), lambda: sending.run(ws, cp)):
        with pytest.raises(Conflict, match="cancelled"):
            attempt()
    with pytest.raises(Conflict):
        sending.resume(cp)
    assert len(provider.handed) == 4  # the cancelled six never reached the provider
    report = store.reports.campaign_report(cp)
    assert (report.sent, report.delivered, report.ctr) == (4, 0, None)


def test_quiet_hours_defer_to_the_recipients_morning(store: Repos) -> None:
    ws = make_workspace(store)
    make_domain(store, ws)
    ny = [f"+1212555{i:04d}" for i in range(3)]  # New York
    la = [f"+1415555{i:04d}" for i in range(3)]  # Los Angeles
    store.contacts.upsert_contacts(
        ws.id, [ContactInput(p, None, None, {}) for p in ny + la], None, 0
    )
    cp = make_campaign(store, ws)
    # 2026-03-02 03:00 UTC: 22:00 in New York (quiet), 19:00 in Los Angeles (allowed).
    start = int(datetime(2026, 3, 2, 3, 0, tzinfo=UTC).timestamp() * 1e6)
    fake = FakeTime(start)
    seen: list[int] = []
    sending: Sending

    def watch(_batch: object) -> None:
        seen.append(sending.status(cp).counts.deferred)

    provider = ScriptedProvider(clock=fake.clock, before_send=watch)
    sending = sending_for(store, provider, fake, rate=0)
    summary = sending.send(ws, cp, spec=JobSpec(quiet_hours="21:00-08:00"))
    assert summary.state == "done" and summary.sent == 6
    when = {to: at for _, to, at, _ in provider.handed}
    for p in la:
        assert when[p] == start
    opens = int(datetime(2026, 3, 2, 13, 0, tzinfo=UTC).timestamp() * 1e6)  # 08:00 EST
    for p in ny:
        assert opens <= when[p] < opens + 2_000_000
    assert seen[0] == 3  # New York waited while Los Angeles went
    assert sending.status(cp).quiet_hours == "21:00-08:00"


def test_quiet_hours_change_on_a_running_job(store: Repos) -> None:
    ws, cp = world(store, 1)
    sending = sending_for(store, ScriptedProvider())
    sending.open_job(ws, cp, JobSpec(quiet_hours="21:00-08:00"), origin="cli")
    sending.open_job(ws, cp, JobSpec(quiet_hours="", rate=3), origin="cli")
    job = sending.jobs.get(cp.id)
    assert job is not None and (job.quiet_hours, job.rate) == (None, 3.0)


def test_new_quiet_hours_release_messages_waiting_for_the_old_ones(store: Repos) -> None:
    ws, cp = world(store, 2)
    sending = sending_for(store, ScriptedProvider())
    sending.open_job(ws, cp, JobSpec(quiet_hours="21:00-08:00"), origin="cli")
    polls = iter(range(100))
    sending.run(ws, cp, should_stop=lambda: next(polls) >= 2)  # wrap only
    sending.resume(cp)
    later = NOW_US * 2
    (waiting, retrying) = sending.jobs.due(cp.id, later, 2)
    sending.jobs.defer([(waiting.id, later)])
    assert sending.jobs.claim(cp.id, [retrying.id], NOW_US) == {retrying.id}
    sending.jobs.record(
        "x", [Outcome(retrying.sms.message_id, Status.QUEUED, next_attempt_us=later)], NOW_US
    )
    assert sending.jobs.next_due(cp.id) == later
    sending.open_job(ws, cp, JobSpec(quiet_hours="22:00-07:00"), origin="cli")
    # The one waiting for quiet hours is due again; the retry keeps its backoff.
    assert [d.id for d in sending.jobs.due(cp.id, NOW_US, 2)] == [waiting.id]


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_live_sender_keeps_the_job_a_dead_one_loses_it(store: Repos) -> None:
    ws, cp = world(store, 3)
    provider = ScriptedProvider()
    sending = sending_for(store, provider, rate=0)
    sending.open_job(ws, cp, JobSpec(), origin="cli")
    host = socket.gethostname()
    far = NOW_US * 2
    with store.engine.begin() as conn:
        conn.execute(
            t.send_jobs.update().values(
                lease_owner=f"{host}:{os.getpid()}:other", lease_until_us=far
            )
        )
    with pytest.raises(Conflict, match="being sent by another process"):
        sending.run(ws, cp)
    assert sending.status(cp).running
    with store.engine.begin() as conn:
        conn.execute(
            t.send_jobs.update().values(
                lease_owner=f"{host}:{_dead_pid()}:gone", lease_until_us=far
            )
        )
    assert not sending.status(cp).running
    assert sending.run(ws, cp).state == "done"
    assert len(provider.handed) == 3


def test_a_dead_senders_messages_are_reconciled_not_resent(store: Repos) -> None:
    ws, cp = world(store, 6)
    provider = ScriptedProvider(reconcile_complete=True)
    sending = sending_for(store, provider, rate=0)
    sending.open_job(ws, cp, JobSpec(), origin="cli")
    polls = iter(range(100))
    # Wrap (two polls of the job), then stop before sending: the job pauses.
    wrapped = sending.run(ws, cp, should_stop=lambda: next(polls) >= 2)
    assert (wrapped.state, wrapped.created, wrapped.sent) == ("paused", 6, 0)
    sending.resume(cp)
    # Stand in for a sender that died: four claimed, two of them taken by the provider.
    due = sending.jobs.due(cp.id, NOW_US * 2, 4)
    assert sending.jobs.claim(cp.id, [d.id for d in due], sending.clock()) == {d.id for d in due}
    for d in due[:2]:
        provider.taken[d.sms.message_id] = "prov-" + d.sms.message_id
        provider.handed.append((d.sms.message_id, d.sms.to, 0, Status.SENT))
    assert statuses(store, cp) == Counter(sending=4, queued=2)
    assert sending.run(ws, cp).state == "done"
    assert provider.deliveries() == {f"+1415555{i:04d}": 1 for i in range(6)}
    first = message_row(store, due[0].sms.to)
    assert (first.status, first.provider_message_id) == ("sent", "prov-" + first.public_id)


def test_a_retry_answered_after_a_cancel_is_cancelled_too(store: Repos) -> None:
    ws, cp = world(store, 4)
    sending: Sending

    def cancel_now(_batch: object) -> None:
        sending.cancel(cp)

    def refuse(m: OutgoingSms, _attempt: int) -> SendResult:
        return SendResult(m.message_id, Status.QUEUED, error_code="http_503")

    provider = ScriptedProvider(refuse, before_send=cancel_now)
    sending = sending_for(store, provider, FakeTime(), rate=0)
    assert sending.send(ws, cp, batch_size=2).state == "cancelled"
    # The two in hand came back "try later" after the cancel: they must not wait in the queue.
    assert statuses(store, cp) == Counter(cancelled=4)
    assert len(provider.handed) == 2


def test_a_provider_that_keeps_raising_fails_the_message_after_max_attempts(
    store: Repos,
) -> None:
    ws, cp = world(store, 1)
    fake = FakeTime()
    provider = ScriptedProvider(fail_batches=100, reconcile_complete=True, clock=fake.clock)
    sending = sending_for(store, provider, fake, rate=0, max_attempts=3)
    assert sending.send(ws, cp).state == "done"
    row = message_row(store, "+14155550000")
    assert (row.status, row.attempts, row.error_code) == ("failed", 3, "retries_exhausted")
    assert row.error_message == (
        "gave up after 3 attempt(s): ConnectionError: provider unreachable"
    )
    assert len(provider.calls) == 3
