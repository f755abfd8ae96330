"""Automations: a workspace's rules (docs/automations.md), and what happens when one fires.

A rule (domain/automations.py) is checked whole when it is created or changed: its parts, and
what it names in the workspace: the campaigns (they exist), the send's template (its
placeholders are contact fields), the webhook endpoint (it exists), the segments (they exist;
one a run adds contacts to or removes them from is a static list). A segment deleted later is
looked up again when a run is due (a missing one skips the run, saying so).

Runs: scheduled from the event outbox and listed in services/automation_runs.py, carried out
when due in services/automation_fire.py.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Protocol

from clicktrail.domain import automations as au
from clicktrail.domain.automations import Action, Cap, Conditions, Rule, Trigger
from clicktrail.domain.errors import InvalidInput, NotFound
from clicktrail.domain.ids import new_public_id
from clicktrail.domain.models import LINK_MACROS, Workspace
from clicktrail.domain.segments import Segment
from clicktrail.domain.sending import QuietHours
from clicktrail.domain.template import STANDARD_FIELDS, check_fields, parse_template
from clicktrail.services import segments
from clicktrail.services.contacts import ContactStore
from clicktrail.services.keys import parse_duration
from clicktrail.services.listing import Page, decode_cursor, page_of
from clicktrail.services.segments import SegmentRepos
from clicktrail.services.webhooks import WebhookStore

MAX_AUTOMATIONS = 100  # per workspace
PREFIX = "au"
NOT_FOUND = "automation not found in this workspace"


@dataclass(frozen=True, slots=True)
class Automation:
    """A stored automation."""

    id: int
    public_id: str
    workspace_id: int
    name: str
    enabled: bool
    rule: Rule
    created_us: int
    updated_us: int


@dataclass(frozen=True, slots=True)
class AutomationChange:
    """What an update changes (None: left as it is). A rule given replaces the rule whole."""

    name: str | None = None
    enabled: bool | None = None
    rule: Rule | None = None


class AutomationStore(Protocol):
    """A workspace's automations (implemented by `storage.automations.AutomationQueries`).
    Every method is scoped to `workspace_id`."""

    def add_automation(self, automation: Automation, max_automations: int) -> Automation:
        """Store `automation` (its `id` ignored) and return it as stored; raises `Conflict`
        for a name the workspace uses or past `max_automations`."""
        ...

    def automation(self, workspace_id: int, public_id: str) -> Automation | None:
        """Return the workspace's automation `public_id` (None: no such automation here)."""
        ...

    def automations_page(
        self, workspace_id: int, after: str | None, limit: int
    ) -> list[Automation]:
        """Return up to `limit` automations after the one named `after`, oldest first."""
        ...

    def update_automation(
        self, workspace_id: int, public_id: str, change: AutomationChange, now_us: int
    ) -> Automation | None:
        """Apply `change` and return the automation as it is now (None: not found); raises
        `Conflict` for a name the workspace uses."""
        ...

    def delete_automation(self, workspace_id: int, public_id: str) -> bool:
        """Delete the automation; False when not found."""
        ...


class AutomationRepos(SegmentRepos, Protocol):
    """The stores creating or changing a rule checks it against (a `bootstrap.Container`)."""

    @property
    def automations(self) -> AutomationStore:
        """The automations."""
        ...

    @property
    def contacts(self) -> ContactStore:
        """Contacts (their fields are the send template's placeholders)."""
        ...

    @property
    def webhooks(self) -> WebhookStore:
        """Webhook endpoints (the webhook action names one)."""
        ...


def trigger_of(
    kind: str, campaign: str | None, link: int | None, within: str | int | None
) -> Trigger:
    """Return the trigger of wire or command-line values (`within` a duration: ``2d``, or
    seconds); raises `InvalidInput` naming ``trigger.within`` for a bad one."""
    within_us = None if within is None else parse_duration(within, "trigger.within")
    return Trigger(kind, campaign, link, within_us)


def conditions_of(
    quiet_hours: str | None,
    cap: tuple[int, str] | None,
    segment: str | None,
    in_segment: bool = True,
) -> Conditions:
    """Return the conditions of wire or command-line values (`quiet_hours` ``HH:MM-HH:MM``,
    `cap` (max, ``day``/``week``)); raises `InvalidInput` naming the field."""
    quiet = None
    if quiet_hours is not None:
        try:
            quiet = QuietHours.parse(quiet_hours)
        except InvalidInput as e:
            raise InvalidInput(e.message, field="conditions.quiet_hours") from None
    return Conditions(quiet, None if cap is None else Cap(*cap), segment, in_segment)


def delay_of(delay: str | int) -> int:
    """Return the delay in µs of a duration (``1h``, or seconds); `InvalidInput` names it."""
    return parse_duration(delay, "delay")


