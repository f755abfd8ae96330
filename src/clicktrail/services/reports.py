"""Campaign reports."""

from __future__ import annotations

from clicktrail.domain.models import Workspace
from clicktrail.domain.report import CampaignReport
from clicktrail.services.campaigns import get_campaign
from clicktrail.services.ports import Store


def campaign_report(store: Store, workspace: Workspace, ref: str) -> CampaignReport:
    """Return the report of campaign `ref`. Raises `NotFound` for an unknown campaign."""
    return store.campaign_report(get_campaign(store, workspace, ref))
