"""Automations: rules that turn events into actions (docs/automations.md).

A rule is a trigger (what starts a run for a contact), a delay, conditions checked when the run
is due, and one action. This module is pure: the rule's shape and its checks, which outbox
event (domain/events.py) starts or cancels a run, the run's idempotency key, when it is due,
and what to do once it is (`decide`). Storage keeps the rules; services/automations.py feeds
events in and carries decisions out.

Triggers (`campaign` a campaign's slug, `link` a link's number in its template, from 1):

* ``clicked``: a counted click (a person's, docs/bots.md) on a link of `campaign` (`link`, or
  any of its links). A bot's click never starts a run; a click re-classified as a bot's
  cancels the run it started if it has not run.
* ``not_clicked``: a message of `campaign` was delivered and its contact made no counted click
  on it (on `link`) within `within`.
* ``clicked_no_conversion``: a counted click as for ``clicked``, and no conversion of the
  contact within `within` of it.
* ``delivered``: a message (of `campaign`, or of any campaign) was delivered.
* ``opted_in``: the contact opted in again.

A run is due `within` (the ``…_within`` triggers) plus `delay` after its trigger event. Then:
a contact who opted out never gets a message (the run is cancelled), one outside the segment
condition is skipped, a run past the frequency cap is skipped, and one in quiet hours waits for
their end in the contact's time zones.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Any, Literal

from clicktrail.domain import events as ev
from clicktrail.domain.errors import InvalidInput
from clicktrail.domain.report import is_counted
from clicktrail.domain.sending import QuietHours
from clicktrail.domain.slugs import check_slug

CLICKED = "clicked"
NOT_CLICKED = "not_clicked"
CLICKED_NO_CONVERSION = "clicked_no_conversion"
DELIVERED = "delivered"
OPTED_IN = "opted_in"
TRIGGERS = (CLICKED, NOT_CLICKED, CLICKED_NO_CONVERSION, DELIVERED, OPTED_IN)
WITHIN_TRIGGERS = (NOT_CLICKED, CLICKED_NO_CONVERSION)  # need `within`; nothing else takes it
CAMPAIGN_TRIGGERS = (CLICKED, NOT_CLICKED, CLICKED_NO_CONVERSION)  # need `campaign`
LINK_TRIGGERS = CAMPAIGN_TRIGGERS  # may name a link

SEND = "send"
WEBHOOK = "webhook"
ADD_TO_SEGMENT = "add_to_segment"
REMOVE_FROM_SEGMENT = "remove_from_segment"
ACTIONS = (SEND, WEBHOOK, ADD_TO_SEGMENT, REMOVE_FROM_SEGMENT)

DAY_US = 86_400_000_000
CAP_PERIODS = {"day": DAY_US, "week": 7 * DAY_US}
MAX_WAIT_US = 90 * DAY_US  # longest `within` and `delay`
MIN_WITHIN_US = 60_000_000  # a minute
MAX_CAP = 100
MAX_LINK = 100
MAX_TEMPLATE = 1600
MAX_NAME = 100

Verdict = Literal["fire", "cancel", "skip", "wait"]


@dataclass(frozen=True, slots=True)
class Trigger:
    """What starts a run: `kind` (one of `TRIGGERS`), its campaign, link and window."""

    kind: str
    campaign: str | None = None
    link: int | None = None
    within_us: int | None = None


@dataclass(frozen=True, slots=True)
class Cap:
    """At most `max` automated messages per contact per `per` (``day`` or ``week``)."""

    max: int
    per: str

    @property
    def period_us(self) -> int:
        """The cap's period in µs (a rolling window ending at the run)."""
        return CAP_PERIODS[self.per]


@dataclass(frozen=True, slots=True)
class Conditions:
    """What must hold when a run is due (the opt-out rule always holds for messages)."""

    quiet_hours: QuietHours | None = None
    cap: Cap | None = None
    segment: str | None = None
    in_segment: bool = True


