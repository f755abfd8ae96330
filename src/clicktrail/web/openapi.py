"""The OpenAPI 3.1 document of the API (``GET /openapi.json``) and its reference page
(``GET /docs``), rendered on the server from the document: no script, no CDN, no asset.

Schemas come from the pydantic models of `web.schemas` (the same models that validate request
bodies and build responses) and from the report dataclasses, so the document cannot describe a
shape the code does not produce; `tests/test_openapi.py` runs schemathesis over it and checks
that every route is described. Operations are listed here by hand: paths, parameters, status
codes and prose are API design, not something to infer.
"""

from __future__ import annotations

import functools
import html
import json
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, TypeAdapter
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Route

from clicktrail.domain.report import CampaignReport
from clicktrail.services.exports import FORMATS, PHONE_MODES
from clicktrail.services.listing import MAX_LIMIT
from clicktrail.web import api_sending as snd
from clicktrail.web import schemas as s
from clicktrail.web import schemas_conversions as c
from clicktrail.web import schemas_wrap as w

PROBLEM = "application/problem+json"
REF = "#/components/schemas/{model}"
NO_NUL = "^[^\\x00]*$"

MODELS: list[type[BaseModel]] = [
    s.DomainCreate, s.CampaignCreate, s.ProblemDetails, s.WorkspaceOut, s.DomainOut,
    s.DomainPage, s.ContactOut, s.ContactPage, s.ContactListOut, s.ContactListPage, s.ImportOut,
    s.CampaignOut, s.CampaignPage, s.PreviewOut, s.SendOut, s.MessageOut, s.MessagePage,
    s.ClickOut, s.ClickPage, s.ReceiptsOut, s.Health, s.TlsAllowed,
    s.ProviderCreate, s.ProviderOut, s.ProviderList, s.WebhookOut,
]  # fmt: skip
REQUESTS = {s.DomainCreate, s.CampaignCreate, s.ProviderCreate}

# Wrap-only API and opt-outs (web/schemas_wrap.py).
MODELS += [w.WrapIn, w.WrapBatchIn, w.WrapOut, w.WrapBatchOut, w.InboundIn, w.InboundOut,
           w.OptOutBatchIn, w.OptOutBatchOut, w.OptOutHistoryOut, w.KeywordRepliesIO]  # fmt: skip
REQUESTS |= {w.WrapIn, w.WrapBatchIn, w.InboundIn, w.OptOutBatchIn, w.KeywordRepliesIO}

# Network lists for bot filtering (web/api_networks.py).
MODELS += [s.NetworkRangeIn, s.NetworkRangesAdd, s.NetworkRangesAdded, s.NetworkListOut,
           s.NetworkListPage, s.NetworkRangeOut, s.NetworkRangePage]  # fmt: skip
REQUESTS |= {s.NetworkRangeIn, s.NetworkRangesAdd}

# API keys (web/api_keys.py).
MODELS += [s.KeyCreate, s.KeyRotate, s.KeyOut, s.KeyCreated, s.KeyRotated, s.KeyPage]
REQUESTS |= {s.KeyCreate, s.KeyRotate}

# Conversions (web/api_conversions.py).
MODELS += [c.ConversionIn, c.ContactRefIn, c.ConversionBatchIn, c.ConversionOut,
           c.ConversionResult, c.ConversionRecorded, c.ConversionBatchOut, c.ConversionPage,
           c.EventModeIn, c.EventModeOut, c.EventModeList, c.RejectedOut, c.RejectedPage]  # fmt: skip
REQUESTS |= {c.ConversionIn, c.ContactRefIn, c.ConversionBatchIn, c.EventModeIn}

# Sending jobs (web/api_sending.py).
MODELS += [snd.SendIn, snd.TestSendIn, snd.ReleaseIn, snd.SendJobOut, snd.TestSendOut]
REQUESTS |= {snd.SendIn, snd.TestSendIn, snd.ReleaseIn}


def ref(model: type[BaseModel] | str) -> dict[str, str]:
    """Return a reference to a component schema."""
    name = model if isinstance(model, str) else model.__name__
    return {"$ref": REF.format(model=name)}


def _param(where: str, name: str, description: str, schema: dict[str, Any] | None = None,
           required: bool = False) -> dict[str, Any]:  # fmt: skip
    return {
        "name": name,
        "in": where,
        "required": required or where == "path",
        "description": description,
        "schema": schema or {"type": "string", "pattern": NO_NUL},
    }


def path(name: str, description: str) -> dict[str, Any]:
    """A path parameter."""
    return _param("path", name, description)


def query(name: str, description: str, schema: dict[str, Any] | None = None,
          required: bool = False) -> dict[str, Any]:  # fmt: skip
    """A query parameter."""
    return _param("query", name, description, schema, required)


LIMIT = query(
    "limit", f"Items per page, 1 to {MAX_LIMIT} (default 50).",
    {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT},
)  # fmt: skip
CURSOR = query("cursor", "The `next_cursor` of the previous page, as it came.")
CAMPAIGN = path("campaign", "The campaign's slug or id (`cmp_…`).")
TIME = {"type": "string", "pattern": NO_NUL, "examples": ["2026-11-22T10:00:00Z", "1790000000"]}
SINCE = query("since", "From this time on (inclusive): ISO 8601 (UTC without zone) or Unix "
              "seconds.", TIME)  # fmt: skip
