"""Attribution: settings, credits kept current, re-attribution, the conversions report.

The one home of "which touch gets the credit for a conversion" (the models themselves are in
`domain.attribution`). Credits are stored per conversion and per model (every model, so a
report can switch models without recomputing); the jobs process keeps them current
(`Attributor.run_pending`, every few seconds):

1. **re-attribution**: a workspace whose attribution revision went up (its windows changed,
   or `bots reclassify` rewrote verdicts) has every conversion attributed again, contact by
   contact in batches, under the new settings;
2. **new conversions**: conversions without credits get them;
3. **unsettled credits**: conversions attributed while a click in their window still had a
   provisional verdict are attributed again until every such click is final (the settle-window
   pass may turn a tap into a bot, or back).

The revision guard: every batch of credits is computed under the workspace's revision read
before its settings, and written only if the revision is still the same in the write
transaction (which locks the workspace's state row on PostgreSQL); a change of settings bumps
the revision in its own transaction, so a concurrent re-attribution can never write credit
computed under the old settings — its batch is refused and the newer run redoes it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from typing import Any, NamedTuple, Protocol

from clicktrail.domain import attribution as attr
from clicktrail.domain.attribution import (
    AttributionSettings,
    ClickTouch,
    Delivery,
    SettingsOverride,
    Windows,
)
from clicktrail.domain.models import Campaign, Workspace
from clicktrail.domain.report import Reach
from clicktrail.services import clock
from clicktrail.services.reports import find_campaign

log = logging.getLogger("clicktrail.attribution")

BATCH = 2000  # conversions per transaction of credits
# Conversions per statement of a re-attribution in the database (large: a batch's plan scans
# the clicks index whatever its size), and how many such batches run at once (connections).
BATCH_IN_DATABASE, WORKERS_IN_DATABASE = 250_000, 2


@dataclass(frozen=True, slots=True)
class ConversionFact:
    """A conversion as attribution reads it: who converted (`contact_id`, None when neither
    its click id nor its contact is known) and when. `pending`: it names a click id that is
    not stored yet (the click is still on its way out of the inbox)."""

    id: int
    workspace_id: int
    contact_id: int | None
    at_us: int
    pending: bool = False


class CreditRow(NamedTuple):
    """One stored credit (`model`, `kind` ``none`` when nothing was eligible); a tuple in the
    column order of `conversion_credits`, so a million of them go to storage as they are."""

    conversion_id: int
    model: str
    workspace_id: int
    contact_id: int | None
    kind: str
    campaign_id: int | None
    message_id: int | None
    link_id: int | None
    click_row: int | None
    credit: float
    delay_us: int | None
    conversion_us: int
    revision: int
    settled: bool


@dataclass(frozen=True, slots=True)
class Touches:
    """A contact's touches: its requests on tracked links and its delivered messages."""

    clicks: list[ClickTouch] = field(default_factory=list)
    deliveries: list[Delivery] = field(default_factory=list)


