"""Segments: a workspace's saved filters and static lists, the built-in ones, their sizes and
members, exports, and a segment as a campaign's audience (docs/segments.md).

A saved filter's membership is computed when read, from the contacts and their kept engagement
scores (services/engagement.py), at the time given: the score bands become bounds on the
stored keys (`domain.segments.query_of`). A static segment's members are kept (added and
removed by hand, by the API, later by automations); its opted-out members are in it but never
in its membership. Opted-out contacts are in no sendable segment.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from clicktrail.domain.engagement import score_at
from clicktrail.domain.errors import Conflict, InvalidInput, NotFound, Problem
from clicktrail.domain.ids import new_public_id
from clicktrail.domain.models import Campaign, Contact, Workspace
from clicktrail.domain.segments import (
    BUILT_INS,
    Segment,
    SegmentFilter,
    SegmentQuery,
    check_slug,
    parse_filter,
    query_of,
)
from clicktrail.domain.slugs import slugify
from clicktrail.services import exports
from clicktrail.services.campaigns import CampaignStore
from clicktrail.services.engagement import EngagementStore, settings_of

MAX_MEMBERS_CHANGE = 10_000  # contacts per add/remove call
EXPORT_CHUNK = 5000


class SegmentStore(Protocol):
    """What segments need of storage (`storage.segments.SegmentQueries`)."""

    def ensure_segments(self, rows: Sequence[dict[str, Any]]) -> None:
        """Insert segment rows whose workspace and slug are free."""
        ...

    def create_segment(self, row: dict[str, Any]) -> Segment:
        """Store a new segment; raises `Conflict` if its slug is taken."""
        ...

    def find_segment(self, workspace_id: int, ref: str) -> Segment | None:
        """Return the workspace's segment with this slug or public id."""
        ...

    def list_segments(self, workspace_id: int) -> list[Segment]:
        """Return the workspace's segments, built-ins first."""
        ...

    def delete_segment(self, segment_id: int) -> None:
        """Delete a segment; raises `Conflict` while a campaign not sent yet uses it."""
        ...

    def contacts_by_ref(self, workspace_id: int, refs: Sequence[str]) -> dict[str, int]:
        """Return {phone or external id: contact id} of the refs the workspace has."""
        ...

    def change_members(
        self, segment_id: int, add: Sequence[int], remove: Sequence[int], now_us: int
    ) -> tuple[int, int]:
        """Add and remove static members in one transaction; return (added, removed)."""
        ...

    def segment_size(self, query: SegmentQuery) -> int:
        """Return how many contacts the query selects."""
        ...

    def member_page(self, query: SegmentQuery, after_id: int, limit: int) -> list[Contact]:
        """Return up to `limit` members with id > `after_id`, by id."""
        ...

    def member_rows(self, query: SegmentQuery, after_id: int, limit: int) -> list[Any]:
        """Return up to `limit` members' export rows with id > `after_id`, by id."""
        ...


class SegmentRepos(Protocol):
    """The repositories segments read (`bootstrap.Container` has them all)."""

    @property
    def segments(self) -> SegmentStore:
        """Segments and static members."""
        ...

    @property
    def engagement(self) -> EngagementStore:
        """Engagement settings (the bands)."""
        ...

    @property
    def campaigns(self) -> CampaignStore:
        """Campaigns (a filter's `clicked_campaign`)."""
        ...


def _builtin_rows(workspace: Workspace, now_us: int) -> list[dict[str, Any]]:
    return [
        {"public_id": new_public_id("seg"), "workspace_id": workspace.id, "slug": slug,
         "name": name, "kind": "filter", "filter": f, "builtin": True, "created_us": now_us,
         "updated_us": now_us}
        for slug, (name, f) in BUILT_INS.items()
    ]  # fmt: skip


def list_segments(repos: SegmentRepos, workspace: Workspace, now_us: int) -> list[Segment]:
    """Return the workspace's segments, the built-in ones first (created when first listed)."""
    found = repos.segments.list_segments(workspace.id)
    if sum(1 for s in found if s.builtin) < len(BUILT_INS):
        repos.segments.ensure_segments(_builtin_rows(workspace, now_us))
        found = repos.segments.list_segments(workspace.id)
    return found


def get_segment(repos: SegmentRepos, workspace: Workspace, ref: str, now_us: int) -> Segment:
    """Return the workspace's segment with slug or public id `ref` (a built-in one is created
    when first named). Raises `NotFound` (field ``segment``)."""
    found = repos.segments.find_segment(workspace.id, ref)
    if found is None and ref in BUILT_INS:
        repos.segments.ensure_segments(_builtin_rows(workspace, now_us))
        found = repos.segments.find_segment(workspace.id, ref)
    if found is None:
        raise NotFound(f"segment {ref!r} not found", field="segment")
    return found


