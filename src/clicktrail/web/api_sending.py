"""Sending jobs over HTTP: start a send, watch it, pause, resume, cancel, release messages in
doubt, test-send (docs/providers.md, "Sending jobs").

A send started here runs in the server's background (a worker thread of the process that
answered, or the jobs process); `POST …/send` waits up to `wait` seconds for it to finish and
answers 200 when it did, else 202 with the job's progress (`GET …/send` to follow it). Every
database call runs in the thread pool and the wait is an `asyncio.sleep`, so the event loop the
redirect shares is never blocked.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Literal

from pydantic import Field
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute

from clicktrail.domain.errors import InvalidInput, NotFound
from clicktrail.domain.models import Campaign, Workspace
from clicktrail.domain.report import iso_us
from clicktrail.services import campaigns, workspaces
from clicktrail.services.campaigns import CampaignStore
from clicktrail.services.keys import KeyAuthStore
from clicktrail.services.sending import DONE, RUNNING, JobSpec, Sending, SendStatus
from clicktrail.web import schemas as s
from clicktrail.web.bodies import read_json
from clicktrail.web.routing import CAMPAIGN, ApiRoute, Op, Reply, json_body, query

MAX_BODY = 64 * 1024
MAX_WAIT = 60.0
DEFAULT_WAIT = 10.0


class SendIn(s._Request):
    """How to send (every field optional; a running job keeps what it has unless given)."""

    provider: s.Text | None = Field(
        default=None, description="`outbox` or a provider the workspace configured."
    )
    rate: float | None = Field(
        default=None, ge=0, le=100_000,
        description="Messages per second per sender; 0: no limit.",
    )  # fmt: skip
    quiet_hours: s.Text | None = Field(
        default=None,
        description="HH:MM-HH:MM: no message in this span of the recipient's local time; '' "
        "clears.",
        examples=["21:00-08:00"],
    )
    max_attempts: int | None = Field(default=None, ge=1, le=100)
    max_age: int | None = Field(
        default=None, ge=1, le=30 * 86400, description="Seconds after the first attempt."
    )


class TestSendIn(s._Request):
    """Where to send a test message."""

    to: s.Text = Field(description="Phone in E.164.", examples=["+14155550100"])
    contact: s.Text | None = Field(
        default=None,
        description="Personalize for this contact (phone or external id); default: the contact "
        "with the `to` phone, else the first of the audience.",
    )
    provider: s.Text | None = Field(default=None, description="Default: the job's, else outbox.")


class ReleaseIn(s._Request):
    """What to do with messages in doubt."""

    action: Literal["resend", "assume_sent"]


class SendJobOut(s._Response):
    """A campaign's sending job: its state and its messages by what happened to them."""

    campaign: str
    slug: str
    state: Literal["not_started", "running", "paused", "cancelled", "held", "done"]
    running: bool = Field(description="A live process is sending it now.")
    provider: str | None
    rate: float | None
    quiet_hours: str | None
    created: int = Field(description="Messages made (one per reachable recipient).")
    queued: int = Field(description="Due now.")
    deferred: int = Field(description="Waiting for quiet hours to end or a retry.")
    sending: int
    sent: int
    delivered: int
    failed: int
    cancelled: int
    unknown: int = Field(description="In doubt: held for `release`.")
    skipped_opted_out: int
    skipped_invalid: int
    held_out: int = Field(
        description="The campaign's holdout: contacts of the audience who get nothing "
        '(docs/attribution.md, "Holdout and lift").'
    )
    segments: int
    last_error: str | None
    started_at: s.Time | None
    finished_at: s.Time | None


class TestSendOut(s._Response):
    """What a test send did."""

    message: str
    to: str
    body: str
    status: str
    error_code: str | None
    error_message: str | None
    links: list[str]


