"""Wire shapes of automations as pydantic models: rules, their triggers, conditions and actions
(docs/automations.md; like `web.schemas`, whose strict request base they share)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from clicktrail.domain import automations as au
from clicktrail.web.schemas import Text, Time, _Page, _Request, _Response
from clicktrail.web.schemas_settings import Duration

TriggerKind = Literal["clicked", "not_clicked", "clicked_no_conversion", "delivered", "opted_in"]
ActionKind = Literal["send", "webhook", "add_to_segment", "remove_from_segment"]
assert set(TriggerKind.__args__) == set(au.TRIGGERS)  # type: ignore[attr-defined]
assert set(ActionKind.__args__) == set(au.ACTIONS)  # type: ignore[attr-defined]

Slug = Annotated[Text, Field(min_length=1, max_length=63, examples=["spring-sale"])]
Name = Annotated[Text, Field(min_length=1, max_length=au.MAX_NAME, examples=["Clicked, no order"])]  # fmt: skip
Template = Annotated[Text, Field(min_length=1, max_length=au.MAX_TEMPLATE,
                                 examples=["Still thinking, {first_name}? 10% off: https://shop.example.com/cart"])]  # fmt: skip
QuietHours = Annotated[Text, Field(max_length=11, examples=["21:00-08:00"])]


class TriggerIn(_Request):
    """What starts a run for a contact."""

    kind: TriggerKind
    campaign: Slug | None = Field(default=None, description="The campaign's slug.")
    link: int | None = Field(
        default=None, ge=1, le=au.MAX_LINK,
        description="A link's number in the campaign's template (1: the first); default any.",
    )  # fmt: skip
    within: Duration | None = Field(
        default=None, description="not_clicked, clicked_no_conversion: the window (1m to 90d)."
    )


class CapIn(_Request):
    """At most `max` automated messages per contact per day or week."""

    max: int = Field(ge=1, le=au.MAX_CAP)
    per: Literal["day", "week"]


class ConditionsIn(_Request):
    """What must hold when a run is due (a contact who opted out never gets a message)."""

    quiet_hours: QuietHours | None = Field(
        default=None, description="HH:MM-HH:MM in the contact's time zones: a run waits."
    )
    frequency_cap: CapIn | None = None
    segment: Slug | None = Field(default=None, description="A segment's slug.")
    in_segment: bool = Field(
        default=True, description="true: only members of `segment`; false: only non-members."
    )


class ActionIn(_Request):
    """What a run does."""

    kind: ActionKind
    template: Template | None = Field(default=None, description="send: the message's text.")
    campaign: Slug | None = Field(
        default=None, description="send: whose provider sends (default the trigger's campaign)."
    )
    endpoint: Text | None = Field(
        default=None, max_length=40, description="webhook: the endpoint's id (ep_…)."
    )
    segment: Slug | None = Field(default=None, description="add/remove: the segment's slug.")


class AutomationCreate(_Request):
    """An automation to create."""

    name: Name
    enabled: bool = True
    trigger: TriggerIn
    delay: Duration = Field(default=0, description="Wait after the trigger (and `within`).")
    conditions: ConditionsIn = Field(default_factory=ConditionsIn)
    action: ActionIn


class AutomationUpdate(_Request):
    """What to change (absent: unchanged; a part given replaces that part whole)."""

    name: Name | None = None
    enabled: bool | None = None
    trigger: TriggerIn | None = None
    delay: Duration | None = None
    conditions: ConditionsIn | None = None
    action: ActionIn | None = None


class TriggerOut(_Response):
    """A rule's trigger (`within` in seconds)."""

    kind: TriggerKind
    campaign: str | None
    link: int | None
    within: int | None


class CapOut(_Response):
    """A frequency cap."""

    max: int
    per: Literal["day", "week"]


class ConditionsOut(_Response):
    """A rule's conditions."""

    quiet_hours: str | None
    frequency_cap: CapOut | None
    segment: str | None
    in_segment: bool | None


class ActionOut(_Response):
    """A rule's action."""

    kind: ActionKind
    template: str | None
    campaign: str | None
    endpoint: str | None
    segment: str | None


class AutomationOut(_Response):
    """An automation."""

    id: str = Field(examples=["au_4CZtUbcQ9f1xAbCd"])
    name: str
    enabled: bool
    trigger: TriggerOut
    delay: int = Field(description="Seconds.")
    conditions: ConditionsOut
    action: ActionOut
    created_at: Time
    updated_at: Time


class AutomationPage(_Page):
    """A page of the workspace's automations, oldest first."""

    items: list[AutomationOut]


RunState = Literal["pending", "fired", "cancelled", "skipped", "failed"]


class RunOut(_Response):
    """One run of an automation: a contact and the event that started it."""

    id: str = Field(examples=["ar_4CZtUbcQ9f1xAbCd"])
    automation: str = Field(examples=["au_4CZtUbcQ9f1xAbCd"])
    phone: str = Field(examples=["+14155550100"])
    campaign: str | None = Field(description="The trigger event's campaign.")
    trigger: str = Field(
        description="The event that started it: `click/<click id>`, `message/<message id>`, "
        "`opt-in/<time>`.",
        examples=["click/AaJSm0YzW5Lmbd4k"],
    )
    triggered_at: Time
    due_at: Time = Field(description="When it is (was) due; quiet hours move it.")
    state: RunState
    reason: str | None = Field(
        description="Why it was cancelled, skipped or failed, or why it waits (quiet hours)."
    )
    attempts: int
    fired_at: Time | None
    message: str | None = Field(description="The follow-up message a send made (`msg_…`).")
    created_at: Time
    updated_at: Time


class RunPage(_Page):
    """A page of an automation's runs, newest first."""

    items: list[RunOut]
