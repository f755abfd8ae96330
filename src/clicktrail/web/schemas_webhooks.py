"""Wire shapes of webhooks as pydantic models: endpoints, their secrets, deliveries and the
delivery log (docs/webhooks.md; like `web.schemas`, whose strict request base they share)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from clicktrail.domain.events import EVENT_TYPES
from clicktrail.web.schemas import Text, Time, _Page, _Request, _Response
from clicktrail.web.schemas_settings import Duration

EventType = Literal[
    "click.created", "click.reclassified", "message.delivered", "message.failed",
    "conversion.created", "contact.opted_out", "contact.opted_in", "webhook.disabled",
    "automation.fired",
]  # fmt: skip
assert set(EventType.__args__) == set(EVENT_TYPES)  # type: ignore[attr-defined]

Url = Annotated[Text, Field(min_length=1, max_length=2048, examples=["https://crm.example.com/hooks/clicktrail"])]  # fmt: skip
Secret = Annotated[Text, Field(min_length=30, max_length=100, examples=["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"])]  # fmt: skip
Events = Annotated[list[EventType], Field(min_length=1, max_length=len(EVENT_TYPES))]
Description = Annotated[Text, Field(max_length=200)]


class EndpointCreate(_Request):
    """A webhook endpoint to create."""

    url: Url
    events: Events = Field(description="The event types it receives.")
    description: Description = ""
    humans_only: bool = Field(
        default=False,
        description="click.created: leave out clicks whose verdict is a bot's.",
    )
    provisional: bool = Field(
        default=False,
        description="click.created: send each click at once with its request-level verdict "
        "(`data.verdict.final` false) instead of once its verdict is final.",
    )
    secret: Secret | None = Field(
        default=None, description="A whsec_ secret of your own; default: a new random one."
    )


class EndpointUpdate(_Request):
    """What to change on an endpoint (absent: unchanged)."""

    url: Url | None = None
    events: Events | None = None
    description: Description | None = None
    humans_only: bool | None = None
    provisional: bool | None = None
    enabled: bool | None = Field(
        default=None,
        description="false: disable it (nothing is sent); true: enable it again (its failure "
        "run starts over; deliveries still pending are sent).",
    )


class SecretRotate(_Request):
    """How to rotate an endpoint's secret."""

    grace: Duration | None = Field(
        default=None,
        description="How long the old secret keeps signing beside the new one (at most 7 "
        "days; default 1 day; 0: retired at once).",
    )
    secret: Secret | None = Field(default=None, description="The new secret; default: random.")


class EndpointOut(_Response):
    """A webhook endpoint (never its secret)."""

    id: str = Field(examples=["ep_4CZtUbcQ9f1xAbCd"])
    url: str
    description: str
    events: list[EventType]
    humans_only: bool
    provisional: bool
    state: Literal["enabled", "disabled"]
    disabled_reason: str | None = Field(description="Why it is disabled (null: enabled).")
    disabled_at: Time | None
    failures: int = Field(description="Failed attempts in a row since the last success.")
    failing_since: Time | None = Field(description="First failure of that run.")
    previous_secret_until: Time | None = Field(
        description="Until when the rotated-out secret still signs (null: none does)."
    )
    created_at: Time
    updated_at: Time


class EndpointWithSecret(EndpointOut):
    """An endpoint with its signing secret (after creating or rotating, or when asked for)."""

    secret: str = Field(description="The whsec_ secret receivers verify signatures with.")


class EndpointPage(_Page):
    """A page of the workspace's webhook endpoints, oldest first."""

    items: list[EndpointOut]


class DeliveryOut(_Response):
    """A delivery of one event to one endpoint."""

    id: str = Field(examples=["dlv_7hQ2mR4xKp9sLw3Z"])
    endpoint: str
    event: str = Field(description="The event's id: the `webhook-id` header of every attempt.")
    type: EventType
    state: Literal["pending", "succeeded", "failed"]
    attempts: int
    next_attempt_at: Time | None = Field(description="When the next attempt is due (pending).")
    last_attempt_at: Time | None
    last_status: int | None = Field(description="The last answer's status (null: none).")
    last_error: str | None = Field(description="Why the last attempt got no answer.")
    created_at: Time
    completed_at: Time | None


class AttemptOut(_Response):
    """One attempt: when, what came back, how long it took."""

    attempt: int
    at: Time
    status: int | None
    error: str | None
    duration_ms: float
    response: str | None = Field(description="The start of the answer's body (500 characters).")


class DeliveryDetail(DeliveryOut):
    """A delivery with its log."""

    log: list[AttemptOut]


class DeliveryPage(_Page):
    """A page of an endpoint's deliveries, newest first."""

    items: list[DeliveryOut]


class ReplaySince(_Request):
    """Which events to send an endpoint again."""

    since: Annotated[Text, Field(description="ISO 8601 time (UTC) or Unix seconds.",
                                 examples=["2026-12-07T00:00:00Z"])]  # fmt: skip


class Replayed(_Response):
    """How many deliveries are now due."""

    deliveries: int