def _resolve_campaign(repos: SegmentRepos, workspace: Workspace, f: SegmentFilter) -> int | None:
    if f.clicked_campaign is None:
        return None
    found = repos.campaigns.find_campaign(workspace.id, f.clicked_campaign)
    if found is None:
        raise InvalidInput(
            f"/filter/clicked_campaign: no campaign {f.clicked_campaign!r} in this workspace",
            field="/filter/clicked_campaign",
        )
    return found.id


def create_segment(
    repos: SegmentRepos,
    workspace: Workspace,
    *,
    name: str,
    kind: str,
    filter: object = None,
    slug: str | None = None,
    now_us: int,
) -> Segment:
    """Store a saved filter (`kind` "filter", `filter` a mapping of `domain.segments.FIELDS`)
    or an empty static segment (`kind` "static", no filter). Its slug is `slug`, else made
    from `name`. A `clicked_campaign` is stored as the campaign's public id.

    Raises `InvalidInput` naming the bad field (``/filter/no_click_days``), `Conflict` when the
    slug is taken; nothing is stored then.
    """
    if not name.strip() or len(name) > 200:
        raise InvalidInput("name: expected 1 to 200 characters", field="name")
    if kind not in ("filter", "static"):
        raise InvalidInput(f"kind: {kind!r} is not filter or static", field="kind")
    stored: dict[str, object] | None = None
    if kind == "filter":
        f = parse_filter({} if filter is None else filter)
        campaign_id = _resolve_campaign(repos, workspace, f)
        stored = f.as_dict()
        if campaign_id is not None:
            found = repos.campaigns.find_campaign(workspace.id, str(f.clicked_campaign))
            assert found is not None
            stored["clicked_campaign"] = found.public_id
    elif filter is not None:
        raise InvalidInput("filter: a static segment has members, not a filter", field="filter")
    slug = check_slug(slug if slug is not None else slugify(name))
    return repos.segments.create_segment(
        {"public_id": new_public_id("seg"), "workspace_id": workspace.id, "slug": slug,
         "name": name.strip(), "kind": kind, "filter": stored, "builtin": False,
         "created_us": now_us, "updated_us": now_us}
    )  # fmt: skip


def delete_segment(repos: SegmentRepos, workspace: Workspace, ref: str, now_us: int) -> None:
    """Delete one of the workspace's own segments (static members included). Raises `NotFound`,
    `Conflict` for a built-in one or one a campaign not sent yet sends to."""
    seg = get_segment(repos, workspace, ref, now_us)
    if seg.builtin:
        raise Conflict(f"segment {seg.slug!r} is built in", field="segment")
    repos.segments.delete_segment(seg.id)


def query_for(repos: SegmentRepos, segment: Segment, now_us: int) -> SegmentQuery:
    """Return the query of `segment`'s membership at `now_us` (bands under its workspace's
    engagement settings). Raises `InvalidInput` when its `clicked_campaign` is gone."""
    settings, _ = settings_of(repos.engagement, segment.workspace_id)
    if segment.filter is None:  # static: its opted-in members
        return SegmentQuery(segment.workspace_id, static_segment_id=segment.id)
    f = segment.filter
    campaign_id = None
    if f.clicked_campaign is not None:
        found = repos.campaigns.find_campaign(segment.workspace_id, f.clicked_campaign)
        # A campaign is never deleted; an id that no longer resolves selects nobody.
        campaign_id = found.id if found is not None else -1
    return query_of(f, segment.workspace_id, settings, now_us, campaign_id=campaign_id)


@dataclass(frozen=True, slots=True)
class SizedSegment:
    """A segment and how many contacts are in it now."""

    segment: Segment
    size: int


def sizes(repos: SegmentRepos, workspace: Workspace, now_us: int) -> list[SizedSegment]:
    """Return every segment of the workspace with its size now."""
    return [
        SizedSegment(s, repos.segments.segment_size(query_for(repos, s, now_us)))
        for s in list_segments(repos, workspace, now_us)
    ]


def size_of(repos: SegmentRepos, workspace: Workspace, ref: str, now_us: int) -> SizedSegment:
    """Return one segment with its size now. Raises `NotFound`."""
    seg = get_segment(repos, workspace, ref, now_us)
    return SizedSegment(seg, repos.segments.segment_size(query_for(repos, seg, now_us)))


@dataclass(frozen=True, slots=True)
class MembersChange:
    """What changing a static segment's members did."""

    added: int
    removed: int