def _segment(
    repos: AutomationRepos, workspace: Workspace, slug: str, field: str, now_us: int
) -> Segment:
    try:
        return segments.get_segment(repos, workspace, slug, now_us)
    except NotFound:
        raise NotFound(f"{field}: segment {slug!r} not found", field=field) from None


def check_in_workspace(
    repos: AutomationRepos, workspace: Workspace, rule: Rule, now_us: int
) -> Rule:
    """Return `rule` if what it names exists in the workspace; raises `NotFound` for a campaign,
    endpoint or segment that does not, `InvalidInput` for a template that does not parse or
    uses an unknown placeholder, or a segment action on a saved filter (each naming the
    field)."""
    named = [("trigger.campaign", rule.trigger.campaign), ("action.campaign", rule.action.campaign)]
    for field, slug in named:
        if slug is not None and repos.campaigns.find_campaign(workspace.id, slug) is None:
            raise NotFound(f"{field}: campaign {slug!r} not found", field=field)
    if rule.action.template is not None:
        try:
            parsed = parse_template(rule.action.template)
            known = set(STANDARD_FIELDS) | set(LINK_MACROS)
            check_fields(parsed, known | repos.contacts.attribute_names(workspace.id))
        except InvalidInput as e:
            raise InvalidInput(
                f"action.template: {e.message}", field="action.template", problems=e.problems
            ) from None
    endpoint = rule.action.endpoint
    if endpoint is not None and repos.webhooks.endpoint(workspace.id, endpoint) is None:
        raise NotFound(f"action.endpoint: {endpoint!r} not found", field="action.endpoint")
    if rule.conditions.segment is not None:
        _segment(repos, workspace, rule.conditions.segment, "conditions.segment", now_us)
    if rule.action.segment is not None:
        seg = _segment(repos, workspace, rule.action.segment, "action.segment", now_us)
        if seg.kind != "static":
            raise InvalidInput(
                f"action.segment: {seg.slug!r} is a saved filter, whose members follow its "
                "conditions; a run adds to or removes from a static list",
                field="action.segment",
            )
    return rule


def create_automation(
    repos: AutomationRepos,
    workspace: Workspace,
    name: str,
    rule: Rule,
    now_us: int,
    *,
    enabled: bool = True,
) -> Automation:
    """Create an automation from a checked `rule` (`domain.automations.check_rule`); return it.

    Raises `InvalidInput`/`NotFound` naming the field (see `check_in_workspace`), `Conflict`
    for a name the workspace uses or past `MAX_AUTOMATIONS`."""
    a = Automation(
        id=0, public_id=new_public_id(PREFIX), workspace_id=workspace.id,
        name=au.check_name(name), enabled=enabled,
        rule=check_in_workspace(repos, workspace, rule, now_us), created_us=now_us, updated_us=now_us,
    )  # fmt: skip
    return repos.automations.add_automation(a, MAX_AUTOMATIONS)


def get_automation(store: AutomationStore, workspace: Workspace, public_id: str) -> Automation:
    """Return the workspace's automation `public_id`; raises `NotFound` (another workspace's
    included)."""
    found = store.automation(workspace.id, public_id) if public_id.startswith("au_") else None
    if found is None:
        raise NotFound(NOT_FOUND, field="automation")
    return found


def list_automations(
    store: AutomationStore, workspace: Workspace, limit: int, cursor: str | None
) -> Page[Automation]:
    """Return a page of the workspace's automations, oldest first."""
    after = decode_cursor("automations", cursor)
    rows = store.automations_page(workspace.id, after, limit + 1)
    return page_of("automations", rows, limit, lambda r: r.public_id)


def update_automation(
    repos: AutomationRepos,
    workspace: Workspace,
    public_id: str,
    change: AutomationChange,
    now_us: int,
) -> Automation:
    """Change an automation; return it as it is now. Raises `InvalidInput`/`NotFound` naming
    the field, `Conflict` for a name in use."""
    get_automation(repos.automations, workspace, public_id)
    checked = replace(
        change,
        name=None if change.name is None else au.check_name(change.name),
        rule=None
        if change.rule is None
        else check_in_workspace(repos, workspace, change.rule, now_us),
    )
    done = repos.automations.update_automation(workspace.id, public_id, checked, now_us)
    if done is None:
        raise NotFound(NOT_FOUND, field="automation")
    return done


def delete_automation(store: AutomationStore, workspace: Workspace, public_id: str) -> None:
    """Delete an automation. Raises `NotFound`."""
    get_automation(store, workspace, public_id)
    if not store.delete_automation(workspace.id, public_id):
        raise NotFound(NOT_FOUND, field="automation")


__all__ = [
    "Action",
    "Automation",
    "AutomationChange",
    "AutomationRepos",
    "AutomationStore",
    "Conditions",
    "Trigger",
    "conditions_of",
    "create_automation",
    "delay_of",
    "delete_automation",
    "get_automation",
    "list_automations",
    "trigger_of",
    "update_automation",
]