def job_out(st: SendStatus) -> SendJobOut:
    """The wire shape of a job's status."""
    c = st.counts
    return SendJobOut(
        campaign=st.campaign, slug=st.slug, state=st.state,  # type: ignore[arg-type]
        running=st.running, provider=st.provider, rate=st.rate, quiet_hours=st.quiet_hours,
        created=st.created, queued=c.queued, deferred=c.deferred, sending=c.sending,
        sent=c.sent, delivered=c.delivered, failed=c.failed, cancelled=c.cancelled,
        unknown=c.unknown, skipped_opted_out=c.skipped_opted_out,
        skipped_invalid=c.skipped_invalid, held_out=c.held_out, segments=c.segments,
        last_error=st.last_error,
        started_at=iso_us(st.created_us), finished_at=iso_us(st.finished_us),
    )  # fmt: skip


def _out(st: SendStatus, status: int = 200) -> Response:
    return JSONResponse(job_out(st).model_dump(mode="json"), status_code=status)


def _wait(request: Request) -> float:
    raw = request.query_params.get("wait")
    if raw is None:
        return DEFAULT_WAIT
    try:
        value = float(raw)
    except ValueError:
        raise InvalidInput("wait must be a number of seconds", field="wait") from None
    if not 0 <= value <= MAX_WAIT:
        raise InvalidInput(f"wait must be between 0 and {MAX_WAIT:g} seconds", field="wait")
    return value