UNTIL = query("until", "Before this time (exclusive); same forms as `since`.", TIME)
CAMPAIGN_FILTER = query("campaign", "Only this campaign (slug or id).")
KEY_ID = path("key_id", "The key's id (`key_…`), as lists show it.")
NETWORK_LIST = path("name", "The network list's name (lowercase letters, digits, `.`, `_`, `-`).")


@dataclass(frozen=True)
class Op:
    """One operation of the API."""

    method: str
    path: str
    summary: str
    tag: str
    ok: tuple[int, str, dict[str, Any]]  # status, description, content
    description: str = ""
    params: tuple[dict[str, Any], ...] = ()
    body: dict[str, Any] | None = None  # the requestBody object
    errors: tuple[int, ...] = (401, 422)
    auth: bool = True
    headers: dict[str, Any] = field(default_factory=dict)
    more: tuple[tuple[int, str, dict[str, Any]], ...] = ()  # other success responses


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


def _body(model: type[BaseModel]) -> dict[str, Any]:
    return {"required": True, "content": _json(ref(model))}


_LOCATION = {
    "Location": {"description": "Where the new resource is.", "schema": {"type": "string"}}
}
_EXPORT_PARAMS = (
    query("format", "Output format.", {"type": "string", "enum": list(FORMATS), "default": "csv"}),
    CAMPAIGN_FILTER,
    SINCE,
    UNTIL,
    query(
        "phone",
        "`plain` phone column, `hash` (a `phone_hash` column: hex HMAC-SHA256 of the E.164 "
        "number keyed by `salt`) or `omit`.",
        {"type": "string", "enum": list(PHONE_MODES), "default": "plain"},
    ),
    query("salt", "Secret key of the phone hash (with `phone=hash`; at least 16 characters)."),
)
_EXPORT_CONTENT = {
    "text/csv": {"schema": {"type": "string"}},
    "application/jsonl": {"schema": {"type": "string"}},
    "application/vnd.apache.parquet": {
        "schema": {"type": "string", "contentMediaType": "application/vnd.apache.parquet"}
    },
}
_LOOSE = {"type": "object", "additionalProperties": True}
_TWILIO_CALLBACK = {
    "type": "object",
    "required": ["MessageSid", "MessageStatus"],
    "properties": {
        name: {"type": "string"}
        for name in ("AccountSid", "MessageSid", "MessageStatus", "ErrorCode", "To", "From")
    },
    "additionalProperties": {"type": "string"},
}

_TWILIO_INBOUND = {
    "type": "object",
    "required": ["From", "Body"],
    "properties": {
        name: {"type": "string"} for name in ("AccountSid", "MessageSid", "From", "To", "Body")
    },
    "additionalProperties": {"type": "string"},
}

_READY = {
    "type": "object",
    "required": ["status"],
    "properties": {"status": {"const": "ready"}},
}

CONVERSION_OPERATIONS = (
    Op("post", "/v1/conversions", "Record conversions", "conversions",
       (200, "A duplicate or replaced conversion (single), or one result per conversion "
        "(batch).", _json({"anyOf": [ref(c.ConversionRecorded), ref(c.ConversionBatchOut)]})),
       description="One conversion object, or `{\"conversions\": [...]}` (up to 1,000). Each "
       "is unique on (event, txn) with a txn, else (event, click id) or (event, contact), "
       "forever; the event's duplicate mode says what a second one does (docs/conversions.md). "
       "A batch answers each item (`accepted`, `replaced`, `duplicate`, `unknown_click`, "
       "`unknown_contact`, `invalid` with `field`); a single conversion that cannot be stored "
       "is a 422 whose `code` is `invalid_input`, `unknown_click` or `unknown_contact`. "
       "Another workspace's click id is `unknown_click`, like one that does not exist.",
       body={"required": True, "content": _json(
           {"anyOf": [ref(c.ConversionIn), ref(c.ConversionBatchIn)]})},
       more=((201, "Stored (single).", _json(ref(c.ConversionRecorded))),),
       headers=_LOCATION),
    Op("get", "/v1/conversions", "List conversions", "conversions",
       (200, "A page of conversions, in the order they were stored.",
        _json(ref(c.ConversionPage))),
       params=(LIMIT, CURSOR, query("event", "Only this event."), CAMPAIGN_FILTER,
               query("source", "Only from this source.",
                     {"type": "string", "enum": ["api", "postback", "pixel", "beacon",
                                                 "import"]}),
               query("since", "Occurred from this time on (inclusive).", TIME),
               query("until", "Occurred before this time.", TIME)),
       errors=(401, 404, 422)),
    Op("get", "/v1/conversions/events", "Events' duplicate modes", "conversions",
       (200, "Events with a mode set; others are `ignore`.", _json(ref(c.EventModeList))),
       errors=(401,)),
    Op("put", "/v1/conversions/events/{event}", "Set an event's duplicate mode", "conversions",
       (200, "The mode now; it applies to conversions arriving from now on.",
        _json(ref(c.EventModeOut))),
       description="`ignore` (default): a duplicate changes nothing. `count`: without a txn "
       "every conversion counts (with a txn it is still one). `replace`: a duplicate's value "
       "and currency replace the stored ones.",
       params=(path("event", "The event name."),), body=_body(c.EventModeIn)),
    Op("get", "/v1/conversions/rejected", "Rejected postbacks, pixels and beacons",
       "conversions",
       (200, "A page of the rejected log, newest first (bounded: the newest 10,000).",
        _json(ref(c.RejectedPage))),
       params=(LIMIT, CURSOR), errors=(401, 422)),
    Op("get", "/v1/conversions/{conversion}", "Get a conversion", "conversions",
       (200, "The conversion.", _json(ref(c.ConversionOut))),
       params=(path("conversion", "The conversion's id (`cnv_…`)."),), errors=(401, 404)),
)  # fmt: skip

