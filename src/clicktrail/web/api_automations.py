"""A workspace's automations over HTTP (``/v1/automations``): list, create, get, change,
delete, and each one's runs (docs/automations.md).

Thin handlers: parse the request, call `services.automations`, shape the answer. Every call is
scoped to the API key's workspace: another workspace's automation ids answer 404, like ids that
do not exist.
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute

from clicktrail.domain import automations as au
from clicktrail.domain.automations import Action, Conditions, Rule, Trigger
from clicktrail.domain.models import Workspace
from clicktrail.services import automation_runs, automations, keys, listing
from clicktrail.services.automation_runs import Run, RunStore
from clicktrail.services.automations import Automation, AutomationChange, AutomationRepos
from clicktrail.services.clock import now_us
from clicktrail.services.exports import iso_utc
from clicktrail.services.keys import KeyAuthStore
from clicktrail.web import schemas as s
from clicktrail.web import schemas_automations as sa_
from clicktrail.web.bodies import read_json
from clicktrail.web.routing import CURSOR, LIMIT, LOCATION, ApiRoute, Op, Reply, path, query

MAX_BODY = 16384
AUTOMATION = path("automation", "The automation's id (`au_…`), as lists show it.")


def _trigger(t: sa_.TriggerIn) -> Trigger:
    return automations.trigger_of(t.kind, t.campaign, t.link, t.within)


def _conditions(c: sa_.ConditionsIn) -> Conditions:
    cap = None if c.frequency_cap is None else (c.frequency_cap.max, c.frequency_cap.per)
    return automations.conditions_of(c.quiet_hours, cap, c.segment, c.in_segment)


def _action(a: sa_.ActionIn) -> Action:
    return Action(a.kind, a.template, a.campaign, a.endpoint, a.segment)


def new_rule(b: sa_.AutomationCreate) -> Rule:
    """Return the rule a create body asks for, checked."""
    return au.check_rule(
        _trigger(b.trigger), automations.delay_of(b.delay), _conditions(b.conditions),
        _action(b.action),
    )  # fmt: skip


def changed_rule(b: sa_.AutomationUpdate, current: Rule) -> Rule | None:
    """Return the rule an update asks for (parts not given taken from `current`), checked;
    None when it changes no part of the rule."""
    if b.trigger is None and b.delay is None and b.conditions is None and b.action is None:
        return None
    return au.check_rule(
        current.trigger if b.trigger is None else _trigger(b.trigger),
        current.delay_us if b.delay is None else automations.delay_of(b.delay),
        current.conditions if b.conditions is None else _conditions(b.conditions),
        current.action if b.action is None else _action(b.action),
    )


def automation_out(a: Automation) -> sa_.AutomationOut:
    """Return the wire shape of `a`."""
    r = au.rule_json(a.rule)
    t, c, x = r["trigger"], r["conditions"], r["action"]
    return sa_.AutomationOut(
        id=a.public_id, name=a.name, enabled=a.enabled,
        trigger=sa_.TriggerOut(kind=t["kind"], campaign=t.get("campaign"), link=t.get("link"),
                               within=t.get("within")),
        delay=r["delay"],
        conditions=sa_.ConditionsOut(
            quiet_hours=c.get("quiet_hours"),
            frequency_cap=None if "frequency_cap" not in c else sa_.CapOut(**c["frequency_cap"]),
            segment=c.get("segment"), in_segment=c.get("in_segment")),
        action=sa_.ActionOut(kind=x["kind"], template=x.get("template"),
                             campaign=x.get("campaign"), endpoint=x.get("endpoint"),
                             segment=x.get("segment")),
        created_at=iso_utc(a.created_us) or "", updated_at=iso_utc(a.updated_us) or "",
    )  # fmt: skip


def run_out(r: Run) -> sa_.RunOut:
    """Return the wire shape of a run."""
    return sa_.RunOut(
        id=r.public_id, automation=r.automation, phone=r.phone, campaign=r.campaign,
        trigger=r.trigger_key, triggered_at=iso_utc(r.trigger_us) or "",
        due_at=iso_utc(r.due_us) or "", state=r.state,  # type: ignore[arg-type]
        reason=r.reason, attempts=r.attempts, fired_at=iso_utc(r.fired_us),
        message=r.result if (r.result or "").startswith("msg_") else None,
        created_at=iso_utc(r.created_us) or "", updated_at=iso_utc(r.updated_us) or "",
    )  # fmt: skip


def routes(auth: KeyAuthStore, repos: AutomationRepos, runs: RunStore) -> list[BaseRoute]:
    """Return the automation routes: `auth` authenticates, `repos` keeps the automations and
    what rules name (campaigns, contacts' fields, webhook endpoints), `runs` their runs."""

    def workspace(request: Request) -> Workspace:
        return keys.authenticate(auth, request.headers.get("authorization"))

    def automation_id(request: Request) -> str:
        return str(request.path_params["automation"])

    def list_automations(request: Request) -> Response:
        ws = workspace(request)
        limit = listing.page_limit(request.query_params.get("limit"))
        page = automations.list_automations(
            repos.automations, ws, limit, request.query_params.get("cursor")
        )
        out = sa_.AutomationPage(
            items=[automation_out(x) for x in page.items], next_cursor=page.next_cursor
        )
        return JSONResponse(out.model_dump(mode="json"))

    async def create_automation(request: Request) -> Response:
        ws = await run_in_threadpool(workspace, request)
        b = s.parse_body(sa_.AutomationCreate, await read_json(request, MAX_BODY))
        rule = new_rule(b)
        a = await run_in_threadpool(
            lambda: automations.create_automation(
                repos, ws, b.name, rule, now_us(), enabled=b.enabled
            )
        )
        return JSONResponse(
            automation_out(a).model_dump(mode="json"),
            status_code=201,
            headers={"Location": f"/v1/automations/{a.public_id}"},
        )

    def get_automation(request: Request) -> Response:
        ws = workspace(request)
        a = automations.get_automation(repos.automations, ws, automation_id(request))
        return JSONResponse(automation_out(a).model_dump(mode="json"))

    async def update_automation(request: Request) -> Response:
        ws = await run_in_threadpool(workspace, request)
        b = s.parse_body(sa_.AutomationUpdate, await read_json(request, MAX_BODY))

        def change() -> Automation:
            current = automations.get_automation(repos.automations, ws, automation_id(request))
            c = AutomationChange(name=b.name, enabled=b.enabled, rule=changed_rule(b, current.rule))
            return automations.update_automation(repos, ws, current.public_id, c, now_us())

        a = await run_in_threadpool(change)
        return JSONResponse(automation_out(a).model_dump(mode="json"))

    def list_runs(request: Request) -> Response:
        ws = workspace(request)
        limit = listing.page_limit(request.query_params.get("limit"))
        page = automation_runs.list_runs(
            repos.automations, runs, ws, automation_id(request), limit,
            request.query_params.get("cursor"), request.query_params.get("state"),
        )  # fmt: skip
        out = sa_.RunPage(items=[run_out(x) for x in page.items], next_cursor=page.next_cursor)
        return JSONResponse(out.model_dump(mode="json"))

    def delete_automation(request: Request) -> Response:
        ws = workspace(request)
        automations.delete_automation(repos.automations, ws, automation_id(request))
        return Response(status_code=204)

    return [
        ApiRoute("/v1/automations", list_automations, "GET", Op(
            "List automations", "automations",
            Reply(200, "A page of the workspace's automations, oldest first.",
                  sa_.AutomationPage),
            params=(LIMIT, CURSOR))),
        ApiRoute("/v1/automations", create_automation, "POST", Op(
            "Create an automation", "automations",
            Reply(201, "The new automation.", sa_.AutomationOut, LOCATION),
            description="The rule is checked whole: each trigger kind takes the fields it "
            "needs and no others, a send needs a campaign (the action's or the trigger's), "
            "the campaigns, the webhook endpoint and the segments must exist in the workspace "
            "(404 naming the field), a segment action needs a static segment, the template's "
            "placeholders must be contact fields. At most 100 "
            "automations per workspace, names unique (409).",
            body=sa_.AutomationCreate, errors=(401, 404, 409, 422))),
        ApiRoute("/v1/automations/{automation}", get_automation, "GET", Op(
            "Get an automation", "automations",
            Reply(200, "The automation.", sa_.AutomationOut),
            params=(AUTOMATION,), errors=(401, 404))),
        ApiRoute("/v1/automations/{automation}", update_automation, "PATCH", Op(
            "Change an automation", "automations",
            Reply(200, "The automation as it is now.", sa_.AutomationOut),
            description="Absent fields are left as they are; a trigger, conditions or action "
            "given replaces that part whole, and the rule is checked whole again.",
            params=(AUTOMATION,), body=sa_.AutomationUpdate, errors=(401, 404, 409, 422))),
        ApiRoute("/v1/automations/{automation}", delete_automation, "DELETE", Op(
            "Delete an automation", "automations",
            Reply(204, "Deleted."),
            params=(AUTOMATION,), errors=(401, 404))),
        ApiRoute("/v1/automations/{automation}/runs", list_runs, "GET", Op(
            "List an automation's runs", "automations",
            Reply(200, "A page of its runs, newest first: what it fired, what is pending, "
                  "what was cancelled or skipped and why.", sa_.RunPage),
            params=(AUTOMATION, LIMIT, CURSOR,
                    query("state", "Only runs in this state: pending, fired, cancelled, "
                          "skipped, failed.")),
            errors=(401, 404, 422))),
    ]  # fmt: skip
