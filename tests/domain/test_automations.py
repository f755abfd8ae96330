"""domain/automations.py: a rule's checks (each field named), its stored form read back, which
outbox events start and cancel a run (payloads built by domain/events.py as the outbox writes
them), and what a due run does: opt-out, segment, frequency cap, quiet hours."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from clicktrail.domain import automations as au
from clicktrail.domain import events as ev
from clicktrail.domain.automations import Action, Cap, Conditions, Pending, Situation, Trigger
from clicktrail.domain.errors import InvalidInput
from clicktrail.domain.sending import QuietHours

S = 1_000_000
H = 3600 * S
T0 = int(datetime(2026, 12, 7, 15, 0, tzinfo=UTC).timestamp()) * S  # 10:00 in New York
PHONE = "+14155550100"
SEND = Action("send", template="Still thinking? https://shop.example.com/cart")


def rule(trigger: Trigger, action: Action = SEND, delay_us: int = 0, **cond: Any) -> au.Rule:
    return au.check_rule(trigger, delay_us, Conditions(**cond), action)


def click(verdict: str | None, *, final: bool = False, link: int = 0, campaign: str = "sale",
          type_: str = ev.CLICK_CREATED, click_id: str = "ck1", phone: str = PHONE,
          at: int = T0, is_click: bool = True) -> au.Fact:  # fmt: skip
    data = {
        "click_id": click_id, "occurred_at": ev.iso(at), "campaign": campaign, "message": "msg_1",
        "contact": {"phone": phone, "external_id": None},
        "link": {"index": link, "url": "https://shop.example.com/sale"}, "is_click": is_click,
        "verdict": ev.verdict_data(verdict, [], None, final),
    }  # fmt: skip
    e = ev.event(1, type_, f"{click_id}/{final}", at, data)
    fact = au.fact_of(e.type, e.occurred_us, e.payload)
    assert fact is not None
    return fact


def other(type_: str, at: int = T0, phone: str = PHONE, campaign: str | None = "sale") -> au.Fact:
    data = {"contact": {"phone": phone, "external_id": None}, "campaign": campaign,
            "message": "msg_1"}  # fmt: skip
    e = ev.event(1, type_, "k", at, data)
    fact = au.fact_of(e.type, e.occurred_us, e.payload)
    assert fact is not None
    return fact


@pytest.mark.parametrize(
    ("trigger", "action", "delay", "field"),
    [
        (Trigger("bounced"), SEND, 0, "trigger.kind"),
        (Trigger("clicked"), SEND, 0, "trigger.campaign"),
        (Trigger("opted_in", campaign="sale"), SEND, 0, "trigger.campaign"),
        (Trigger("clicked", "sale", link=0), SEND, 0, "trigger.link"),
        (Trigger("delivered", link=1), SEND, 0, "trigger.link"),
        (Trigger("not_clicked", "sale"), SEND, 0, "trigger.within"),
        (Trigger("not_clicked", "sale", within_us=S), SEND, 0, "trigger.within"),
        (Trigger("clicked", "sale", within_us=H), SEND, 0, "trigger.within"),
        (Trigger("clicked", "Sale!"), SEND, 0, "trigger.campaign"),
        (Trigger("clicked", "sale"), SEND, 91 * 24 * H, "delay"),
        (Trigger("clicked", "sale"), SEND, -1, "delay"),
        (Trigger("opted_in"), SEND, 0, "action.campaign"),
        (Trigger("clicked", "sale"), Action("send"), 0, "action.template"),
        (Trigger("clicked", "sale"), Action("send", template="x" * 1601), 0, "action.template"),
        (Trigger("clicked", "sale"), Action("send", "x", segment="vip"), 0, "action.segment"),
        (Trigger("clicked", "sale"), Action("webhook"), 0, "action.endpoint"),
        (Trigger("clicked", "sale"), Action("webhook", endpoint="au_1"), 0, "action.endpoint"),
        (Trigger("clicked", "sale"), Action("webhook", "hi", endpoint="ep_1"), 0, "action.template"),
        (Trigger("clicked", "sale"), Action("add_to_segment"), 0, "action.segment"),
        (Trigger("clicked", "sale"), Action("tweet"), 0, "action.kind"),
    ],
)  # fmt: skip
def test_a_bad_rule_names_its_field(
    trigger: Trigger, action: Action, delay: int, field: str
) -> None:
    with pytest.raises(InvalidInput) as e:
        au.check_rule(trigger, delay, Conditions(), action)
    assert e.value.field == field, e.value.message


@pytest.mark.parametrize(
    ("conditions", "field"),
    [
        (Conditions(cap=Cap(0, "day")), "conditions.frequency_cap.max"),
        (Conditions(cap=Cap(101, "week")), "conditions.frequency_cap.max"),
        (Conditions(cap=Cap(1, "month")), "conditions.frequency_cap.per"),
        (Conditions(segment="At Risk"), "conditions.segment"),
        (Conditions(in_segment=False), "conditions.in_segment"),
    ],
)
def test_bad_conditions_name_their_field(conditions: Conditions, field: str) -> None:
    with pytest.raises(InvalidInput) as e:
        au.check_rule(Trigger("clicked", "sale"), 0, conditions, SEND)
    assert e.value.field == field


def test_a_send_goes_through_the_actions_campaign_or_the_triggers() -> None:
    assert rule(Trigger("clicked", "sale")).send_campaign() == "sale"
    optin = rule(Trigger("opted_in"), Action("send", "Welcome back", campaign="news"))
    assert optin.send_campaign() == "news"
    hook = rule(Trigger("clicked", "sale"), Action("webhook", endpoint="ep_x"))
    assert hook.send_campaign() is None


rules = st.builds(
    lambda kind, link, within, delay, quiet, cap, seg, action: au.check_rule(
        Trigger(
            kind,
            None if kind == "opted_in" else "sale",
            link if kind in au.LINK_TRIGGERS else None,
            within if kind in au.WITHIN_TRIGGERS else None,
        ),
        delay,
        Conditions(quiet, cap, seg[0] if seg else None, seg[1] if seg else True),
        action,
    ),
    st.sampled_from(au.TRIGGERS),
    st.none() | st.integers(1, 100),
    st.integers(60, 90 * 86400).map(lambda s: s * S),
    st.integers(0, 90 * 86400).map(lambda s: s * S),
    st.none() | st.sampled_from([QuietHours.parse("21:00-08:00"), QuietHours.parse("12:30-13:45")]),
    st.none() | st.builds(Cap, st.integers(1, 100), st.sampled_from(["day", "week"])),
    st.none() | st.tuples(st.sampled_from(["engaged", "at-risk"]), st.booleans()),
    st.sampled_from(
        [
            Action("send", "Hi {first_name}", campaign="news"),
            Action("webhook", endpoint="ep_abc"),
            Action("add_to_segment", segment="hot"),
            Action("remove_from_segment", segment="cold"),
        ]
    ),
)


@given(rules)
def test_the_stored_form_reads_back_as_the_same_rule(r: au.Rule) -> None:
    assert au.rule_of(au.rule_json(r)) == r


def test_a_persons_click_starts_a_run_a_bots_never_does() -> None:
    r = rule(Trigger("clicked", "sale"))
    assert au.starts(r, click("human")) == "click/ck1"
    assert au.starts(r, click("suspect", final=True)) == "click/ck1"  # provisional, final: one key
    for verdict in ("bot", "scanner", "preview", None):
        assert au.starts(r, click(verdict)) is None, verdict
    assert au.starts(r, click("human", is_click=False)) is None  # a HEAD request
    assert au.starts(r, click("human", campaign="other")) is None
    assert au.starts(r, click("human", type_=ev.CLICK_RECLASSIFIED)) is None


def test_a_link_trigger_wants_that_link() -> None:
    second = rule(Trigger("clicked", "sale", link=2))
    assert au.starts(second, click("human", link=1)) == "click/ck1"  # index 1 is link 2
    assert au.starts(second, click("human", link=0)) is None


def test_delivered_not_clicked_and_opted_in_start_from_their_events() -> None:
    delivered = rule(Trigger("delivered"))
    nc = rule(Trigger("not_clicked", "sale", within_us=24 * H))
    optin = rule(Trigger("opted_in"), Action("send", "Welcome back", campaign="news"))
    d = other(ev.MESSAGE_DELIVERED)
    assert au.starts(delivered, d) == au.starts(nc, d) == "message/msg_1"
    assert au.starts(nc, other(ev.MESSAGE_DELIVERED, campaign="other")) is None
    assert au.starts(delivered, other(ev.MESSAGE_DELIVERED, campaign="other")) == "message/msg_1"
    assert au.starts(optin, other(ev.CONTACT_OPTED_IN)) == f"opt-in/{T0}"
    assert au.starts(optin, d) is None and au.starts(delivered, other(ev.CONTACT_OPTED_IN)) is None
    assert au.fact_of(ev.MESSAGE_FAILED, T0, "{}") is None


def test_a_run_is_due_after_within_and_delay() -> None:
    assert au.due_us(rule(Trigger("clicked", "sale"), delay_us=H), T0) == T0 + H
    nc = rule(Trigger("clicked_no_conversion", "sale", within_us=2 * H), delay_us=H)
    assert au.due_us(nc, T0) == T0 + 3 * H
    assert au.run_key("au_1", PHONE, "click/ck1") == f"au_1/{PHONE}/click/ck1"


def test_what_cancels_a_pending_run() -> None:
    clicked = rule(Trigger("clicked", "sale"))
    no_conv = rule(Trigger("clicked_no_conversion", "sale", within_us=24 * H))
    not_clicked = rule(Trigger("not_clicked", "sale", within_us=24 * H))
    hook = rule(Trigger("clicked", "sale"), Action("webhook", endpoint="ep_x"))
    run = Pending("click/ck1", T0, PHONE)
    later = T0 + H
    assert au.cancels(clicked, run, click("bot", final=True)) is not None  # the final verdict
    assert au.cancels(clicked, run, click("bot", type_=ev.CLICK_RECLASSIFIED, at=later))
    assert au.cancels(clicked, run, click("bot", click_id="ck2")) is None  # another click
    assert au.cancels(clicked, run, click("human", final=True)) is None
    assert au.cancels(clicked, run, other(ev.CONTACT_OPTED_OUT, later)) == "the contact opted out"
    assert au.cancels(hook, run, other(ev.CONTACT_OPTED_OUT, later)) is None  # not a message
    assert au.cancels(clicked, run, other(ev.CONTACT_OPTED_OUT, later, "+14155550199")) is None
    assert au.cancels(no_conv, run, other(ev.CONVERSION_CREATED, later)) == "the contact converted"
    assert au.cancels(no_conv, run, other(ev.CONVERSION_CREATED, T0 - H)) is None  # before
    assert au.cancels(clicked, run, other(ev.CONVERSION_CREATED, later)) is None
    sent = Pending("message/msg_1", T0, PHONE)
    assert au.cancels(not_clicked, sent, click("human", at=later)) == "the contact clicked"
    assert au.cancels(not_clicked, sent, click("bot", at=later)) is None
    assert au.cancels(not_clicked, sent, click("human", at=later, campaign="x")) is None


NY = ZoneInfo("America/New_York")


def situation(**kw: Any) -> Situation:
    base: dict[str, Any] = {"enabled": True, "opted_out": False, "in_segment": None,
                            "recent_us": (), "zones": (NY,)}  # fmt: skip
    return Situation(**{**base, **kw})


def test_a_due_run_fires_when_every_condition_holds() -> None:
    assert au.decide(rule(Trigger("clicked", "sale")), situation(), T0) == au.Decision("fire")


def test_opted_out_contacts_never_get_an_automated_message() -> None:
    r = rule(Trigger("clicked", "sale"), cap=Cap(5, "day"), quiet_hours=None)
    assert au.decide(r, situation(opted_out=True), T0).verdict == "cancel"
    hook = rule(Trigger("clicked", "sale"), Action("webhook", endpoint="ep_x"))
    assert au.decide(hook, situation(opted_out=True), T0).verdict == "fire"


def test_cancelled_when_the_condition_stopped_holding() -> None:
    nc = rule(Trigger("not_clicked", "sale", within_us=H))
    ncv = rule(Trigger("clicked_no_conversion", "sale", within_us=H))
    assert au.decide(nc, situation(clicked=True), T0).reason == "the contact clicked"
    assert au.decide(ncv, situation(converted=True), T0).reason == "the contact converted"
    assert au.decide(ncv, situation(clicked=True), T0).verdict == "fire"
    assert au.decide(ncv, situation(trigger_bot=True), T0).verdict == "cancel"
    assert au.decide(ncv, situation(enabled=False), T0).verdict == "cancel"


def test_segment_membership() -> None:
    members = rule(Trigger("clicked", "sale"), segment="engaged")
    others = rule(Trigger("clicked", "sale"), segment="engaged", in_segment=False)
    assert au.decide(members, situation(in_segment=True), T0).verdict == "fire"
    assert au.decide(members, situation(in_segment=False), T0).verdict == "skip"
    assert au.decide(others, situation(in_segment=False), T0).verdict == "fire"
    assert au.decide(others, situation(in_segment=True), T0).verdict == "skip"
    gone = au.decide(members, situation(in_segment=None), T0)
    assert gone == au.Decision("skip", "segment 'engaged' does not exist")


def test_frequency_cap_counts_a_rolling_day_or_week() -> None:
    day = rule(Trigger("clicked", "sale"), cap=Cap(2, "day"))
    week = rule(Trigger("clicked", "sale"), cap=Cap(2, "week"))
    two_today = situation(recent_us=(T0 - H, T0 - 2 * H))
    assert au.decide(day, two_today, T0).verdict == "skip"
    assert au.decide(day, situation(recent_us=(T0 - H, T0 - 25 * H)), T0).verdict == "fire"
    assert au.decide(week, situation(recent_us=(T0 - H, T0 - 25 * H)), T0).verdict == "skip"
    assert au.decide(week, situation(recent_us=(T0 - H, T0 - 8 * 24 * H)), T0).verdict == "fire"
    hook = rule(Trigger("clicked", "sale"), Action("webhook", endpoint="ep_x"), cap=Cap(1, "day"))
    assert au.decide(hook, two_today, T0).verdict == "fire"  # the cap counts messages


def test_quiet_hours_make_a_run_wait_for_their_end_in_the_contacts_zone() -> None:
    r = rule(Trigger("clicked", "sale"), quiet_hours=QuietHours.parse("21:00-08:00"))
    assert au.decide(r, situation(), T0).verdict == "fire"  # 10:00 in New York
    late = T0 + 12 * H  # 22:00 in New York
    d = au.decide(r, situation(), late)
    opens = datetime(2026, 12, 8, 8, 0, tzinfo=NY)
    assert d == au.Decision("wait", "quiet hours", int(opens.timestamp()) * S)
    assert au.decide(r, situation(zones=(ZoneInfo("Asia/Tokyo"),)), late).verdict == "fire"


def test_a_rule_in_a_few_words() -> None:
    r = rule(Trigger("clicked_no_conversion", "sale", link=2, within_us=48 * H), delay_us=90 * 60 * S,
             quiet_hours=QuietHours.parse("21:00-08:00"), cap=Cap(1, "week"), segment="engaged")  # fmt: skip
    assert au.describe(r) == (
        "clicked_no_conversion sale link 2 within 2d, then 90m",
        "quiet 21:00-08:00, at most 1/week, in engaged",
        "send: Still thinking? https://shop.example.com/cart",
    )
    optin = rule(Trigger("opted_in"), Action("send", "Welcome", campaign="news"), delay_us=45 * S)
    assert au.describe(optin) == ("opted_in, then 45s", "-", "send (via news): Welcome")
    assert au.duration_text(0) == "0s" and au.duration_text(14 * 24 * H) == "2w"
