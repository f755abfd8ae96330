"""Wire shapes of touchpoints (``POST /v1/touchpoints``), as pydantic models for the OpenAPI
document. The items of a request are checked by `services.touchpoints`, item by item, so that
one bad touch gets its own `invalid` outcome instead of refusing the batch; the answers are
validated against their models before they are written (`schemas.out_json`)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from clicktrail.web.schemas import Text, Time, _Request, _Response
from clicktrail.web.schemas_conversions import ContactRefIn

TouchOutcome = Literal["accepted", "duplicate", "unknown_contact", "invalid"]


class TouchpointIn(_Request):
    """One touch of another channel: its channel, the contact, when, and optionally the other
    tool's campaign and source labels, an external touch id and metadata."""

    channel: Annotated[Text, Field(max_length=32)] = Field(
        description="Lower-case name: 1-32 of a-z, 0-9, _ and -, starting with a letter; not "
        "`sms` (clicktrail's own deliveries and clicks are touches already).",
        examples=["email"],
    )
    contact: ContactRefIn
    occurred_at: Time | float | None = Field(
        default=None,
        description="ISO 8601 or Unix seconds; default now; at most 5 minutes ahead.",
    )
    campaign: Annotated[Text, Field(max_length=128)] | None = Field(
        default=None, description="The channel's campaign label (free text).",
        examples=["black-friday-newsletter"],
    )  # fmt: skip
    source: Annotated[Text, Field(max_length=128)] | None = Field(
        default=None, description="Source label (free text), e.g. the ad network.",
        examples=["meta"],
    )  # fmt: skip
    touch_id: Annotated[Text, Field(max_length=128)] | None = Field(
        default=None,
        description="Your id of the touch: stored once per workspace and id, forever; a repeat "
        "answers `duplicate`.",
    )
    metadata: dict[Annotated[str, Field(max_length=64)], str | float | bool | None] | None = Field(
        default=None, description="Flat; at most 32 keys and 4 KiB."
    )


class TouchpointBatchIn(_Request):
    """Up to 1,000 touchpoints, answered one outcome each, in order."""

    touchpoints: Annotated[list[TouchpointIn], Field(min_length=1, max_length=1000)]


class TouchpointResult(_Response):
    """What one touchpoint of a request did."""

    outcome: TouchOutcome
    id: str | None = Field(
        default=None, description="The stored touch (`tch_…`) holding its touch id (accepted, "
        "duplicate)."
    )  # fmt: skip
    field: str | None = Field(default=None, description="The field at fault (refusals).")
    detail: str | None = Field(default=None, description="Why, for people (refusals).")


class TouchpointRecorded(_Response):
    """The answer to one touchpoint."""

    outcome: Literal["accepted", "duplicate"]
    id: str = Field(examples=["tch_4CZtUbcQ9f1xAb3D"])


class TouchpointBatchOut(_Response):
    """One result per touchpoint, in request order, and how many of each outcome."""

    results: list[TouchpointResult]
    counts: dict[TouchOutcome, int]