OPERATIONS: tuple[Op, ...] = (
    Op("get", "/healthz", "Liveness", "server", (200, "The server is up.", _json(ref(s.Health))),
       description="Liveness for load balancers and supervisors: the process answers (it "
       "does not ask the database; see `/readyz`). No key.", errors=(), auth=False),
    Op("get", "/readyz", "Readiness", "server", (200, "The database answers.", _json(_READY)),
       description="Can the server do its work now: asks the database, within 2 s. 503 "
       "`storage_unavailable` (with `Retry-After`) while it does not answer. No key.",
       errors=(), auth=False),
    Op("get", "/v1/tls/allowed", "May a certificate be issued for a host?", "server",
       (200, "HOST is a registered short domain.", _json(ref(s.TlsAllowed))),
       description="Asked by a TLS terminator (Caddy's on-demand TLS `ask`); no key. A "
       "malformed or unknown host is 404.",
       params=(query("domain", "The host name.", required=True),), errors=(400, 404), auth=False),
    Op("get", "/v1/workspace", "The API key's workspace", "workspace",
       (200, "The workspace.", _json(ref(s.WorkspaceOut))), errors=(401,)),
    Op("get", "/v1/keys", "List API keys", "keys",
       (200, "A page of the workspace's keys, oldest first, revoked and expired ones too; "
        "never a secret.", _json(ref(s.KeyPage))),
       description="`last_used_at` is recorded at most once a minute per key. `scopes` is "
       "null (full access) on every key: scopes are not enforced yet.",
       params=(LIMIT, CURSOR)),
    Op("post", "/v1/keys", "Create an API key", "keys",
       (201, "The new key with its secret in `key`: shown this once, stored only as a hash.",
        _json(ref(s.KeyCreated))),
       description="Optionally expiring: `expires_at` (a time) or `expires_in` (a duration), "
       "in the future; after it the key answers 401 like a revoked one.",
       body=_body(s.KeyCreate), headers=_LOCATION),
    Op("get", "/v1/keys/{key_id}", "Get an API key", "keys",
       (200, "The key (never its secret).", _json(ref(s.KeyOut))),
       params=(KEY_ID,), errors=(401, 404)),
    Op("delete", "/v1/keys/{key_id}", "Revoke an API key", "keys",
       (204, "Revoked at once (revoking a revoked key changes nothing): calls with it answer "
        "401 and the dashboard sessions it opened end.", {}),
       description="A key may revoke itself. The workspace's last active key is refused (409) "
       "unless `force=true`: the workspace would have no key left for the API (the operator "
       "can create one with `clicktrail keys create`).",
       params=(KEY_ID, query("force", "Revoke even the workspace's last active key.",
                             {"type": "boolean", "default": False})),
       errors=(401, 404, 409, 422)),
    Op("post", "/v1/keys/{key_id}/rotate", "Rotate an API key", "keys",
       (201, "The new key (its secret shown this once) and the old key as it is now.",
        _json(ref(s.KeyRotated))),
       description="Creates a key with the same name and scopes and retires the old one: "
       "revoked at once, or with `grace` still working until the grace period ends (it then "
       "expires). The new key expires as asked, else after the old key's lifetime if it had "
       "one. A revoked key cannot be rotated (409).",
       params=(KEY_ID,), body={"required": False, "content": _json(ref(s.KeyRotate))},
       errors=(401, 404, 409, 422), headers=_LOCATION),
    Op("get", "/v1/domains", "List short domains", "domains",
       (200, "A page of domains, by host.", _json(ref(s.DomainPage))), params=(LIMIT, CURSOR)),
    Op("post", "/v1/domains", "Register a short domain", "domains",
       (201, "The new domain.", _json(ref(s.DomainOut))), body=_body(s.DomainCreate),
       errors=(401, 409, 422), headers=_LOCATION),
    Op("get", "/v1/domains/{host}", "Get a short domain", "domains",
       (200, "The domain.", _json(ref(s.DomainOut))), params=(path("host", "The host."),),
       errors=(401, 404)),
    Op("get", "/v1/contacts", "List contacts", "contacts",
       (200, "A page of contacts, by phone.", _json(ref(s.ContactPage))),
       params=(LIMIT, CURSOR, query("list", "Only members of this list.")),
       errors=(401, 404, 422)),
    Op("post", "/v1/contacts/import", "Import contacts from CSV", "contacts",
       (200, "What the import did.", _json(ref(s.ImportOut))),
       description="The body is a CSV file with a `phone` column and optional `external_id`, "
       "`first_name` and attribute columns (as `clicktrail contacts import`). All or nothing: "
       "any bad row is a 422 naming each line, unless `skip_invalid=true`; a header without "
       "data rows is a 422 unless `allow_empty=true`.",
       params=(
           query("region", "ISO country of numbers written without +country code."),
           query("skip_invalid", "Import the good rows and list the rejected ones.",
                 {"type": "boolean", "default": False}),
           query("allow_empty", "Accept a file with a header and no data rows (imports nothing).",
                 {"type": "boolean", "default": False}),
           query("list", "Also add the contacts to this list (created when new)."),
           query("encoding", "Text encoding of the file (default utf-8)."),
       ),
       body={"required": True, "content": {"text/csv": {"schema": {"type": "string"}}}},
       errors=(401, 413, 422)),
    Op("get", "/v1/contacts/{contact}", "Get a contact", "contacts",
       (200, "The contact.", _json(ref(s.ContactOut))),
       params=(path("contact", "Phone (E.164, `+` encoded as `%2B`) or external id."),),
       errors=(401, 404)),
    Op("get", "/v1/lists", "List contact lists", "contacts",
       (200, "A page of lists, by name.", _json(ref(s.ContactListPage))),
       params=(LIMIT, CURSOR)),
    Op("get", "/v1/campaigns", "List campaigns", "campaigns",
       (200, "A page of campaigns, newest first.", _json(ref(s.CampaignPage))),
       params=(LIMIT, CURSOR)),
    Op("post", "/v1/campaigns", "Create a campaign", "campaigns",
       (201, "The new draft campaign.", _json(ref(s.CampaignOut))),
       body=_body(s.CampaignCreate), errors=(401, 404, 409, 422), headers=_LOCATION),
    Op("get", "/v1/campaigns/{campaign}", "Get a campaign", "campaigns",
       (200, "The campaign.", _json(ref(s.CampaignOut))), params=(CAMPAIGN,), errors=(401, 404)),
    Op("get", "/v1/campaigns/{campaign}/preview", "Preview a campaign", "campaigns",
       (200, "The message one recipient would get and what tracking costs.",
        _json(ref(s.PreviewOut))),
       description="Tokens shown are freshly drawn and not stored.",
       params=(CAMPAIGN, query("contact", "Phone or external id (default: the first of the "
                                          "audience).")),
       errors=(401, 404)),
    Op("post", "/v1/campaigns/{campaign}/send", "Send a campaign", "sending",
       (200, "The send finished within `wait`: the job's final counts.",
        _json(ref(snd.SendJobOut))),
       description="Starts (or continues) the campaign's sending job in the server's "
       "background: wraps the campaign for every reachable contact of its audience (opted-out "
       "and invalid numbers are skipped and counted) and hands the messages to the provider at "
       "the job's rate, retrying refusals for now with backoff, never outside quiet hours. "
       "Waits up to `wait` seconds; 202 when the job is still going (follow it with `GET`). "
       "The body is optional; a running job keeps its settings unless given. 409 once sent, "
       "cancelled or paused (resume instead). See docs/providers.md, \"Sending jobs\".",
       params=(CAMPAIGN,
               query("provider", "`outbox` (default) or a provider the workspace configured "
                                 "(`GET /v1/providers`); the body's `provider` wins."),
               query("wait", f"Seconds to wait for the send to finish (0-{snd.MAX_WAIT:g}, "
                             f"default {snd.DEFAULT_WAIT:g}).",
                     {"type": "number", "minimum": 0, "maximum": snd.MAX_WAIT})),
       body={"required": False, "content": _json(ref(snd.SendIn))},
       errors=(401, 404, 409, 422),
       more=((202, "Still sending: the job's progress.", _json(ref(snd.SendJobOut))),)),
    Op("get", "/v1/campaigns/{campaign}/send", "A campaign's sending job", "sending",
       (200, "The job's state and its messages by what happened to them (`not_started` before "
        "any send).", _json(ref(snd.SendJobOut))),
       params=(CAMPAIGN,), errors=(401, 404)),
    Op("post", "/v1/campaigns/{campaign}/bots/finalize", "Finalize bot verdicts now", "bots",
       (200, "How many requests got their final verdict.", _json({
           "type": "object", "required": ["campaign", "finalized"],
           "additionalProperties": False,
           "properties": {"campaign": {"type": "string"},
                          "finalized": {"type": "integer", "minimum": 0}}})),
       description="Gives every stored request of the campaign its final bot verdict now "
       "(behaviour windows included) instead of after the settle window "
       "(`bot_settle_seconds`). Later requests are judged with these as neighbours but cannot "
       "change them.",
       params=(CAMPAIGN,), errors=(401, 404)),
    Op("post", "/v1/campaigns/{campaign}/pause", "Pause a send", "sending",
       (200, "The job, paused.", _json(ref(snd.SendJobOut))),
       description="The sender stops after the batch in hand (within about a second).",
       params=(CAMPAIGN,), errors=(401, 404, 409)),
    Op("post", "/v1/campaigns/{campaign}/resume", "Resume a paused send", "sending",
       (200, "The job, running again in the server's background.", _json(ref(snd.SendJobOut))),
       params=(CAMPAIGN,), errors=(401, 404, 409)),
    Op("post", "/v1/campaigns/{campaign}/cancel", "Cancel a send", "sending",
       (200, "The job, cancelled.", _json(ref(snd.SendJobOut))),
       description="Messages not yet handed to the provider become `cancelled`: never sent, "
       "not counted as delivered nor in CTR.",
       params=(CAMPAIGN,), errors=(401, 404, 409)),
    Op("post", "/v1/campaigns/{campaign}/release", "Decide about messages in doubt", "sending",
       (200, "The job after the decision.", _json(ref(snd.SendJobOut))),
       description="Messages handed to a provider that cannot say whether it took them are "
       "held as `unknown`: `resend` queues them again (a recipient may get two), "
       "`assume_sent` takes them as sent.",
       params=(CAMPAIGN,), body=_body(snd.ReleaseIn), errors=(401, 404, 409, 422)),
    Op("post", "/v1/campaigns/{campaign}/test-send", "Send a test message", "sending",
       (200, "The test message and what the provider answered.", _json(ref(snd.TestSendOut))),
       description="One message with real tracked links to `to`, personalized for a contact; "
       "marked as a test, it never counts in reports, exports or CTR.",
       params=(CAMPAIGN,), body=_body(snd.TestSendIn), errors=(401, 404, 409, 422)),
    Op("get", "/v1/campaigns/{campaign}/report", "Campaign report", "reports",
       (200, "Delivery and click counts, bot-filtered and raw.", _json(ref("CampaignReport"))),
       params=(CAMPAIGN,), errors=(401, 404)),
    Op("get", "/v1/campaigns/{campaign}/report/full", "Full campaign report", "reports",
       (200, "The report with timing, per-link, per-device, country and bot sections "
        "(docs/reports.md).", _json(_LOOSE)),
       params=(CAMPAIGN,), errors=(401, 404)),
    Op("get", "/v1/campaigns/{campaign}/recipients", "Recipients who clicked", "reports",
       (200, "A page of recipients with their clicks (docs/reports.md).", _json(_LOOSE)),
       params=(CAMPAIGN, query("search", "Phone or external id contains."), LIMIT, CURSOR),
       errors=(401, 404, 422)),
    Op("get", "/v1/reports/compare", "Compare campaigns", "reports",
       (200, "CTR and time to click per campaign (docs/reports.md).", _json(_LOOSE)),
       params=(SINCE, UNTIL)),
    Op("get", "/v1/messages", "List messages", "messages",
       (200, "A page of messages, oldest first.", _json(ref(s.MessagePage))),
       params=(LIMIT, CURSOR, CAMPAIGN_FILTER,
               query("status", "Only messages in this status.",
                     {"type": "string", "enum": ["queued", "sending", "sent", "delivered",
                                                 "failed", "undelivered", "cancelled",
                                                 "skipped", "unknown"]})),
       errors=(401, 404, 422)),
    Op("post", "/v1/messages/status", "Record delivery receipts", "messages",
       (200, "What the batch did.", _json(ref(s.ReceiptsOut))),
       description="Up to 10,000 receipts; a status only moves forward. A batch naming an "
       "unknown message id is rejected whole (422, one entry per item in `errors`) unless "
       "`skip_unknown=true`.",
       params=(query("skip_unknown", "Apply the known ids and list the unknown ones.",
                     {"type": "boolean", "default": False}),),
       body={"required": True, "content": _json(ref("ReceiptBatch"))}),
    Op("get", "/v1/messages/{message}", "Get a message", "messages",
       (200, "The message.", _json(ref(s.MessageOut))),
       params=(path("message", "The message id (`msg_…`)."),), errors=(401, 404)),
    Op("post", "/v1/wrap", "Wrap one message for your own sender", "wrap",
       (200, "The wrapped message; with `opted_out` no message was made: send nothing.",
        _json(ref(w.WrapOut))),
       description="Every URL of `text` becomes a tracked link; the message is stored (queued "
       "until a receipt, or sent with `mark_sent`) and counts in reports once receipts arrive "
       "at `POST /v1/messages/status`. The same campaign, recipient and `client_ref` (or "
       "`Idempotency-Key`) returns the same message; with another text it is 409 "
       "(docs/providers.md).",
       params=(_param("header", "Idempotency-Key", "The item's `client_ref`, as a header."),),
       body=_body(w.WrapIn), errors=(401, 404, 409, 422)),
    Op("post", "/v1/wrap/batch", "Wrap up to 10,000 messages", "wrap",
       (200, "The wrapped messages, in request order.", _json(ref(w.WrapBatchOut))),
       description="All or nothing: any bad item is a 422 naming each item (`/items/3/to`); "
       "nothing is written.",
       body=_body(w.WrapBatchIn), errors=(401, 404, 409, 422)),
    Op("post", "/v1/inbound", "Record an inbound SMS (opt-out keywords)", "opt-outs",
       (200, "The keyword the message is and the reply to send back.",
        _json(ref(w.InboundOut))),
       description="For your own gateway: a message that is exactly STOP, STOPALL, "
       "UNSUBSCRIBE, CANCEL, END or QUIT opts the sender out; START or UNSTOP back in; HELP "
       "gets the workspace's reply (docs/providers.md, \"Opt-outs\").",
       body=_body(w.InboundIn)),
    Op("post", "/v1/webhooks/twilio/inbound", "Twilio inbound message webhook", "opt-outs",
       (200, "TwiML: the workspace's reply, or an empty `<Response/>`.",
        {"text/xml": {"schema": {"type": "string"}}}),
       description="Set as the number's \"A message comes in\" webhook. No key: the "
       "`X-Twilio-Signature` must be valid for a Twilio account configured in a workspace "
       "(`POST /v1/providers`); keywords act as for `POST /v1/inbound`.",
       params=(_param("header", "X-Twilio-Signature", "Twilio's signature of the request."),),
       body={"required": True, "content": {"application/x-www-form-urlencoded": {
           "schema": _TWILIO_INBOUND}}},
       errors=(403, 422), auth=False),
    Op("post", "/v1/opt-outs", "Opt contacts out or back in", "opt-outs",
       (200, "What each change did, in request order.", _json(ref(w.OptOutBatchOut))),
       description="All or nothing; recorded in each contact's history with source `api`. An "
       "unknown phone becomes an opted-out contact.",
       body=_body(w.OptOutBatchIn)),
    Op("get", "/v1/opt-outs/replies", "Keyword replies", "opt-outs",
       (200, "What the workspace answers to HELP, opt-out and opt-in keywords.",
        _json(ref(w.KeywordRepliesIO))), errors=(401,)),
    Op("put", "/v1/opt-outs/replies", "Set keyword replies", "opt-outs",
       (200, "The replies now.", _json(ref(w.KeywordRepliesIO))),
       body=_body(w.KeywordRepliesIO)),
    Op("get", "/v1/contacts/{contact}/opt-outs", "A contact's opt-out history", "opt-outs",
       (200, "The state and every opt-out and opt-in, newest first.",
        _json(ref(w.OptOutHistoryOut))),
       params=(path("contact", "Phone (E.164, `+` encoded as `%2B`) or external id."),),
       errors=(401, 404)),
    Op("get", "/v1/clicks", "List clicks", "clicks",
       (200, "A page of requests on tracked links, oldest first.", _json(ref(s.ClickPage))),
       description="Every request is listed, bots included: `is_click` is false for HEAD "
       "probes, `verdict` says how it was judged (docs/bots.md).",
       params=(LIMIT, CURSOR, CAMPAIGN_FILTER, SINCE, UNTIL,
               query("verdict", "Only requests with this verdict.",
                     {"type": "string", "enum": ["human", "preview", "scanner", "automation",
                                                 "probe", "suspect"]})),
       errors=(401, 404, 422)),
    Op("get", "/v1/exports/clicks", "Export click events", "exports",
       (200, "The export, streamed (columns: docs/exports.md).", _EXPORT_CONTENT),
       params=_EXPORT_PARAMS, errors=(401, 404, 422)),
    Op("get", "/v1/exports/messages", "Export messages", "exports",
       (200, "The export, streamed; the time range applies to when messages were queued.",
        _EXPORT_CONTENT),
       params=_EXPORT_PARAMS, errors=(401, 404, 422)),
    Op("get", "/v1/providers", "List SMS providers", "providers",
       (200, "The workspace's configured providers, secrets masked.", _json(ref(s.ProviderList))),
       description="The built-in `outbox` is not listed (docs/providers.md)."),
    Op("post", "/v1/providers", "Configure an SMS provider", "providers",
       (201, "The new provider, secrets masked.", _json(ref(s.ProviderOut))),
       description="A Twilio account or a generic HTTP API (a preset such as `vonage` or "
       "`plivo` with its params, or the request, response and receipts written out). Secrets "
       "are given as values: a `${NAME}` reference to the server's environment is refused "
       "with 422 naming the option (only the operator's CLI may store references). The URL "
       "must be https and must not name a loopback, private, link-local or metadata address "
       "(unless the operator allows the network); every connection is checked again after DNS.",
       body=_body(s.ProviderCreate), errors=(401, 409, 422), headers=_LOCATION),
    Op("get", "/v1/providers/{name}", "Get an SMS provider", "providers",
       (200, "The provider, secrets masked.", _json(ref(s.ProviderOut))),
       params=(path("name", "The provider's name."),), errors=(401, 404)),
    Op("delete", "/v1/providers/{name}", "Remove an SMS provider", "providers",
       (204, "Removed; messages keep the provider's name.", {}),
       params=(path("name", "The provider's name."),), errors=(401, 404)),
    Op("get", "/v1/networks", "List network lists", "networks",
       (200, "A page of the workspace's network lists, by name.", _json(ref(s.NetworkListPage))),
       description="A workspace's own CIDR lists: its requests are judged with them on top of "
       "the installation's range file and the bundled dataset (docs/bots.md).",
       params=(LIMIT, CURSOR)),
    Op("get", "/v1/networks/{name}/ranges", "List a network list's ranges", "networks",
       (200, "A page of ranges, by CIDR text.", _json(ref(s.NetworkRangePage))),
       params=(NETWORK_LIST, LIMIT, CURSOR), errors=(401, 404, 422)),
    Op("post", "/v1/networks/{name}/ranges", "Add ranges to a network list", "networks",
       (200, "What was added; the list is created when new.", _json(ref(s.NetworkRangesAdded))),
       description="All or nothing: a bad range is a 422 naming each item (`/ranges/3/cidr`) "
       "and nothing is written. A range already in the list takes the new kind and owner. "
       "Kinds `hosting`, `cdn`, `crawler` and `scanner` count against a request (`NET_LISTED`, "
       "`NET_HOSTING`); `mobile` and `relay` mark addresses many people share (carrier NAT), "
       "which behavioural rules then treat with care. New requests use the list within a few "
       "seconds; `clicktrail bots reclassify` applies it to history.",
       params=(NETWORK_LIST,), body=_body(s.NetworkRangesAdd), errors=(401, 409, 422)),
    Op("delete", "/v1/networks/{name}/ranges", "Remove a range from a network list", "networks",
       (204, "Removed.", {}),
       params=(NETWORK_LIST, query("cidr", "The range to remove.", required=True)),
       errors=(401, 404, 422)),
    Op("delete", "/v1/networks/{name}", "Remove a network list", "networks",
       (204, "Removed with all its ranges.", {}), params=(NETWORK_LIST,), errors=(401, 404)),
    Op("post", "/v1/webhooks/twilio/status", "Twilio status callback", "providers",
       (200, "Read: what the receipt did (unknown messages are counted, not refused).",
        _json(ref(s.WebhookOut))),
       description="Called by Twilio (`status_callback`), not by people: no key, the "
       "`X-Twilio-Signature` must be valid for a configured Twilio account over the callback "
       "URL that account is configured with.",
       params=(_param("header", "X-Twilio-Signature", "Twilio's signature of the request."),),
       body={"required": True, "content": {"application/x-www-form-urlencoded": {
           "schema": _TWILIO_CALLBACK}}},
       errors=(403, 422), auth=False),
    Op("post", "/v1/webhooks/http/{provider_name}/status", "HTTP provider receipts",
       "providers",
       (200, "Read: what the receipts did (unknown messages are counted, not refused).",
        _json(ref(s.WebhookOut))),
       description="Called by the provider, not by people: no key, the request must carry "
       "the token or HMAC the provider's `receipts.auth` names. JSON or a form.",
       params=(path("provider_name", "The provider's name."),),
       body={"required": True, "content": {
           "application/json": {"schema": _LOOSE},
           "application/x-www-form-urlencoded": {"schema": _LOOSE}}},
       errors=(403, 422), auth=False),
    *CONVERSION_OPERATIONS,
)  # fmt: skip

