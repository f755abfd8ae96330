"""The SQL store, while it lasts: every area's repository in one object.

Each area has its own module with its SQL at the top (campaigns, clicks, contacts, keys,
messages, networks, workspaces; dialect helpers in `storage/sql.py`), and each service takes
the small port it needs (`services.<area>.<Area>Store`). `SqlStore` only inherits them, for the
callers still typed with `services.ports.Store` (the web routes, sending, demo, providers) and
the tests' `store` fixture; it goes away once those take the repositories of
`bootstrap.Container`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import sqlalchemy as sa

from clicktrail.domain.models import Campaign
from clicktrail.domain.report import CampaignReport
from clicktrail.storage.campaigns import CampaignQueries
from clicktrail.storage.clicks import ClickQueries
from clicktrail.storage.contacts import ContactQueries
from clicktrail.storage.keys import KeyQueries
from clicktrail.storage.messages import MessageQueries
from clicktrail.storage.networks import NetworkListQueries
from clicktrail.storage.reports import ReportQueries
from clicktrail.storage.workspaces import WorkspaceQueries

if TYPE_CHECKING:
    from clicktrail.storage.sending import SqlSendJobs


class SqlStore(
    CampaignQueries,
    ClickQueries,
    ContactQueries,
    KeyQueries,
    MessageQueries,
    NetworkListQueries,
    WorkspaceQueries,
):
    """Every area's repository on one SQLAlchemy engine (SQLite or PostgreSQL)."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name

    # -- sending jobs --------------------------------------------------------------------------

    def send_jobs(self) -> SqlSendJobs:
        """The storage of sending jobs on this store's engine (storage/sending.py)."""
        from clicktrail.storage.sending import SqlSendJobs

        return SqlSendJobs(self)

    # -- reports -------------------------------------------------------------------------------

    def campaign_report(self, campaign: Campaign) -> CampaignReport:
        """Return delivery and click counts of `campaign`, overall and per link.

        Click counts are bot-filtered (`COUNTED_VERDICTS`), with the raw counts beside them.
        The SQL lives in `storage.reports.ReportQueries`.
        """
        return ReportQueries(self.engine).campaign_report(campaign)
