"""Engagement scores over HTTP (docs/segments.md): a workspace's scoring settings
(``/v1/engagement/settings``) and why a contact has its score
(``/v1/contacts/{contact}/engagement``).

Thin handlers: parse, call `services.engagement`, shape the answer through
`web.schemas_engagement`. Every call is scoped to the API key's workspace.
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute

from clicktrail.domain.engagement import band_of
from clicktrail.domain.errors import InvalidInput
from clicktrail.domain.models import Workspace
from clicktrail.services import engagement, keys
from clicktrail.services.clock import now_us
from clicktrail.services.contacts import ContactStore
from clicktrail.services.engagement import ContactScore, EngagementStore, SettingsView
from clicktrail.services.exports import iso_utc
from clicktrail.services.keys import KeyAuthStore
from clicktrail.web import schemas as s
from clicktrail.web import schemas_engagement as se
from clicktrail.web.bodies import read_json
from clicktrail.web.routing import CONTACT, ApiRoute, Op, Reply

MAX_BODY = 4096


def settings_out(view: SettingsView) -> se.EngagementSettingsOut:
    """The wire shape of a workspace's settings."""
    x = view.settings
    return se.EngagementSettingsOut(
        click_weight=x.click_weight, conversion_weight=x.conversion_weight,
        preview_weight=x.preview_weight, half_life_days=x.half_life_days,
        engaged_min=x.engaged_min, at_risk_min=x.at_risk_min, revision=view.revision,
        stale_scores=view.stale, defaults=not view.stored,
        rescoring=se.RescoringOut(done=view.rescored, total=view.kept) if view.stale else None,
    )  # fmt: skip


def contact_out(got: ContactScore) -> se.ContactEngagementOut:
    """The wire shape of a contact's score and its explanation."""
    why = got.explanation
    state = got.stored.state if got.stored is not None else None
    events = [
        se.EngagementEventOut(
            kind=c.event.kind,  # type: ignore[arg-type]  # one of domain.engagement.KINDS
            at=iso_utc(c.event.at_us) or "",
            ref=c.event.ref,
            label=c.event.label,
            weight=c.weight,
            age_days=round(c.age_days, 6),
            value=round(c.value, 6),
        )
        for c in why.contributions[: se.MAX_EVENTS_SHOWN]
    ]
    return se.ContactEngagementOut(
        phone=got.contact.phone, external_id=got.contact.external_id,
        score=round(got.score, 6),
        band=band_of(got.score, why.settings),  # type: ignore[arg-type]  # one of BANDS
        pending=got.pending, total=round(why.total, 6),
        clicks=state.clicks if state else 0, conversions=state.conversions if state else 0,
        previews=state.previews if state else 0,
        last_click_at=iso_utc(state.last_click_us) if state else None,
        last_conversion_at=iso_utc(state.last_conversion_us) if state else None,
        events_total=len(why.contributions), events=events,
    )  # fmt: skip


def routes(auth: KeyAuthStore, contacts: ContactStore, store: EngagementStore) -> list[BaseRoute]:
    """Return the engagement routes: `auth` checks API keys, `contacts` finds contacts, `store`
    keeps settings and scores."""

    def workspace(request: Request) -> Workspace:
        return keys.authenticate(auth, request.headers.get("authorization"))

    def get_settings(request: Request) -> Response:
        ws = workspace(request)
        return JSONResponse(settings_out(engagement.get_settings(store, ws)).model_dump())

    async def put_settings(request: Request) -> Response:
        ws = await run_in_threadpool(workspace, request)
        b = s.parse_body(se.EngagementSettingsIn, await read_json(request, MAX_BODY))
        view = await run_in_threadpool(engagement.set_settings, store, ws, b.model_dump(), now_us())
        return JSONResponse(settings_out(view).model_dump())

    def contact_score(request: Request) -> Response:
        ws = workspace(request)
        ref = str(request.path_params["contact"])
        if "\x00" in ref:
            raise InvalidInput("contact must not contain NUL characters", field="contact")
        got = engagement.explain_contact(contacts, store, ws, ref, now_us())
        return JSONResponse(contact_out(got).model_dump(mode="json"))

    return [
        ApiRoute("/v1/engagement/settings", get_settings, "GET", Op(
            "Engagement scoring settings", "engagement",
            Reply(200, "Weights, half-life and bands in force.", se.EngagementSettingsOut),
            errors=(401,))),
        ApiRoute("/v1/engagement/settings", put_settings, "PUT", Op(
            "Change engagement scoring settings", "engagement",
            Reply(200, "The settings now.", se.EngagementSettingsOut),
            description="New clicks and conversions score with them at once; after a change "
            "of weights or half-life the jobs process scores the kept ones again in the "
            "background (`rescoring`: how far it is). A bad value is a 422 naming the field; "
            "nothing is changed then.",
            body=se.EngagementSettingsIn)),
        ApiRoute("/v1/contacts/{contact}/engagement", contact_score, "GET", Op(
            "A contact's engagement score, explained", "engagement",
            Reply(200, "The score, its band, and each event behind it with its decayed value.",
                  se.ContactEngagementOut),
            params=(CONTACT,), errors=(401, 404))),
    ]  # fmt: skip
