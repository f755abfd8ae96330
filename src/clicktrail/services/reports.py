"""Campaign reports: the campaign report, the full report, recipients who clicked, and the
comparison of campaigns (semantics in docs/reports.md; what a counted click is:
`domain.report.COUNTED_CLICKS`)."""

from __future__ import annotations

from typing import Protocol

from clicktrail.domain.errors import InvalidInput, NotFound
from clicktrail.domain.models import Campaign, Workspace
from clicktrail.domain.report import (
    CampaignComparison,
    CampaignReport,
    FullReport,
    RecipientsPage,
    decode_cursor,
)
from clicktrail.services.variants import VariantFigures

MAX_PAGE = 500
FIRST_PAGE = 20


class ReportSource(Protocol):
    """What reports read (implemented by `storage.reports.ReportQueries`)."""

    def find_campaign(self, workspace_id: int, ref: str) -> Campaign | None: ...

    def list_campaigns(self, workspace_id: int) -> list[Campaign]: ...

    def campaign_report(self, campaign: Campaign) -> CampaignReport: ...

    def full_report(self, campaign: Campaign, *, now_us: int, first_page: int) -> FullReport: ...

    def recipients(
        self, campaign: Campaign, *, search: str | None, after: int | None, limit: int
    ) -> RecipientsPage: ...

    def compare(
        self, workspace_id: int, *, since_us: int | None, until_us: int | None
    ) -> list[CampaignComparison]: ...

    def variant_figures(self, campaign: Campaign) -> dict[str, VariantFigures]: ...


class CampaignFinder(Protocol):
    """How a report finds its campaign (part of `ReportSource`)."""

    def find_campaign(self, workspace_id: int, ref: str) -> Campaign | None: ...

    def list_campaigns(self, workspace_id: int) -> list[Campaign]: ...


def find_campaign(queries: CampaignFinder, workspace: Workspace, ref: str) -> Campaign:
    """Return the workspace's campaign `ref` (slug or id). Raises `NotFound` naming the
    campaign and a few the workspace has."""
    campaign = queries.find_campaign(workspace.id, ref)
    if campaign is None:
        known = ", ".join(c.slug for c in queries.list_campaigns(workspace.id)[:10]) or "none yet"
        raise NotFound(
            f"campaign {ref!r} not found in workspace {workspace.slug!r} (campaigns: {known})",
            field="campaign",
        )
    return campaign


def campaign_report(queries: ReportSource, workspace: Workspace, ref: str) -> CampaignReport:
    """Return the report of campaign `ref` (slug or id): delivery, the headline click figures
    over engagement links, all links and opt-out links beside them, per link, and what is
    still provisional. Raises `NotFound` for a campaign unknown in `workspace`."""
    return queries.campaign_report(find_campaign(queries, workspace, ref))


def full_report(
    queries: ReportSource, workspace: Workspace, campaign_ref: str, *, now_us: int
) -> FullReport:
    """Return the full report of campaign `campaign_ref` (slug or id) as of `now_us`.

    Raises `NotFound` for a campaign unknown in `workspace`.
    """
    campaign = find_campaign(queries, workspace, campaign_ref)
    return queries.full_report(campaign, now_us=now_us, first_page=FIRST_PAGE)


def recipients_page(
    queries: ReportSource,
    workspace: Workspace,
    campaign_ref: str,
    *,
    search: str | None,
    cursor: str | None,
    limit: int,
) -> RecipientsPage:
    """Return one page of the recipients of `campaign_ref` who clicked (counted engagement
    clicks), in send order; `search` matches part of the phone or external id.

    Raises `NotFound` for an unknown campaign, `InvalidInput` for a bad cursor or a limit
    outside 1..MAX_PAGE.
    """
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidInput(f"limit must be between 1 and {MAX_PAGE}", field="limit")
    campaign = find_campaign(queries, workspace, campaign_ref)
    after = decode_cursor(cursor) if cursor else None
    if cursor and after is None:
        raise InvalidInput("not a cursor this API gave out", field="cursor")
    term = (search or "").strip() or None
    return queries.recipients(campaign, search=term, after=after, limit=limit)


def compare_campaigns(
    queries: ReportSource, workspace: Workspace, *, since_us: int | None, until_us: int | None
) -> list[CampaignComparison]:
    """Return CTR and median time to first click of the workspace's campaigns sent in
    [since_us, until_us) (either bound optional; unsent campaigns only without bounds),
    newest first. Raises `InvalidInput` when since is not before until.
    """
    if since_us is not None and until_us is not None and since_us >= until_us:
        raise InvalidInput("since must be before until", field="since")
    return queries.compare(workspace.id, since_us=since_us, until_us=until_us)
