"""Wire shapes of segments (web/api_segments.py, docs/segments.md): a segment's filter in and
out, a segment with its size, members changed."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from clicktrail.web.schemas import Text, Time, _Request, _Response

Band = Literal["engaged", "at_risk", "unengaged"]
Score = Annotated[float, Field(ge=0, le=100)]
Ref = Annotated[Text, Field(max_length=200)]
AttributeValues = (
    Annotated[Text, Field(max_length=200)]
    | Annotated[list[Annotated[Text, Field(max_length=200)]], Field(min_length=1, max_length=100)]
)


class SegmentFilterIn(_Request):
    """A saved filter: every condition given must hold. Opted-out contacts are left out unless
    `opted_in` is false (then only they are in, and the segment cannot be sent to)."""

    band: Band | None = Field(default=None, description="A band of the engagement score.")
    score_min: Score | None = Field(default=None, description="Score at least this.")
    score_below: Score | None = Field(default=None, description="Score below this.")
    clicked: bool | None = Field(default=None, description="Ever clicked (false: never).")
    clicked_campaign: Ref | None = Field(
        default=None, description="Clicked a link of this campaign (slug or id)."
    )
    no_click_days: Annotated[int, Field(ge=1, le=3650)] | None = Field(
        default=None, description="No click in the last N days (never clicked included)."
    )
    converted: bool | None = Field(default=None, description="Has a conversion (false: none).")
    country: list[Annotated[Text, Field(min_length=2, max_length=2)]] | None = Field(
        default=None, max_length=250, description="The phone's country is one of these "
        "(ISO 3166, e.g. `US`).", examples=[["US", "CA"]],
    )  # fmt: skip
    attributes: dict[Annotated[Text, Field(max_length=200)], AttributeValues] | None = Field(
        default=None, max_length=20, description="Contact attributes equal to a value (or one "
        "of a list of values).", examples=[{"plan": "gold", "city": ["Paris", "Lyon"]}],
    )  # fmt: skip
    opted_in: bool | None = Field(default=None, description="Default true.")


class SegmentFilterOut(_Response):
    """A saved filter's conditions as stored (those given only); a campaign is named by id."""

    band: Band | None = None
    score_min: float | None = None
    score_below: float | None = None
    clicked: bool | None = None
    clicked_campaign: str | None = None
    no_click_days: int | None = None
    converted: bool | None = None
    country: list[str] | None = None
    attributes: dict[str, list[str]] | None = None
    opted_in: bool | None = None


class SegmentCreate(_Request):
    """A new segment: a saved filter, or an empty static list to add members to."""

    name: Annotated[Text, Field(min_length=1, max_length=200)]
    slug: Annotated[Text, Field(max_length=63)] | None = Field(
        default=None, description="Short name (default: from the name)."
    )
    kind: Literal["filter", "static"] = "filter"
    filter: SegmentFilterIn | None = None


class SegmentOut(_Response):
    """A segment and how many contacts are in it now."""

    id: str
    slug: str
    name: str
    kind: Literal["filter", "static"]
    builtin: bool
    sendable: bool = Field(description="False when it selects opted-out contacts.")
    filter: SegmentFilterOut | None
    size: int
    created_at: Time
    updated_at: Time


class SegmentList(_Response):
    """The workspace's segments with their sizes, built-in ones first."""

    items: list[SegmentOut]


class MembersChange(_Request):
    """Contacts to add to and remove from a static segment (phones or external ids; at most
    10,000 in all). All or nothing."""

    add: list[Ref] = Field(default_factory=list, max_length=10_000)
    remove: list[Ref] = Field(default_factory=list, max_length=10_000)


class MembersChanged(_Response):
    """What the change did, and the segment's size now."""

    added: int
    removed: int
    size: int
