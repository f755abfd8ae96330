"""Opt-outs over HTTP: inbound SMS (Twilio's webhook and a generic JSON form), manual opt-outs
and opt-ins, a contact's history and the keyword replies (docs/providers.md, "Opt-outs").

``POST /v1/webhooks/twilio/inbound`` takes no API key: Twilio signs each request with the auth
token of the account (`X-Twilio-Signature`), checked with the official SDK's
`RequestValidator` against every Twilio provider account configured in a workspace; the
workspaces whose account vouches for the request get the keyword. The answer is TwiML: the
workspace's reply in a ``<Message>``, or an empty ``<Response/>``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import parse_qsl

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import ImmutableMultiDict
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute
from twilio.request_validator import RequestValidator, get_signature_algorithm
from twilio.twiml.messaging_response import MessagingResponse

from clicktrail.domain.errors import InvalidInput
from clicktrail.domain.models import Workspace
from clicktrail.services import optouts, workspaces
from clicktrail.services.clock import now_us
from clicktrail.services.contacts import ContactStore
from clicktrail.services.exports import iso_utc
from clicktrail.services.keys import KeyAuthStore
from clicktrail.services.optouts import (
    InboundOutcome,
    KeywordReplies,
    ManualChange,
    OptOutStore,
    TwilioSigner,
)
from clicktrail.services.receipts import parse_time
from clicktrail.web import schemas as s
from clicktrail.web import schemas_wrap as w
from clicktrail.web.bodies import read_body, read_json
from clicktrail.web.errors import problem
from clicktrail.web.routing import CONTACT, TWILIO_SIGNATURE, ApiRoute, Body, Op, Reply

MAX_BODY = 1024 * 1024
MAX_WEBHOOK = 64 * 1024
TWIML = "text/xml"
# What Twilio posts when a message comes in (form fields).
TWILIO_INBOUND = {
    "type": "object",
    "required": ["From", "Body"],
    "properties": {
        name: {"type": "string"} for name in ("AccountSid", "MessageSid", "From", "To", "Body")
    },
    "additionalProperties": {"type": "string"},
}


def _json(model: Any) -> Response:
    return JSONResponse(model.model_dump(mode="json", by_alias=True))


def _t(us: int) -> str:
    out = iso_utc(us)
    assert out is not None
    return out


def twiml(reply: str | None) -> Response:
    """Return a TwiML answer: the reply as one message, or an empty response."""
    response = MessagingResponse()
    if reply:
        response.message(reply)
    return Response(str(response), media_type=TWIML)


def signed_urls(url: str) -> list[str]:
    """The URLs Twilio may have signed for a request the server saw at `url`.

    Behind a TLS terminator the server sees ``http://`` where Twilio called ``https://`` (and
    the other way round with TLS in process): both schemes are tried. The host, path and
    query must reach clicktrail unchanged. Trying both does not weaken the check: a signature
    still takes the account's auth token.
    """
    scheme, sep, rest = url.partition("://")
    other = "https" if scheme == "http" else "http"
    return [url, f"{other}{sep}{rest}"]


def vouching(
    signers: Sequence[TwilioSigner],
    urls: Sequence[str],
    form: ImmutableMultiDict[str, str],
    signature: str | None,
    algorithm: str,
) -> list[TwilioSigner]:
    """Return the signers whose auth token produced `signature` for one of `urls` and `form`."""
    if not signature:
        return []
    out = []
    for signer in signers:
        validator = RequestValidator(signer.auth_token)
        if any(validator.validate(u, form, signature, algorithm) for u in urls):
            out.append(signer)
    return out


def routes(
    keys: KeyAuthStore,
    contact_store: ContactStore,
    opt: OptOutStore,
    *,
    twilio_signers: Callable[[], list[TwilioSigner]],
    default_region: str | None,
) -> list[BaseRoute]:
    """Return the opt-out routes over the workspace's contacts `contact_store` and their
    opt-out state `opt` (API keys checked through `keys`). `twilio_signers` lists the Twilio accounts (and their
    workspaces) that may sign inbound webhooks."""

    def workspace(request: Request) -> Workspace:
        return workspaces.authenticate(keys, request.headers.get("authorization"))

    def inbound_out(outcome: InboundOutcome) -> w.InboundOut:
        kw = outcome.keyword
        return w.InboundOut(
            keyword=kw.word if kw else None,
            action=kw.action.value if kw else None,
            applied=outcome.applied,
            opted_out=outcome.opted_out,
            reply=outcome.reply,
        )

    async def twilio_inbound(request: Request) -> Response:
        raw = await read_body(request, MAX_WEBHOOK)
        try:
            # Twilio posts application/x-www-form-urlencoded, UTF-8.
            form = ImmutableMultiDict(parse_qsl(raw.decode("utf-8"), keep_blank_values=True))
        except (UnicodeDecodeError, ValueError):
            raise InvalidInput("body is not a UTF-8 form", field="body") from None
        signature = request.headers.get("x-twilio-signature")
        algorithm = get_signature_algorithm(
            request.headers.get("x-twilio-webhooks-signature-settings")
        )
        urls = signed_urls(str(request.url))

        def run() -> InboundOutcome | None:
            found = vouching(twilio_signers(), urls, form, signature, algorithm)
            if not found:
                return None
            sender, text = form.get("From"), form.get("Body")
            if not isinstance(sender, str) or not sender.strip():
                raise InvalidInput("From is missing", field="From")
            first = InboundOutcome(None)
            done: set[int] = set()
            now = now_us()
            for signer in found:
                if signer.workspace.id in done:
                    continue
                done.add(signer.workspace.id)
                to = form.get("To")
                outcome = optouts.handle_inbound(
                    opt, signer.workspace, from_number=sender,
                    to_number=to if isinstance(to, str) else None,
                    text=text if isinstance(text, str) else "", received_us=now,
                    channel="twilio inbound", now_us=now,
                )  # fmt: skip
                if first.keyword is None:
                    first = outcome
            return first

        outcome = await run_in_threadpool(run)
        if outcome is None:
            # As for receipts webhooks (web/api_providers.py): a forged request is 403.
            return problem(
                403, "forbidden", "no configured twilio provider signed this request",
                field="X-Twilio-Signature",
            )  # fmt: skip
        return twiml(outcome.reply)

    async def generic_inbound(request: Request) -> Response:
        ws = await run_in_threadpool(workspace, request)
        body = s.parse_body(w.InboundIn, await read_json(request, MAX_BODY))
        now = now_us()
        received = parse_time(body.received_at, "received_at", now)
        outcome = await run_in_threadpool(
            lambda: optouts.handle_inbound(
                opt,
                ws,
                from_number=body.from_,
                to_number=body.to,
                text=body.text,
                received_us=received,
                channel="inbound api",
                now_us=now,
                region=default_region,
            )
        )
        return _json(inbound_out(outcome))

    async def post_opt_outs(request: Request) -> Response:
        ws = await run_in_threadpool(workspace, request)
        body = s.parse_body(w.OptOutBatchIn, await read_json(request, MAX_BODY))
        now = now_us()
        changes = []
        for i, x in enumerate(body.items):
            at = parse_time(x.at, f"/items/{i}/at", now) if x.at is not None else None
            changes.append(ManualChange(x.contact, x.opted_out, at, x.note))
        results = await run_in_threadpool(
            lambda: optouts.set_opt_outs(
                contact_store,
                opt,
                ws,
                changes,
                where=[f"/items/{i}" for i in range(len(changes))],
                source="api",
                now_us=now,
                region=body.region or default_region,
            )
        )
        return _json(
            w.OptOutBatchOut(
                items=[
                    w.OptOutResultOut(
                        phone=r.phone, applied=r.applied, opted_out=r.opted_out, created=r.created
                    )
                    for r in results
                ]
            )
        )

    def contact_history(request: Request) -> Response:
        ws = workspace(request)
        ref = str(request.path_params["contact"])
        if "\x00" in ref:
            raise InvalidInput("contact must not contain NUL characters", field="contact")
        history = optouts.contact_history(contact_store, opt, ws, ref)
        return _json(
            w.OptOutHistoryOut(
                phone=history.phone,
                opted_out=history.opted_out,
                events=[
                    w.OptOutEventOut(
                        opted_out=e.opted_out,
                        at=_t(e.at_us),
                        source=e.source,
                        keyword=e.keyword,
                        to_number=e.to_number,
                        note=e.note,
                        applied=e.applied,
                        recorded_at=_t(e.recorded_us),
                    )
                    for e in history.events
                ],
            )
        )

    def get_replies(request: Request) -> Response:
        ws = workspace(request)
        r = optouts.get_replies(opt, ws)
        return _json(w.KeywordRepliesIO(help=r.help, opt_out=r.opt_out, opt_in=r.opt_in))

    async def put_replies(request: Request) -> Response:
        ws = await run_in_threadpool(workspace, request)
        b = s.parse_body(w.KeywordRepliesIO, await read_json(request, MAX_BODY))
        r = await run_in_threadpool(
            optouts.set_replies, opt, ws, KeywordReplies(b.help, b.opt_out, b.opt_in), now_us()
        )
        return _json(w.KeywordRepliesIO(help=r.help, opt_out=r.opt_out, opt_in=r.opt_in))

    return [
        ApiRoute("/v1/webhooks/twilio/inbound", twilio_inbound, "POST", Op(
            "Twilio inbound message webhook", "opt-outs",
            Reply(200, "TwiML: the workspace's reply, or an empty `<Response/>`.",
                  {TWIML: {"type": "string"}}),
            description="Set as the number's \"A message comes in\" webhook. No key: the "
            "`X-Twilio-Signature` must be valid for a Twilio account configured in a workspace "
            "(`POST /v1/providers`); keywords act as for `POST /v1/inbound`.",
            params=(TWILIO_SIGNATURE,),
            body=Body({"application/x-www-form-urlencoded": TWILIO_INBOUND}),
            errors=(403, 422), auth=False)),
        ApiRoute("/v1/inbound", generic_inbound, "POST", Op(
            "Record an inbound SMS (opt-out keywords)", "opt-outs",
            Reply(200, "The keyword the message is and the reply to send back.", w.InboundOut),
            description="For your own gateway: a message that is exactly STOP, STOPALL, "
            "UNSUBSCRIBE, CANCEL, END or QUIT opts the sender out; START or UNSTOP back in; HELP "
            "gets the workspace's reply (docs/providers.md, \"Opt-outs\").",
            body=w.InboundIn)),
        ApiRoute("/v1/opt-outs", post_opt_outs, "POST", Op(
            "Opt contacts out or back in", "opt-outs",
            Reply(200, "What each change did, in request order.", w.OptOutBatchOut),
            description="All or nothing; recorded in each contact's history with source `api`. "
            "An unknown phone becomes an opted-out contact.",
            body=w.OptOutBatchIn)),
        ApiRoute("/v1/opt-outs/replies", get_replies, "GET", Op(
            "Keyword replies", "opt-outs",
            Reply(200, "What the workspace answers to HELP, opt-out and opt-in keywords.",
                  w.KeywordRepliesIO),
            errors=(401,))),
        ApiRoute("/v1/opt-outs/replies", put_replies, "PUT", Op(
            "Set keyword replies", "opt-outs", Reply(200, "The replies now.", w.KeywordRepliesIO),
            body=w.KeywordRepliesIO)),
        ApiRoute("/v1/contacts/{contact}/opt-outs", contact_history, "GET", Op(
            "A contact's opt-out history", "opt-outs",
            Reply(200, "The state and every opt-out and opt-in, newest first.",
                  w.OptOutHistoryOut),
            params=(CONTACT,), errors=(401, 404))),
    ]  # fmt: skip