_RECEIPT = {
    "type": "object",
    "required": ["message_id", "status"],
    "properties": {
        "message_id": {"type": "string", "description": "`msg_…`"},
        "status": {"type": "string", "enum": ["sent", "delivered", "failed", "undelivered"]},
        "at": {
            "description": "ISO 8601 (no zone: UTC) or Unix seconds; default now.",
            "anyOf": [{"type": "string"}, {"type": "number"}],
        },
    },
}
_RECEIPTS = {"type": "array", "minItems": 1, "maxItems": 10_000, "items": _RECEIPT}


@functools.cache
def document() -> dict[str, Any]:
    """Return the OpenAPI 3.1 document of the whole API."""
    inputs: list[tuple[str, Any, TypeAdapter[Any]]] = [
        (m.__name__, "validation" if m in REQUESTS else "serialization", TypeAdapter(m))
        for m in MODELS
    ]
    inputs.append(("CampaignReport", "serialization", TypeAdapter(CampaignReport)))
    top, defs = TypeAdapter.json_schemas(inputs, ref_template=REF)
    schemas: dict[str, Any] = dict(defs.get("$defs", {}))
    for (name, _mode), schema in top.items():
        schemas.setdefault(name, schema)
    schemas["ReceiptBatch"] = {
        "description": "Delivery receipts: an array, or an object with a `receipts` array.",
        "anyOf": [
            _RECEIPTS,
            {"type": "object", "required": ["receipts"], "properties": {"receipts": _RECEIPTS}},
        ],
    }
    paths: dict[str, dict[str, Any]] = {}
    for op in OPERATIONS:
        status, desc, content = op.ok
        ok_response: dict[str, Any] = {"description": desc, "content": content}
        if op.headers:
            ok_response["headers"] = op.headers
        responses: dict[str, Any] = {str(status): ok_response}
        for code, text, body in op.more:
            responses[str(code)] = {"description": text, "content": body}
        # Every body has a limit (413); everything but liveness needs the database (503).
        errors = (*op.errors, *((413,) if op.body is not None else ()))
        for code in (*errors, *((503,) if op.path != "/healthz" else ())):
            responses[str(code)] = {
                "description": _ERRORS[code],
                "content": {PROBLEM: {"schema": ref(s.ProblemDetails)}},
            }
            if code == 503:
                responses[str(code)]["headers"] = _RETRY_AFTER
        entry: dict[str, Any] = {
            "operationId": f"{op.method}_{op.path}".replace("/", "_").replace("{", "")
            .replace("}", "").replace(".", "_").strip("_"),
            "summary": op.summary,
            "tags": [op.tag],
            "parameters": list(op.params),
            "responses": responses,
        }  # fmt: skip
        if op.description:
            entry["description"] = op.description
        if op.body is not None:
            entry["requestBody"] = op.body
        entry["security"] = [{"bearer": []}] if op.auth else []
        paths.setdefault(op.path, {})[op.method] = entry
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "clicktrail API",
            "version": "2",  # docs/api.md says what changed
            "description": "SMS link tracking: workspaces, domains, contacts, campaigns, "
            "messages, clicks, reports and exports. Errors are RFC 9457 problem details with "
            "a stable `code` and the `field` at fault. Lists page by cursor: "
            "`?limit=&cursor=` → `{items, next_cursor}`.",
        },
        "servers": [{"url": "/"}],
        "tags": [{"name": t} for t in dict.fromkeys(op.tag for op in OPERATIONS)],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "A workspace API key (`clicktrail keys create`).",
                }
            },
        },
    }