class AttributionStore(Protocol):
    """What attribution reads and writes (`storage.attribution.AttributionQueries`)."""

    def attribution_overrides(
        self, workspace_id: int
    ) -> tuple[SettingsOverride | None, dict[int, SettingsOverride]]:
        """Return the workspace's stored settings and those of its campaigns, by id."""
        ...

    def put_attribution_settings(
        self, workspace_id: int, campaign_id: int, over: SettingsOverride, *, bump: bool,
        now_us: int,
    ) -> int:  # fmt: skip
        """Store `over` for the workspace (`campaign_id` 0) or a campaign; with `bump`, raise
        the workspace's revision in the same transaction. Return the revision."""
        ...

    def attribution_revisions(self, workspace_id: int) -> tuple[int, int]:
        """Return (revision, attributed_revision) of a workspace ((0, 0) if never set)."""
        ...

    def bump_revisions(self, workspace_ids: Iterable[int] | None, now_us: int) -> None:
        """Raise the revision of these workspaces (None: of every workspace with
        conversions), calling for their re-attribution."""
        ...

    def stale_workspaces(self) -> list[tuple[int, int]]:
        """Return (workspace id, revision) of workspaces whose revision is not attributed."""
        ...

    def conversions_page(
        self, workspace_id: int, after_id: int, limit: int
    ) -> list[ConversionFact]:
        """Return up to `limit` of the workspace's conversions after id `after_id`, by id."""
        ...

    def new_conversions(self, limit: int, now_us: int) -> list[ConversionFact]:
        """Return up to `limit` conversions (any workspace) without credits, by id."""
        ...

    def unsettled_conversions(self, after_id: int, limit: int) -> list[ConversionFact]:
        """Return up to `limit` conversions after `after_id` with credits not settled, by id."""
        ...

    def optout_links(self, workspace_id: int) -> set[int]:
        """Return the ids of the workspace's opt-out links."""
        ...

    def touches(self, contact_ids: Sequence[int]) -> dict[int, Touches]:
        """Return the touches of these contacts: their GETs on tracked links that may count
        (counted verdicts, or not final yet) and their delivered messages (test sends
        excluded)."""
        ...

    def put_credits(
        self, workspace_id: int, revision: int, conversion_ids: Sequence[int],
        rows: Sequence[CreditRow], *, finished: bool = False, now_us: int = 0,
    ) -> bool:  # fmt: skip
        """Replace the credits of `conversion_ids` by `rows` if the workspace's revision is
        still `revision` (locked), and with `finished` mark that revision attributed. Return
        False (nothing written) when the revision moved."""
        ...

    def campaign_credits(self, campaign_id: int, model: str) -> attr.CampaignCredits:
        """Return the campaign's credits under `model`, summed (in all and per link)."""
        ...

    def in_database(self) -> bool:
        """Whether `recredit` is available (PostgreSQL: the database picks the winners)."""
        ...

    def recredit_bounds(self, workspace_id: int, after_id: int, size: int) -> list[tuple[int, int]]:
        """Return (last id, size) of each `recredit` batch of `size` after `after_id`."""
        ...

    def recredit(
        self, workspace_id: int, rules: WorkspaceRules, after_id: int, upto_id: int, now_us: int
    ) -> bool:
        """As `put_credits` for conversions in (`after_id`, `upto_id`], picked in the database."""
        ...


# -- settings ----------------------------------------------------------------------------------


def settings_of(
    store: AttributionStore, workspace: Workspace, campaign: Campaign | None = None
) -> AttributionSettings:
    """Return the settings in force for the workspace, or for one of its campaigns."""
    ws, campaigns = store.attribution_overrides(workspace.id)
    return AttributionSettings.resolve(ws, campaigns.get(campaign.id) if campaign else None)


INHERIT = ("inherit", "default", "")


def set_settings(
    store: AttributionStore,
    workspace: Workspace,
    campaign: Campaign | None,
    *,
    model: str | None = None,
    click_window: str | None = None,
    delivery_window: str | None = None,
    now_us: int,
) -> AttributionSettings:
    """Change the workspace's (or a campaign's) settings: each value given replaces the
    stored one (``inherit`` clears it), the others stay. A change of a window bumps the
    attribution revision, so the jobs process re-attributes the workspace's history; a change
    of model needs none (credits of every model are kept). Return the settings in force.
    Raises `InvalidInput` naming the bad field; nothing is written then."""
    ws, campaigns = store.attribution_overrides(workspace.id)
    old = (campaigns.get(campaign.id) if campaign else ws) or SettingsOverride()

    def window(text: str | None, name: str, current: int | None) -> int | None:
        if text is None:
            return current
        return None if text.strip().lower() in INHERIT else attr.parse_window(text, name)

    new_model = old.model
    if model is not None:
        new_model = None if model.strip().lower() in INHERIT else attr.check_model(model)
    new = SettingsOverride(
        new_model,
        window(click_window, "click_window", old.click_window_us),
        window(delivery_window, "delivery_window", old.delivery_window_us),
    )
    if campaign is None:  # the workspace's windows are those of its inheriting campaigns
        before, after = AttributionSettings.resolve(ws), AttributionSettings.resolve(new)
    else:
        before = AttributionSettings.resolve(ws, campaigns.get(campaign.id))
        after = AttributionSettings.resolve(ws, new)
    windows_changed = before.windows() != after.windows()
    store.put_attribution_settings(
        workspace.id, campaign.id if campaign else 0, new, bump=windows_changed, now_us=now_us
    )
    return settings_of(store, workspace, campaign)


def request_reattribution(
    store: AttributionStore, workspace_ids: Iterable[int] | None, now_us: int
) -> None:
    """Ask for the re-attribution of these workspaces' history (None: every workspace), e.g.
    after a re-classification rewrote bot verdicts: their revision goes up."""
    store.bump_revisions(workspace_ids, now_us)