@dataclass(frozen=True, slots=True)
class Action:
    """What a run does: send `template` through `campaign`'s provider, call the webhook
    endpoint `endpoint`, or add the contact to (remove it from) `segment`."""

    kind: str
    template: str | None = None
    campaign: str | None = None
    endpoint: str | None = None
    segment: str | None = None


@dataclass(frozen=True, slots=True)
class Rule:
    """A checked rule (`check_rule`)."""

    trigger: Trigger
    delay_us: int
    conditions: Conditions
    action: Action

    def send_campaign(self) -> str | None:
        """The campaign whose provider a send goes through: the action's, or the trigger's
        (None for ``delivered`` of any campaign: the delivered message's campaign)."""
        if self.action.kind != SEND:
            return None
        return self.action.campaign or self.trigger.campaign


def check_name(name: str) -> str:
    """Return `name` stripped; raises `InvalidInput` for an empty or too long one."""
    name = name.strip()
    if not name or len(name) > MAX_NAME or "\x00" in name:
        raise InvalidInput(f"name must be 1 to {MAX_NAME} characters", field="name")
    return name


def _wait(value: int | None, field: str, low: int = 0) -> None:
    if value is not None and not low <= value <= MAX_WAIT_US:
        low_text = "a minute" if low else "0"
        raise InvalidInput(f"{field} must be from {low_text} to 90 days", field=field)


def _slug(value: str, field: str, what: str) -> str:
    try:
        return check_slug(value, what)
    except InvalidInput as e:
        raise InvalidInput(e.message, field=field) from None


def check_trigger(t: Trigger) -> Trigger:
    """Return `t` if its fields fit its kind; raises `InvalidInput` naming the field."""
    if t.kind not in TRIGGERS:
        raise InvalidInput(
            f"trigger.kind {t.kind!r} is not one of {', '.join(TRIGGERS)}", field="trigger.kind"
        )
    if t.kind in CAMPAIGN_TRIGGERS and t.campaign is None:
        raise InvalidInput(f"trigger {t.kind} needs a campaign", field="trigger.campaign")
    if t.kind == OPTED_IN and t.campaign is not None:
        raise InvalidInput("trigger opted_in takes no campaign", field="trigger.campaign")
    if t.campaign is not None:
        _slug(t.campaign, "trigger.campaign", "campaign")
    if t.link is not None:
        if t.kind not in LINK_TRIGGERS:
            raise InvalidInput(f"trigger {t.kind} takes no link", field="trigger.link")
        if not 1 <= t.link <= MAX_LINK:
            raise InvalidInput(
                f"trigger.link is a link's number in the template, 1 to {MAX_LINK}",
                field="trigger.link",
            )
    if t.kind in WITHIN_TRIGGERS:
        if t.within_us is None:
            raise InvalidInput(f"trigger {t.kind} needs within", field="trigger.within")
        _wait(t.within_us, "trigger.within", MIN_WITHIN_US)
    elif t.within_us is not None:
        raise InvalidInput(f"trigger {t.kind} takes no within", field="trigger.within")
    return t


def check_conditions(c: Conditions) -> Conditions:
    """Return `c` if its cap and segment are valid; raises `InvalidInput` naming the field."""
    if c.cap is not None:
        if c.cap.per not in CAP_PERIODS:
            raise InvalidInput(
                f"conditions.frequency_cap.per must be day or week, not {c.cap.per!r}",
                field="conditions.frequency_cap.per",
            )
        if not 1 <= c.cap.max <= MAX_CAP:
            raise InvalidInput(
                f"conditions.frequency_cap.max must be from 1 to {MAX_CAP}",
                field="conditions.frequency_cap.max",
            )
    if c.segment is not None:
        _slug(c.segment, "conditions.segment", "segment")
    elif not c.in_segment:
        raise InvalidInput(
            "conditions.in_segment needs conditions.segment", field="conditions.in_segment"
        )
    return c