_ERRORS = {
    400: "A required query parameter is missing.",
    401: "No key, a malformed header, or an unknown, revoked or expired key.",
    403: "No configured provider signed the request.",
    404: "Not found in the key's workspace.",
    409: "Clashes with existing state.",
    413: "The body is over the route's limit (`too_large`, with the `limit` in bytes); it "
    "was not read further.",
    422: "A parameter or the body is wrong; `field` (and `errors`) name it. Nothing was written.",
    503: "The database is not answering (`storage_unavailable`); try again after `Retry-After`.",
}
_RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before trying again.",
        "schema": {"type": "integer"},
    },
}


# -- the reference page -------------------------------------------------------------------------

_CSS = """
body{font:15px/1.5 system-ui,sans-serif;max-width:64rem;margin:2rem auto;padding:0 1rem;
color:#1d2430}
h1{font-size:1.6rem}h2{margin-top:2.5rem;border-bottom:1px solid #dde;text-transform:capitalize}
.op{border:1px solid #dde;border-radius:6px;margin:1rem 0;padding:.6rem 1rem}
.m{display:inline-block;min-width:3.5rem;font-weight:700;text-transform:uppercase}
.get{color:#1565c0}.post{color:#2e7d32}code,pre{font:13px ui-monospace,monospace}
pre{background:#f5f6f8;padding:.6rem;overflow:auto;max-height:24rem}
table{border-collapse:collapse;margin:.4rem 0}td,th{border:1px solid #e3e5ea;padding:.2rem .5rem;
text-align:left;vertical-align:top}nav a{margin-right:.8rem}
"""


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _schema_link(schema: dict[str, Any]) -> str:
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return f'<a href="#schema-{_e(name)}">{_e(name)}</a>'
    return f"<code>{_e(json.dumps(schema))}</code>"