# -- computing credits -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WorkspaceRules:
    """What attributing a workspace's conversions takes besides touches, under one revision:
    its windows (`default`), its campaigns' own (`windows`), its opt-out links."""

    revision: int
    default: Windows
    windows: dict[int, Windows]
    optout: frozenset[int]

    @classmethod
    def of(cls, store: AttributionStore, workspace_id: int, revision: int) -> WorkspaceRules:
        """Return the workspace's rules as stored now, under `revision`."""
        ws, campaigns = store.attribution_overrides(workspace_id)
        return cls(
            revision,
            AttributionSettings.resolve(ws).windows(),
            {
                cid: AttributionSettings.resolve(ws, over).windows()
                for cid, over in campaigns.items()
            },
            frozenset(store.optout_links(workspace_id)),
        )

    def windows_of(self, campaign_id: int) -> Windows:
        """Return the windows of a campaign."""
        return self.windows.get(campaign_id, self.default)


def credit_rows(
    conversions: Sequence[ConversionFact], touches: dict[int, Touches], ctx: WorkspaceRules
) -> list[CreditRow]:
    """Return the credit rows of `conversions` from their contacts' `touches`: one per model
    that found an eligible touch, or one ``none`` row when no model did."""
    rows: list[CreditRow] = []
    empty = Touches()
    for conv in conversions:
        t = touches.get(conv.contact_id, empty) if conv.contact_id is not None else empty
        clicks = t.clicks
        if ctx.optout:
            clicks = [replace(c, optout=True) if c.link_id in ctx.optout else c for c in clicks]
        result = attr.attribute(conv.at_us, clicks, t.deliveries, ctx.windows_of)
        settled = result.settled and not conv.pending
        base = (conv.id, conv.workspace_id, conv.contact_id)
        for c in result.credits:
            rows.append(
                CreditRow(base[0], c.model, base[1], base[2], c.kind, c.campaign_id,
                          c.message_id, c.link_id, c.click, float(c.credit), c.delay_us,
                          conv.at_us, ctx.revision, settled)
            )  # fmt: skip
        if not result.credits:
            rows.append(
                CreditRow(base[0], "none", base[1], base[2], "none", None, None, None, None,
                          0.0, None, conv.at_us, ctx.revision, settled)
            )  # fmt: skip
    return rows


@dataclass
class AttributionRun:
    """What one pass did: conversions attributed, batches refused by the revision guard,
    workspaces fully re-attributed; `resume_after`: where an unfinished re-attribution stopped
    (the last conversion id done), None when it finished or was refused."""

    attributed: int = 0
    refused: int = 0
    reattributed: list[int] = field(default_factory=list)
    resume_after: int | None = None


def _attribute(
    store: AttributionStore, workspace_id: int, revision: int,
    conversions: Sequence[ConversionFact], now_us: int, ctx: WorkspaceRules | None = None,
) -> bool:  # fmt: skip
    ctx = ctx or WorkspaceRules.of(store, workspace_id, revision)
    contacts = sorted({c.contact_id for c in conversions if c.contact_id is not None})
    rows = credit_rows(conversions, store.touches(contacts) if contacts else {}, ctx)
    return store.put_credits(workspace_id, revision, [c.id for c in conversions], rows,
                             now_us=now_us)  # fmt: skip


def reattribute(
    store: AttributionStore, workspace_id: int, now_us: int, batch: int | None = None, *,
    revision: int | None = None, after: int = 0, max_batches: int | None = None,
) -> AttributionRun:  # fmt: skip
    """Attribute every conversion of the workspace (after id `after`) again under its settings
    of `revision` (default: now), `batch` conversions a transaction, then mark that revision
    attributed. Stops early (`refused`) when the revision moves meanwhile: the newer revision's
    run does it all again; or after `max_batches` (`resume_after` says where to go on). Where
    the store can (`in_database`: PostgreSQL) the database picks the winners, a statement a
    batch (`BATCH_IN_DATABASE`, `WORKERS_IN_DATABASE` at once); else the domain (`BATCH`)."""
    run = AttributionRun()
    if revision is None:
        revision, _ = store.attribution_revisions(workspace_id)
    rules = WorkspaceRules.of(store, workspace_id, revision)
    if store.in_database():
        bounds = store.recredit_bounds(workspace_id, after, batch or BATCH_IN_DATABASE)
        if max_batches is not None and len(bounds) >= max_batches:  # as the Python path
            bounds = bounds[:max_batches]
            run.resume_after = bounds[-1][0]
        starts = [after, *(b for b, _ in bounds[:-1])]
        with ThreadPoolExecutor(WORKERS_IN_DATABASE) as pool:
            done = list(pool.map(lambda a, b: store.recredit(workspace_id, rules, a, b[0], now_us),
                                 starts, bounds))  # fmt: skip
        if not all(done):
            run.refused += 1
            run.resume_after = None
            return run
        run.attributed += sum(n for _, n in bounds)
        if run.resume_after is not None:
            return run
    else:
        batches = 0
        while page := store.conversions_page(workspace_id, after, batch or BATCH):
            if not _attribute(store, workspace_id, revision, page, now_us, rules):
                run.refused += 1
                return run
            run.attributed += len(page)
            after = page[-1].id
            batches += 1
            if max_batches is not None and batches >= max_batches:
                run.resume_after = after
                return run
    if store.put_credits(workspace_id, revision, [], [], finished=True, now_us=now_us):
        run.reattributed.append(workspace_id)
    else:
        run.refused += 1
    return run