def check_action(a: Action) -> Action:
    """Return `a` if it holds what its kind needs and nothing else; raises `InvalidInput`."""
    if a.kind not in ACTIONS:
        raise InvalidInput(
            f"action.kind {a.kind!r} is not one of {', '.join(ACTIONS)}", field="action.kind"
        )
    needs = {SEND: "template", WEBHOOK: "endpoint"}.get(a.kind, "segment")
    given = {"template": a.template, "campaign": a.campaign, "endpoint": a.endpoint,
             "segment": a.segment}  # fmt: skip
    allowed = {needs, "campaign"} if a.kind == SEND else {needs}
    for name, value in given.items():
        if value is not None and name not in allowed:
            raise InvalidInput(f"action {a.kind} takes no {name}", field=f"action.{name}")
    if given[needs] is None or not str(given[needs]).strip():
        raise InvalidInput(f"action {a.kind} needs {needs}", field=f"action.{needs}")
    if a.template is not None and (len(a.template) > MAX_TEMPLATE or "\x00" in a.template):
        raise InvalidInput(
            f"action.template must be at most {MAX_TEMPLATE} characters", field="action.template"
        )
    if a.campaign is not None:
        _slug(a.campaign, "action.campaign", "campaign")
    if a.segment is not None:
        _slug(a.segment, "action.segment", "segment")
    if a.endpoint is not None and not (a.endpoint.startswith("ep_") and len(a.endpoint) <= 40):
        raise InvalidInput(
            "action.endpoint is a webhook endpoint's id (ep_…)", field="action.endpoint"
        )
    return a


def check_rule(trigger: Trigger, delay_us: int, conditions: Conditions, action: Action) -> Rule:
    """Return the rule if every part is valid and they fit together; raises `InvalidInput`
    naming the field (a send after ``opted_in`` names the campaign whose provider sends)."""
    rule = Rule(
        check_trigger(trigger), delay_us, check_conditions(conditions), check_action(action)
    )
    _wait(delay_us, "delay")
    if action.kind == SEND and rule.send_campaign() is None and trigger.kind == OPTED_IN:
        raise InvalidInput(
            f"action send after trigger {trigger.kind} needs a campaign (its provider sends)",
            field="action.campaign",
        )
    return rule


# -- stored form ----------------------------------------------------------------------------------


def _drop(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v is not None}