def render_docs(doc: dict[str, Any]) -> str:
    """Return the reference page of `doc` as one self-contained HTML document."""
    out = [
        "<!doctype html><html lang=en><head><meta charset=utf-8>",
        f"<title>{_e(doc['info']['title'])}</title>",
        '<meta name=viewport content="width=device-width,initial-scale=1">',
        f"<style>{_CSS}</style></head><body>",
        f"<h1>{_e(doc['info']['title'])}</h1><p>{_e(doc['info']['description'])}</p>",
        "<p>Authenticate with <code>Authorization: Bearer &lt;api key&gt;</code>. "
        'The machine-readable document: <a href="/openapi.json">/openapi.json</a>.</p><nav>',
    ]
    tags = [t["name"] for t in doc["tags"]]
    out += [f'<a href="#tag-{_e(t)}">{_e(t)}</a>' for t in tags]
    out.append('<a href="#schemas">schemas</a></nav>')
    for tag in tags:
        out.append(f'<h2 id="tag-{_e(tag)}">{_e(tag)}</h2>')
        for p, methods in doc["paths"].items():
            for method, op in methods.items():
                if tag not in op["tags"]:
                    continue
                out.append(
                    f'<div class=op id="{_e(op["operationId"])}"><div><span class="m {_e(method)}">'
                    f"{_e(method)}</span> <code>{_e(p)}</code> — {_e(op['summary'])}"
                    + ("" if op["security"] else " <em>(no key)</em>")
                    + "</div>"
                )
                if "description" in op:
                    out.append(f"<p>{_e(op['description'])}</p>")
                if op["parameters"]:
                    out.append("<table><tr><th>parameter</th><th>in</th><th>schema</th>"
                               "<th>meaning</th></tr>")  # fmt: skip
                    for prm in op["parameters"]:
                        req = " (required)" if prm.get("required") else ""
                        out.append(
                            f"<tr><td><code>{_e(prm['name'])}</code>{req}</td>"
                            f"<td>{_e(prm['in'])}</td><td>{_schema_link(prm['schema'])}</td>"
                            f"<td>{_e(prm['description'])}</td></tr>"
                        )
                    out.append("</table>")
                if "requestBody" in op:
                    for media, c in op["requestBody"]["content"].items():
                        out.append(
                            f"<p>Body <code>{_e(media)}</code>: {_schema_link(c['schema'])}</p>"
                        )
                out.append("<table><tr><th>status</th><th>content</th><th>when</th></tr>")
                for code, r in op["responses"].items():
                    content = ", ".join(
                        f"<code>{_e(media)}</code> {_schema_link(c['schema'])}"
                        for media, c in r.get("content", {}).items()
                    )
                    out.append(
                        f"<tr><td>{_e(code)}</td><td>{content}</td>"
                        f"<td>{_e(r['description'])}</td></tr>"
                    )
                out.append("</table></div>")
    out.append('<h2 id="schemas">schemas</h2>')
    for name, schema in doc["components"]["schemas"].items():
        out.append(
            f'<h3 id="schema-{_e(name)}">{_e(name)}</h3>'
            f"<pre>{_e(json.dumps(schema, indent=2, ensure_ascii=False))}</pre>"
        )
    out.append("</body></html>")
    return "\n".join(out)


def routes() -> list[BaseRoute]:
    """Return the routes of ``/openapi.json`` and ``/docs``."""

    async def openapi_json(_request: Request) -> Response:
        return JSONResponse(document())

    async def docs(_request: Request) -> Response:
        return HTMLResponse(
            _page(),
            headers={
                # Nothing to load from anywhere: the page is text and inline CSS only.
                "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
                "X-Content-Type-Options": "nosniff",
            },
        )

    return [
        Route("/openapi.json", openapi_json, methods=["GET"]),
        Route("/docs", docs, methods=["GET"]),
    ]


@functools.cache
def _page() -> str:
    return render_docs(document())