class Attributor:
    """The jobs-process job that keeps credits current (see the module docstring).

    It shares the jobs' thread with the click pipeline, so a re-attribution goes on for at
    most `max_batches` batches per pass and resumes where it stopped at the next one (from
    the start when the revision moved meanwhile)."""

    def __init__(
        self, store: AttributionStore, batch: int | None = None, max_batches: int | None = 25
    ) -> None:
        self.store = store
        self.batch = batch  # None: reattribute's default
        self.pages = batch or BATCH  # conversions per batch of new and unsettled ones
        self.max_batches = max_batches
        self._resume: dict[int, tuple[int, int]] = {}  # workspace -> (revision, after id)

    def run_pending(self, now_us: int) -> AttributionRun:
        """Re-attribute stale workspaces, then attribute new and unsettled conversions;
        return what was done."""
        run = AttributionRun()
        for workspace_id, revision in self.store.stale_workspaces():
            rev, after = self._resume.pop(workspace_id, (revision, 0))
            done = reattribute(
                self.store, workspace_id, now_us, self.batch, revision=revision,
                after=after if rev == revision else 0, max_batches=self.max_batches,
            )  # fmt: skip
            if done.resume_after is not None:
                self._resume[workspace_id] = (revision, done.resume_after)
            run.attributed += done.attributed
            run.refused += done.refused
            run.reattributed += done.reattributed
        while page := self.store.new_conversions(self.pages, now_us):
            self._attribute_page(page, now_us, run)
            if len(page) < self.pages:
                break
        after = 0
        while page := self.store.unsettled_conversions(after, self.pages):
            self._attribute_page(page, now_us, run)
            after = page[-1].id
        if run.attributed or run.refused:
            log.info(
                "attribution: %d conversions attributed, %d batches refused (revision moved)",
                run.attributed, run.refused,
            )  # fmt: skip
        return run

    def tick(self) -> None:
        """One pass now (the jobs process calls this every few seconds)."""
        self.run_pending(clock.now_us())

    def _attribute_page(
        self, page: Sequence[ConversionFact], now_us: int, run: AttributionRun
    ) -> None:
        by_ws: dict[int, list[ConversionFact]] = {}
        for c in page:
            by_ws.setdefault(c.workspace_id, []).append(c)
        for workspace_id, convs in by_ws.items():
            revision, _ = self.store.attribution_revisions(workspace_id)
            if _attribute(self.store, workspace_id, revision, convs, now_us):
                run.attributed += len(convs)
            else:
                run.refused += 1  # its settings changed meanwhile: the next pass redoes it


# -- the conversions report ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LinkConversions:
    """The conversion figures of one link (`link` its number from 1, as in reports)."""

    link: int
    url: str
    role: str
    delivered: int
    unique_clicks: int
    figures: attr.ConversionFigures


@dataclass(frozen=True, slots=True)
class ConversionReport:
    """A campaign's conversions under the settings it states (`settings`). `pending`: a
    re-attribution is due or running (credits are those of the previous settings), or some
    credits still wait for final bot verdicts. Variants: campaigns have none yet, so there
    is no per-variant breakdown."""

    campaign: str
    name: str
    settings: AttributionSettings
    delivered: int
    unique_clicks: int
    figures: attr.ConversionFigures
    links: list[LinkConversions]
    reattribution_pending: bool
    unsettled: int

    def as_dict(self) -> dict[str, Any]:
        """Return the report as a JSON-ready mapping."""
        return {
            "campaign": self.campaign,
            "name": self.name,
            "settings": self.settings.as_dict(),
            "delivered": self.delivered,
            "unique_clicks": self.unique_clicks,
            **asdict(self.figures),
            "links": [
                {
                    "link": x.link,
                    "url": x.url,
                    "role": x.role,
                    "unique_clicks": x.unique_clicks,
                    **asdict(x.figures),
                }
                for x in self.links
            ],
            "reattribution_pending": self.reattribution_pending,
            "unsettled": self.unsettled,
            "variants": None,
        }