def rule_json(rule: Rule) -> dict[str, Any]:
    """Return `rule` as stored and shown: trigger, delay (s), conditions, action (no None)."""
    t, c, a = rule.trigger, rule.conditions, rule.action
    trigger: dict[str, Any] = {"kind": t.kind, "campaign": t.campaign, "link": t.link,
                               "within": None if t.within_us is None else t.within_us // 1_000_000}  # fmt: skip
    cond: dict[str, Any] = {
        "quiet_hours": None if c.quiet_hours is None else str(c.quiet_hours),
        "frequency_cap": None if c.cap is None else {"max": c.cap.max, "per": c.cap.per},
        "segment": c.segment, "in_segment": c.in_segment if c.segment else None,
    }  # fmt: skip
    action = {"kind": a.kind, "template": a.template, "campaign": a.campaign,
              "endpoint": a.endpoint, "segment": a.segment}  # fmt: skip
    return {"trigger": _drop(trigger), "delay": rule.delay_us // 1_000_000,
            "conditions": _drop(cond), "action": _drop(action)}  # fmt: skip


def rule_of(stored: Mapping[str, Any]) -> Rule:
    """Return the rule `rule_json` wrote (checked again)."""
    t, c, a = stored["trigger"], stored.get("conditions") or {}, stored["action"]
    within = t.get("within")
    cap = c.get("frequency_cap")
    return check_rule(
        Trigger(t["kind"], t.get("campaign"), t.get("link"),
                None if within is None else within * 1_000_000),
        int(stored.get("delay", 0)) * 1_000_000,
        Conditions(
            QuietHours.parse(c["quiet_hours"]) if c.get("quiet_hours") else None,
            Cap(cap["max"], cap["per"]) if cap else None,
            c.get("segment"), bool(c.get("in_segment", True)),
        ),
        Action(a["kind"], a.get("template"), a.get("campaign"), a.get("endpoint"), a.get("segment")),
    )  # fmt: skip


def duration_text(us: int) -> str:
    """Return `us` as the largest whole unit it is a multiple of: ``2d``, ``90m``, ``45s``."""
    seconds = us // 1_000_000
    for unit, size in (("w", 604_800), ("d", 86_400), ("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def describe(rule: Rule) -> tuple[str, str, str]:
    """Return the trigger (with its delay), the conditions and the action of `rule` in a few
    words each, as the CLI's list and the dashboard show them."""
    t, c, a = rule.trigger, rule.conditions, rule.action
    trigger = t.kind + (f" {t.campaign}" if t.campaign else "")
    trigger += f" link {t.link}" if t.link else ""
    trigger += f" within {duration_text(t.within_us)}" if t.within_us else ""
    trigger += f", then {duration_text(rule.delay_us)}" if rule.delay_us else ""
    cond = []
    if c.quiet_hours:
        cond.append(f"quiet {c.quiet_hours}")
    if c.cap:
        cond.append(f"at most {c.cap.max}/{c.cap.per}")
    if c.segment:
        cond.append(("in " if c.in_segment else "not in ") + c.segment)
    what = {SEND: a.template, WEBHOOK: a.endpoint}.get(a.kind, a.segment) or ""
    via = f" (via {a.campaign})" if a.campaign else ""
    return trigger, ", ".join(cond) or "-", f"{a.kind}{via}: {what}"


# -- events in ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Fact:
    """An outbox event as automations read it: its type, the contact (by phone), and what
    triggers and cancellations look at."""

    type: str
    occurred_us: int
    phone: str | None
    campaign: str | None = None
    link: int | None = None  # from 1
    click_id: str | None = None
    message: str | None = None
    counted: bool = False  # a click: a person's (a verdict given, human or suspect)
    bot: bool = False  # a click: judged a bot's


def fact_of(type_: str, occurred_us: int, payload: str) -> Fact | None:
    """Return the `Fact` of an outbox event (None: a type automations ignore)."""
    if type_ not in (ev.CLICK_CREATED, ev.CLICK_RECLASSIFIED, ev.MESSAGE_DELIVERED,
                     ev.CONVERSION_CREATED, ev.CONTACT_OPTED_OUT, ev.CONTACT_OPTED_IN):  # fmt: skip
        return None
    data = json.loads(payload)["data"]
    phone = (data.get("contact") or {}).get("phone")
    if type_ in (ev.CLICK_CREATED, ev.CLICK_RECLASSIFIED):
        verdict = data["verdict"]["verdict"]
        given = verdict is not None
        link = data.get("link") or {}
        return Fact(
            type_, occurred_us, phone, data.get("campaign"),
            None if link.get("index") is None else int(link["index"]) + 1, data.get("click_id"),
            data.get("message"), counted=given and is_counted(verdict, data.get("is_click")),
            bot=given and not is_counted(verdict, True),
        )  # fmt: skip
    return Fact(type_, occurred_us, phone, data.get("campaign"), message=data.get("message"))


def _on_link(t: Trigger, f: Fact) -> bool:
    return f.campaign == t.campaign and (t.link is None or t.link == f.link)


def starts(rule: Rule, f: Fact) -> str | None:
    """Return the trigger key of the run `f` starts for its contact under `rule` (None: it
    starts none). A click's provisional and final events share one key."""
    t = rule.trigger
    if f.phone is None:
        return None
    if t.kind in (CLICKED, CLICKED_NO_CONVERSION):
        if f.type == ev.CLICK_CREATED and f.counted and _on_link(t, f):
            return f"click/{f.click_id}"
        return None
    if t.kind in (NOT_CLICKED, DELIVERED):
        wanted = t.campaign is None or f.campaign == t.campaign
        return f"message/{f.message}" if f.type == ev.MESSAGE_DELIVERED and wanted else None
    if t.kind == OPTED_IN and f.type == ev.CONTACT_OPTED_IN:
        return f"opt-in/{f.occurred_us}"
    return None


def due_us(rule: Rule, trigger_us: int) -> int:
    """Return when a run started by an event at `trigger_us` is due."""
    return trigger_us + (rule.trigger.within_us or 0) + rule.delay_us


def run_key(rule_id: str, phone: str, trigger_key: str) -> str:
    """Return a run's idempotency key: one run per rule, contact and trigger event."""
    return f"{rule_id}/{phone}/{trigger_key}"


@dataclass(frozen=True, slots=True)
class Pending:
    """A pending run as cancellation sees it."""

    trigger_key: str
    trigger_us: int
    phone: str


def cancels(rule: Rule, run: Pending, f: Fact) -> str | None:
    """Return why `f` cancels the pending `run` of `rule` (None: it does not)."""
    if f.phone != run.phone or (f.occurred_us < run.trigger_us and f.type != ev.CLICK_RECLASSIFIED):
        return None
    t = rule.trigger
    if f.type == ev.CONTACT_OPTED_OUT and rule.action.kind == SEND:
        return "the contact opted out"
    clicks = (ev.CLICK_CREATED, ev.CLICK_RECLASSIFIED)
    if f.type in clicks and f.bot and run.trigger_key == f"click/{f.click_id}":
        return "the click that triggered it was judged a bot's"
    if t.kind == NOT_CLICKED and f.type == ev.CLICK_CREATED and f.counted and _on_link(t, f):
        return "the contact clicked"
    if t.kind == CLICKED_NO_CONVERSION and f.type == ev.CONVERSION_CREATED:
        return "the contact converted"
    return None


# -- a due run ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Situation:
    """What is true of the contact when its run is due (storage and services find it).

    `in_segment` None: the segment does not exist (or the rule names none). `recent_us`: when
    automations sent the contact a message in the last week. `clicked` / `converted`: since the
    trigger event (for the ``…_within`` triggers). `trigger_bot`: the click that triggered the
    run is now judged a bot's."""

    enabled: bool
    opted_out: bool
    in_segment: bool | None
    recent_us: Sequence[int]
    zones: Sequence[tzinfo]
    clicked: bool = False
    converted: bool = False
    trigger_bot: bool = False


@dataclass(frozen=True, slots=True)
class Decision:
    """What to do with a due run: `fire`, `cancel`, `skip` (a condition does not hold), or
    `wait` until `at_us` (quiet hours)."""

    verdict: Verdict
    reason: str = ""
    at_us: int | None = None


def decide(rule: Rule, s: Situation, now_us: int) -> Decision:
    """Return what to do with a run of `rule` due at `now_us`, in this order: a disabled rule,
    the triggering click judged a bot's, the opt-out rule (messages), the contact's click or
    conversion since the trigger, the segment condition, the frequency cap, quiet hours."""
    c = rule.conditions
    sends = rule.action.kind == SEND
    if not s.enabled:
        return Decision("cancel", "the automation is disabled")
    if s.trigger_bot:
        return Decision("cancel", "the click that triggered it was judged a bot's")
    if sends and s.opted_out:
        return Decision("cancel", "the contact opted out")
    if rule.trigger.kind == NOT_CLICKED and s.clicked:
        return Decision("cancel", "the contact clicked")
    if rule.trigger.kind == CLICKED_NO_CONVERSION and s.converted:
        return Decision("cancel", "the contact converted")
    if c.segment is not None:
        if s.in_segment is None:
            return Decision("skip", f"segment {c.segment!r} does not exist")
        if s.in_segment != c.in_segment:
            where = "not in" if c.in_segment else "in"
            return Decision("skip", f"the contact is {where} segment {c.segment!r}")
    if sends and c.cap is not None:
        window = [x for x in s.recent_us if now_us - c.cap.period_us < x <= now_us]
        if len(window) >= c.cap.max:
            return Decision("skip", f"frequency cap: {c.cap.max} per {c.cap.per} reached")
    if sends and c.quiet_hours is not None:
        at = datetime.fromtimestamp(now_us / 1_000_000, UTC)
        zones = list(s.zones) or [UTC]
        opens = c.quiet_hours.next_allowed(at, zones)
        if opens is None:
            return Decision("skip", "quiet hours never end in all of the contact's time zones")
        if opens != at:
            return Decision("wait", "quiet hours", int(opens.timestamp() * 1_000_000))
    return Decision("fire")