def routes(
    keys: KeyAuthStore, campaign_store: CampaignStore, sending: Callable[[], Sending]
) -> list[BaseRoute]:
    """Return the sending routes over `campaign_store` and the `sending` service (built on
    first use); `keys` authenticates API keys."""

    def target(request: Request) -> tuple[Workspace, Campaign]:
        ws = workspaces.authenticate(keys, request.headers.get("authorization"))
        ref = str(request.path_params["campaign"])
        if "\x00" in ref:
            raise NotFound("campaign not found", field="campaign")
        return ws, campaigns.get_campaign(campaign_store, ws, ref)

    async def start(request: Request) -> Response:
        ws, cp = await run_in_threadpool(target, request)
        wait = _wait(request)
        b = s.parse_body(SendIn, await read_json(request, MAX_BODY))
        provider = b.provider or request.query_params.get("provider") or None
        spec = JobSpec(provider, b.rate, b.quiet_hours, b.max_attempts, b.max_age)
        svc = sending()
        await run_in_threadpool(svc.start_in_background, ws, cp, spec)
        deadline = time.monotonic() + wait
        while True:
            state = await run_in_threadpool(svc.job_state, cp.id)
            if state != RUNNING or time.monotonic() >= deadline:
                break
            await asyncio.sleep(0.05)
        st = await run_in_threadpool(svc.status, cp)
        return _out(st, 200 if st.state == DONE else 202)

    def status(request: Request) -> Response:
        _ws, cp = target(request)
        return _out(sending().status(cp))

    def pause(request: Request) -> Response:
        _ws, cp = target(request)
        return _out(sending().pause(cp))

    def resume(request: Request) -> Response:
        _ws, cp = target(request)
        return _out(sending().resume(cp, launch=True))

    def cancel(request: Request) -> Response:
        _ws, cp = target(request)
        return _out(sending().cancel(cp))

    async def release(request: Request) -> Response:
        _ws, cp = await run_in_threadpool(target, request)
        b = s.parse_body(ReleaseIn, await read_json(request, MAX_BODY))
        svc = sending()

        def run() -> SendStatus:
            svc.release(cp, resend=b.action == "resend")
            if b.action == "resend":
                svc.worker.launch(cp.id)
            return svc.status(cp)

        return _out(await run_in_threadpool(run))

    async def test_send(request: Request) -> Response:
        ws, cp = await run_in_threadpool(target, request)
        b = s.parse_body(TestSendIn, await read_json(request, MAX_BODY))
        svc = sending()

        def run() -> TestSendOut:
            job = svc.jobs.get(cp.id)
            sender = svc.provider_for(ws, b.provider or (job.provider if job else "outbox"))
            r = svc.test_send(ws, cp, sender, to=b.to, contact_ref=b.contact)
            return TestSendOut(
                message=r.message_id, to=r.to, body=r.body, status=r.status,
                error_code=r.error_code, error_message=r.error_message, links=r.links,
            )  # fmt: skip

        out = await run_in_threadpool(run)
        return JSONResponse(out.model_dump(mode="json"))

    base = "/v1/campaigns/{campaign}"
    return [
        ApiRoute(f"{base}/send", start, "POST", Op(
            "Send a campaign", "sending",
            Reply(200, "The send finished within `wait`: the job's final counts.", SendJobOut),
            description="Starts (or continues) the campaign's sending job in the server's "
            "background: wraps the campaign for every reachable contact of its audience "
            "(opted-out and invalid numbers are skipped and counted) and hands the messages to "
            "the provider at the job's rate, retrying refusals for now with backoff, never "
            "outside quiet hours. Waits up to `wait` seconds; 202 when the job is still going "
            "(follow it with `GET`). The body is optional; a running job keeps its settings "
            "unless given. 409 once sent, cancelled or paused (resume instead). See "
            "docs/providers.md, \"Sending jobs\".",
            params=(CAMPAIGN,
                    query("provider", "`outbox` (default) or a provider the workspace "
                          "configured (`GET /v1/providers`); the body's `provider` wins."),
                    query("wait", f"Seconds to wait for the send to finish (0-{MAX_WAIT:g}, "
                          f"default {DEFAULT_WAIT:g}).",
                          {"type": "number", "minimum": 0, "maximum": MAX_WAIT})),
            body=json_body(SendIn, required=False), errors=(401, 404, 409, 422),
            more=(Reply(202, "Still sending: the job's progress.", SendJobOut),))),
        ApiRoute(f"{base}/send", status, "GET", Op(
            "A campaign's sending job", "sending",
            Reply(200, "The job's state and its messages by what happened to them "
                  "(`not_started` before any send).", SendJobOut),
            params=(CAMPAIGN,), errors=(401, 404))),
        ApiRoute(f"{base}/pause", pause, "POST", Op(
            "Pause a send", "sending", Reply(200, "The job, paused.", SendJobOut),
            description="The sender stops after the batch in hand (within about a second).",
            params=(CAMPAIGN,), errors=(401, 404, 409))),
        ApiRoute(f"{base}/resume", resume, "POST", Op(
            "Resume a paused send", "sending",
            Reply(200, "The job, running again in the server's background.", SendJobOut),
            params=(CAMPAIGN,), errors=(401, 404, 409))),
        ApiRoute(f"{base}/cancel", cancel, "POST", Op(
            "Cancel a send", "sending", Reply(200, "The job, cancelled.", SendJobOut),
            description="Messages not yet handed to the provider become `cancelled`: never "
            "sent, not counted as delivered nor in CTR.",
            params=(CAMPAIGN,), errors=(401, 404, 409))),
        ApiRoute(f"{base}/release", release, "POST", Op(
            "Decide about messages in doubt", "sending",
            Reply(200, "The job after the decision.", SendJobOut),
            description="Messages handed to a provider that cannot say whether it took them "
            "are held as `unknown`: `resend` queues them again (a recipient may get two), "
            "`assume_sent` takes them as sent.",
            params=(CAMPAIGN,), body=ReleaseIn, errors=(401, 404, 409, 422))),
        ApiRoute(f"{base}/test-send", test_send, "POST", Op(
            "Send a test message", "sending",
            Reply(200, "The test message and what the provider answered.", TestSendOut),
            description="One message with real tracked links to `to`, personalized for a "
            "contact; marked as a test, it never counts in reports, exports or CTR.",
            params=(CAMPAIGN,), body=TestSendIn, errors=(401, 404, 409, 422))),
    ]  # fmt: skip