def conversion_report(
    store: AttributionStore,
    reach: Reach,
    workspace: Workspace,
    campaign: Campaign,
    model: str | None = None,
) -> ConversionReport:
    """Return the conversions of `campaign` under its settings (or `model` instead of its
    own), with `reach` for the denominators: delivered messages and unique counted clickers,
    per link too. The credits are summed in storage (`AttributionStore.campaign_credits`), so
    the cost does not grow with the conversions in Python. Raises `InvalidInput` for an
    unknown model."""
    settings = settings_of(store, workspace, campaign)
    if model is not None:
        settings = AttributionSettings(
            attr.check_model(model), settings.click_window_us, settings.delivery_window_us,
            ("request", settings.source[1], settings.source[2]),
        )  # fmt: skip
    credits = store.campaign_credits(campaign.id, settings.model)
    revision, attributed = store.attribution_revisions(workspace.id)
    delivered = reach.delivered
    links = []
    for lk in campaign.links:
        clickers = reach.links.get(lk.id, 0)
        sums = credits.links.get(lk.id, attr.NO_CREDITS)
        links.append(
            LinkConversions(lk.index + 1, lk.url, lk.role, delivered, clickers,
                            attr.figures_of(sums, delivered, clickers))
        )  # fmt: skip
    return ConversionReport(
        campaign.slug, campaign.name, settings, delivered, reach.unique_clicks,
        attr.figures_of(credits.total, delivered, reach.unique_clicks), links,
        revision != attributed, credits.unsettled,
    )  # fmt: skip


# -- use cases of the API and the CLI -----------------------------------------------------------


class CampaignSource(Protocol):
    """How a campaign is found and its reach read (`storage.reports.ReportQueries`)."""

    def find_campaign(self, workspace_id: int, ref: str) -> Campaign | None: ...

    def list_campaigns(self, workspace_id: int) -> list[Campaign]: ...

    def campaign_reach(self, campaign: Campaign) -> Reach:
        """Return the campaign's delivered messages and unique counted clickers, per link
        too (the figures of its click report, read alone)."""
        ...


@dataclass(frozen=True, slots=True)
class SettingsView:
    """Settings as the API and CLI show them: in force, as stored (None inherits), and the
    state of re-attribution."""

    settings: AttributionSettings
    stored: SettingsOverride
    revision: int
    attributed_revision: int

    def as_dict(self) -> dict[str, Any]:
        """Return the view as a JSON-ready mapping."""
        st = self.stored
        return {
            **self.settings.as_dict(),
            "stored": {
                "model": st.model,
                "click_window": None
                if st.click_window_us is None
                else attr.format_window(st.click_window_us),
                "delivery_window": None
                if st.delivery_window_us is None
                else attr.format_window(st.delivery_window_us),
            },
            "revision": self.revision,
            "attributed_revision": self.attributed_revision,
            "reattribution_pending": self.revision != self.attributed_revision,
        }


def view(
    store: AttributionStore, workspace: Workspace, campaign: Campaign | None = None
) -> SettingsView:
    """Return the settings of the workspace (or of one campaign) as the API shows them."""
    ws, campaigns = store.attribution_overrides(workspace.id)
    stored = (campaigns.get(campaign.id) if campaign else ws) or SettingsOverride()
    revision, attributed = store.attribution_revisions(workspace.id)
    return SettingsView(settings_of(store, workspace, campaign), stored, revision, attributed)


def campaign_conversions(
    store: AttributionStore,
    campaigns: CampaignSource,
    workspace: Workspace,
    ref: str,
    model: str | None = None,
) -> ConversionReport:
    """Return the conversions report of the workspace's campaign `ref`, under its settings
    or `model`. Raises `NotFound` for an unknown campaign, `InvalidInput` for a bad model."""
    if model is not None:
        attr.check_model(model)
    campaign = find_campaign(campaigns, workspace, ref)
    return conversion_report(store, campaigns.campaign_reach(campaign), workspace, campaign, model)