def change_members(
    repos: SegmentRepos,
    workspace: Workspace,
    ref: str,
    *,
    add: Sequence[str] = (),
    remove: Sequence[str] = (),
    where_add: Sequence[str] | None = None,
    where_remove: Sequence[str] | None = None,
    now_us: int,
) -> MembersChange:
    """Add and remove members of a static segment, by phone or external id; all or nothing.

    Raises `NotFound` (the segment), `InvalidInput` for a saved filter, too many contacts, or
    contacts the workspace does not have (one problem each, named by `where_add[i]` /
    `where_remove[i]`, default ``add/i`` and ``remove/i``); nothing is changed then.
    """
    seg = get_segment(repos, workspace, ref, now_us)
    if seg.kind != "static":
        raise InvalidInput(
            f"segment {seg.slug!r} is a saved filter: its members follow the filter",
            field="segment",
        )
    if len(add) + len(remove) > MAX_MEMBERS_CHANGE:
        raise InvalidInput(
            f"at most {MAX_MEMBERS_CHANGE} contacts per change, got {len(add) + len(remove)}",
            field="add",
        )
    found = repos.segments.contacts_by_ref(workspace.id, [*add, *remove])
    problems = [
        Problem(w, f"{w}: no contact {r!r} in this workspace")
        for refs, names, default in ((add, where_add, "add"), (remove, where_remove, "remove"))
        for i, (r, w) in enumerate(zip(refs, names or [f"{default}/{i}" for i in range(len(refs))],
                                       strict=True))
        if r not in found
    ]  # fmt: skip
    if problems:
        raise InvalidInput(problems[0].message, field=problems[0].field, problems=problems)
    added, removed = repos.segments.change_members(
        seg.id, [found[r] for r in add], [found[r] for r in remove], now_us
    )
    return MembersChange(added, removed)


def campaign_audience(repos: SegmentRepos, workspace: Workspace, ref: str, now_us: int) -> Segment:
    """Return the segment `ref` names for a campaign's audience. Raises `NotFound`, and
    `InvalidInput` for a segment that is not sendable (it selects opted-out contacts)."""
    seg = get_segment(repos, workspace, ref, now_us)
    if not seg.sendable:
        raise InvalidInput(
            f"segment {seg.slug!r} selects opted-out contacts (opted_in: false): it cannot be "
            "a campaign's audience", field="segment",
        )  # fmt: skip
    return seg


def audience_query(repos: SegmentRepos, campaign: Campaign, now_us: int) -> SegmentQuery | None:
    """Return the membership query of the campaign's segment audience at `now_us` (None: its
    audience is a list or the whole workspace)."""
    if campaign.segment_id is None:
        return None
    found = next(
        (s for s in repos.segments.list_segments(campaign.workspace_id)
         if s.id == campaign.segment_id), None,
    )  # fmt: skip
    if found is None or not found.sendable:  # deleting a segment in use is refused
        raise InvalidInput("the campaign's audience segment is gone", field="segment")
    return query_for(repos, found, now_us)


# -- exports ------------------------------------------------------------------------------------


def export_columns(
    repos: SegmentRepos, segment: Segment, now_us: int
) -> tuple[exports.Column, ...]:
    """The columns of a segment's export (docs/segments.md): who, and their score now."""
    settings, _ = settings_of(repos.engagement, segment.workspace_id)
    C = exports.Column

    def score(r: Any) -> float:
        return round(score_at(None if r.score_key is None else float(r.score_key), now_us,
                              settings), 6)  # fmt: skip

    return (
        C("external_id", "string", lambda r: r.external_id),
        C("phone", "string", lambda r: r.phone),
        C("first_name", "string", lambda r: r.first_name),
        C("country", "string", lambda r: r.country),
        C("opted_out", "bool", lambda r: r.opted_out_us is not None),
        C("score", "float64", score),
        C("clicks", "int32", lambda r: r.clicks or 0),
        C("conversions", "int32", lambda r: r.conversions or 0),
        C("last_click_at", "timestamp", lambda r: r.last_click_us),
    )


def plan_export(
    repos: SegmentRepos,
    workspace: Workspace,
    ref: str,
    *,
    format: str = "csv",
    phone: str = "plain",
    salt: str | None = None,
    now_us: int,
) -> exports.ExportPlan:
    """Plan the export of a segment's members now (CSV or JSON lines, as the other exports;
    the phone plain, hashed with `salt` or left out). Raises `InvalidInput` naming the bad
    parameter, `NotFound`."""
    if format == "parquet":
        raise InvalidInput("format: a segment exports as csv or jsonl", field="format")
    exports.check_params(format, phone, salt, None, None)
    seg = get_segment(repos, workspace, ref, now_us)
    query = query_for(repos, seg, now_us)
    columns = exports.phone_columns(export_columns(repos, seg, now_us), phone, salt)

    def chunks() -> Iterator[Sequence[Any]]:
        after = 0
        while rows := repos.segments.member_rows(query, after, EXPORT_CHUNK):
            yield rows
            after = int(rows[-1].id)

    return exports.ExportPlan(f"segment-{seg.slug}", format, tuple(columns), chunks)
