"""Wire shapes of engagement scores (web/api_engagement.py, docs/segments.md): a workspace's
scoring settings in and out, and one contact's score with the events behind it."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from clicktrail.web.schemas import Time, _Request, _Response

Weight = Annotated[float | None, Field(description="Points an event of this kind is worth when "
                                       "it happens (0 to 1000; 0: it does not count).")]  # fmt: skip
Bound = Annotated[float | None, Field(description="A score from above 0 up to 100.")]
MAX_EVENTS_SHOWN = 200


class EngagementSettingsIn(_Request):
    """What to change; a field left out stays as it is."""

    click_weight: Weight = None
    conversion_weight: Weight = None
    preview_weight: Weight = None
    half_life_days: Annotated[
        float | None,
        Field(description="Days after which an event is worth half (1/24 to 3650).",
              examples=[30]),
    ] = None  # fmt: skip
    engaged_min: Bound = None
    at_risk_min: Bound = None


class RescoringOut(_Response):
    """How far the jobs process is in scoring the kept scores again after a change."""

    done: int = Field(description="Kept scores computed under the settings in force.")
    total: int = Field(description="All kept scores of the workspace.")


class EngagementSettingsOut(_Response):
    """The workspace's scoring settings, their revision, and how many kept scores were computed
    under older weights, half-life or scoring version (`stale_scores`: the jobs process scores
    them again in the background; `rescoring` says how far it is)."""

    click_weight: float
    conversion_weight: float
    preview_weight: float
    half_life_days: float
    engaged_min: float
    at_risk_min: float
    revision: int
    stale_scores: int
    rescoring: RescoringOut | None = Field(
        description="Set while kept scores are stale: `done` of `total` are current."
    )
    defaults: bool = Field(description="True: the workspace never changed them.")


class EngagementEventOut(_Response):
    """One event's part of the score."""

    kind: Literal["click", "conversion", "preview"]
    at: Time
    ref: str = Field(description="The click id, or the conversion's id.")
    label: str | None = Field(description="The campaign's slug (clicks, previews) or the "
                              "conversion's event name.")  # fmt: skip
    weight: float
    age_days: float
    value: float = Field(description="What it is worth now: weight × 2^(−age / half-life).")


class ContactEngagementOut(_Response):
    """A contact's score, its band, and why: every event that counts with its decayed value
    (largest first; at most 200 listed, `events_total` counts them all)."""

    phone: str
    external_id: str | None
    score: float = Field(description="The kept score segments use, 0 to 100.")
    band: Literal["engaged", "at_risk", "unengaged"]
    pending: bool = Field(description="True when the contact's events changed since the score "
                          "was kept (it moves within seconds) or the settings changed since "
                          "(`clicktrail engagement recompute`).")  # fmt: skip
    total: float = Field(description="The sum of the events' values now, uncapped.")
    clicks: int
    conversions: int
    previews: int
    last_click_at: Time | None
    last_conversion_at: Time | None
    events_total: int
    events: list[EngagementEventOut]
