"""The composition root: the only module that picks adapters and wires them to services.

`create_app` is also the ASGI entry point for process managers
(``uvicorn --factory clicktrail.bootstrap:create_app``) and for the worker processes of
``clicktrail serve --workers N``.
"""

from __future__ import annotations

import ctypes
import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import sqlalchemy as sa
from starlette.routing import BaseRoute

from clicktrail.brokers import StreamTarget, check_target, open_publisher
from clicktrail.config import Settings, load_settings
from clicktrail.domain.bots.model import RequestFacts
from clicktrail.domain.errors import InvalidInput
from clicktrail.domain.models import Campaign, Workspace
from clicktrail.domain.network import parse_networks
from clicktrail.outbound import OutboundPolicy, WebhookPoster
from clicktrail.services import bots, engagement, incrementality, optouts, segments
from clicktrail.services.attribution import Attributor
from clicktrail.services.automation_fire import AutomationWorker
from clicktrail.services.clicks import ClickPipeline
from clicktrail.services.clock import now_us
from clicktrail.services.deliveries import Deliveries, DisablePolicy
from clicktrail.services.incrementality import LiftReport
from clicktrail.services.ports import SmsProvider
from clicktrail.services.providers import ProviderKind, SecretEnvironment, build_sender
from clicktrail.services.scheduler import Job, Periodic
from clicktrail.services.sending import SendDefaults, Sending
from clicktrail.services.streams import StreamOut
from clicktrail.signals import facts_for, ip_facts
from clicktrail.signals.network import NetworkList, WorkspaceNetworks, load_networks
from clicktrail.signals.ua import ua_facts
from clicktrail.sms.http import HttpKind
from clicktrail.sms.outbox import OutboxProvider
from clicktrail.sms.twilio import TwilioKind
from clicktrail.storage.attribution import AttributionQueries
from clicktrail.storage.automations import AutomationQueries
from clicktrail.storage.campaigns import CampaignQueries
from clicktrail.storage.clicklog import ClickLog
from clicktrail.storage.clicks import ClickQueries
from clicktrail.storage.contacts import ContactQueries
from clicktrail.storage.conversion_keys import ConversionKeyQueries
from clicktrail.storage.conversions import ConversionQueries
from clicktrail.storage.database import check_ready, create_engine, migrate
from clicktrail.storage.deliveries import DeliveryQueries
from clicktrail.storage.engagement import EngagementQueries
from clicktrail.storage.events import stream_workspaces
from clicktrail.storage.exports import ExportQueries
from clicktrail.storage.holdouts import HoldoutQueries
from clicktrail.storage.inbox import InboxWriter
from clicktrail.storage.keys import KeyQueries
from clicktrail.storage.listing import ListingQueries
from clicktrail.storage.messages import MessageQueries
from clicktrail.storage.multitouch import MultiTouchQueries
from clicktrail.storage.networks import NetworkListQueries
from clicktrail.storage.optouts import OptOutQueries
from clicktrail.storage.providers import ProviderRepo
from clicktrail.storage.reports import ReportQueries
from clicktrail.storage.resolver import TokenResolver
from clicktrail.storage.segments import SegmentQueries
from clicktrail.storage.sending import SqlSendJobs
from clicktrail.storage.streams import StreamQueries
from clicktrail.storage.touchpoints import TouchpointQueries
from clicktrail.storage.webhooks import WebhookQueries
from clicktrail.storage.workspaces import WorkspaceQueries
from clicktrail.storage.wrapping import WrapQueries
from clicktrail.web import (
    api_attribution,
    api_automations,
    api_bots,
    api_conversions,
    api_engagement,
    api_keys,
    api_lift,
    api_multitouch,
    api_networks,
    api_optouts,
    api_providers,
    api_reports,
    api_resources,
    api_segments,
    api_sending,
    api_touchpoints,
    api_webhooks,
    api_wrap,
    conversions_public,
    dashboard,
)
from clicktrail.web.app import ClicktrailApp
from clicktrail.web.redirect import LookupOffload

log = logging.getLogger("clicktrail")

PROVIDERS = ("outbox",)
ATTRIBUTION_INTERVAL = 2.0  # seconds between attribution passes of the jobs process
RESCORE_INTERVAL = 2.0  # seconds between passes over stale engagement scores (after a change)
WEBHOOK_INTERVAL = 0.2  # seconds between webhook passes (on their own thread, until nothing is due)
STREAM_INTERVAL = 0.2  # seconds between stream-out passes (on their own thread, until none is left)


class SignalsClassifier(bots.Classifier):
    """The request-level bot classifier (services/bots.py) over the signal adapters: user
    agents (ua-parser, crawler lists) and addresses (IP datasets, `networks`, the installation's;
    with `workspace_networks`, each request's own workspace's lists over them).

    `listed`, `listed_ttl` and `secure_of` are the classifier's (early sightings, plain-HTTP
    domains); this class only picks the adapters.
    """

    def __init__(
        self,
        networks: NetworkList | None = None,
        listed: Callable[[], set[str]] | None = None,
        listed_ttl: float = 60.0,
        workspace_networks: WorkspaceNetworks | None = None,
        secure_of: Callable[[int], bool | None] | None = None,
    ) -> None:
        self.networks = networks
        self.workspace_networks = workspace_networks
        super().__init__(
            self._facts, self._ip_kind, listed=listed, listed_ttl=listed_ttl, secure_of=secure_of
        )

    def _networks(self, campaign_id: int | None) -> NetworkList | None:
        if campaign_id is None or self.workspace_networks is None:
            return self.networks
        return self.workspace_networks.for_campaign(campaign_id)

    def _facts(
        self,
        method: str,
        user_agent: str | None,
        headers: Mapping[str, str],
        ip: str | None,
        at_us: int,
        delivered_us: int | None,
        sent_us: int | None,
        campaign_id: int | None,
    ) -> RequestFacts:
        return facts_for(
            method, user_agent, headers, ip, at_us, delivered_us, sent_us,
            self._networks(campaign_id),
        )  # fmt: skip

    def _ip_kind(self, ip: str | None, campaign_id: int | None) -> str | None:
        return ip_facts(ip, self._networks(campaign_id)).kind


@dataclass
class Container:
    """Adapters built lazily from settings; one per process.

    With `run_migrations` false the engine trusts the schema to be current (the parent of
    several workers migrated it already).
    """

    settings: Settings
    run_migrations: bool = True

    @cached_property
    def engine(self) -> sa.Engine:
        """The database engine, schema migrated to the newest version."""
        engine = create_engine(self.settings.resolved_database_url)
        if self.run_migrations:
            migrate(engine)
        if self.settings.stream_url and self.stream_target:  # checked; its workspaces get events
            stream_workspaces(engine, self.settings.stream_workspace_set())
        return engine

    @cached_property
    def stream_target(self) -> StreamTarget:
        """Where the stream-out publishes (brokers/: NATS JetStream or Redis Streams)."""
        s = self.settings
        return check_target(StreamTarget(s.stream_url, s.stream_prefix, s.stream_name, s.stream_dedup_window, s.stream_maxlen))  # fmt: skip

    @cached_property
    def stream_worker(self) -> StreamOut:
        """The stream-out of outbox events, with `stream_url` (services/streams.py)."""
        return StreamOut(StreamQueries(self.engine), open_publisher(self.stream_target), self.settings.stream_workspace_set())  # fmt: skip

    @cached_property
    def attribution(self) -> AttributionQueries:
        """Attribution settings and conversion credits (storage/attribution.py)."""
        return AttributionQueries(self.engine)

    @cached_property
    def campaigns(self) -> CampaignQueries:
        """Campaigns and their links (storage/campaigns.py)."""
        return CampaignQueries(self.engine)

    @cached_property
    def clicks(self) -> ClickQueries:
        """Stored clicks, their verdicts and the inbox (storage/clicks.py)."""
        return ClickQueries(self.engine)

    @cached_property
    def contacts(self) -> ContactQueries:
        """Contacts and contact lists (storage/contacts.py)."""
        return ContactQueries(self.engine)

    @cached_property
    def conversions(self) -> ConversionQueries:
        """Conversions, events' duplicate modes, the rejected log (storage/conversions.py)."""
        return ConversionQueries(self.engine)

    @cached_property
    def conversion_keys(self) -> ConversionKeyQueries:
        """Postback secrets and publishable keys (storage/conversion_keys.py)."""
        return ConversionKeyQueries(self.engine)

    @cached_property
    def multitouch(self) -> MultiTouchQueries:
        """Multi-touch attribution's reads (storage/multitouch.py)."""
        return MultiTouchQueries(self.engine, self.attribution)

    @cached_property
    def touchpoints(self) -> TouchpointQueries:
        """Other channels' touchpoints (storage/touchpoints.py)."""
        return TouchpointQueries(self.engine)

    @cached_property
    def engagement(self) -> EngagementQueries:
        """Engagement scores: settings, kept scores, contacts to score again
        (storage/engagement.py)."""
        return EngagementQueries(self.engine)

    @cached_property
    def webhooks(self) -> WebhookQueries:
        """Webhook endpoints (storage/webhooks.py)."""
        return WebhookQueries(self.engine)

    @cached_property
    def segments(self) -> SegmentQueries:
        """Segments and static members; segments' sizes and members (storage/segments.py)."""
        return SegmentQueries(self.engine)

    @cached_property
    def automations(self) -> AutomationQueries:
        """Automations (storage/automations.py)."""
        return AutomationQueries(self.engine)

    @cached_property
    def deliveries(self) -> DeliveryQueries:
        """Webhook deliveries, their log, the outbox as the dispatcher reads it."""
        return DeliveryQueries(self.engine)

    @cached_property
    def webhook_worker(self) -> Deliveries:
        """The jobs process's webhook work (services/deliveries.py): fan-out from the event
        outbox, signed attempts under the outbound policy, retries, disabling."""
        s = self.settings
        policy = DisablePolicy(s.webhook_disable_failures, s.webhook_disable_after * 1_000_000)
        return Deliveries(self.deliveries, WebhookPoster(self.outbound), timeout=s.webhook_timeout, concurrency=s.webhook_concurrency, policy=policy)  # fmt: skip

    @cached_property
    def messages(self) -> MessageQueries:
        """Messages: storing them with their tokens, receipts, lookups (storage/messages.py)."""
        return MessageQueries(self.engine)

    @cached_property
    def network_lists(self) -> NetworkListQueries:
        """Workspaces' network lists for bot filtering (storage/networks.py)."""
        return NetworkListQueries(self.engine)

    @cached_property
    def workspaces(self) -> WorkspaceQueries:
        """Workspaces and their short domains (storage/workspaces.py)."""
        return WorkspaceQueries(self.engine)

    @cached_property
    def listing_queries(self) -> ListingQueries:
        """The paginated listings of the API (and of `contacts list`)."""
        return ListingQueries(self.engine)

    @cached_property
    def report_queries(self) -> ReportQueries:
        """The report queries, with the user-agent parser for device breakdowns."""
        return ReportQueries(
            self.engine, ua_facts=ua_facts, settle_us=self.settings.bot_settle_seconds * 1_000_000
        )

    @cached_property
    def export_queries(self) -> ExportQueries:
        """The export queries (click events and messages in chunks)."""
        return ExportQueries(self.engine)

    @cached_property
    def wrap_queries(self) -> WrapQueries:
        """The wrap-only messages' lookups and writes."""
        return WrapQueries(self.engine)

    @cached_property
    def keys(self) -> KeyQueries:
        """API keys: authenticating one; a workspace's keys (create, list, revoke, rotate)."""
        return KeyQueries(self.engine)

    @cached_property
    def send_jobs(self) -> SqlSendJobs:
        """Sending jobs and their messages' send state (storage/sending.py)."""
        return SqlSendJobs(self.engine)

    @cached_property
    def optout_queries(self) -> OptOutQueries:
        """Opt-out state, history and keyword replies."""
        return OptOutQueries(self.engine)

    def provider(
        self,
        name: str = "outbox",
        outbox_path: str | None = None,
        *,
        workspace: Workspace | None = None,
    ) -> SmsProvider:
        """Return the SMS provider called `name`: the outbox, or one `workspace` configured
        (`clicktrail provider add`), its secrets resolved from the environment.

        Raises `NotFound` for a name the workspace does not have, `InvalidInput` for an unset
        secret variable.
        """
        from pathlib import Path

        if name == "outbox":
            return OutboxProvider(
                Path(outbox_path) if outbox_path else self.settings.resolved_outbox_path
            )
        if workspace is not None:
            return build_sender(
                self.provider_repo, self.provider_kinds, workspace, name, self.secret_env
            )
        raise InvalidInput(
            f"unknown provider {name!r}; available: {', '.join(PROVIDERS)}", field="provider"
        )

    @cached_property
    def sending(self) -> Sending:
        """Sending jobs (services/sending/): providers named ``outbox``, ``outbox:PATH`` or a
        workspace's configured provider."""
        s = self.settings

        def provider_for(workspace: Workspace, spec: str) -> SmsProvider:
            name, _, path = spec.partition(":") if spec.startswith("outbox:") else (spec, "", "")
            return self.provider(name, path or None, workspace=workspace)

        defaults = SendDefaults(
            rate=s.send_rate, max_attempts=s.send_max_attempts, max_age_s=s.send_max_age
        )
        return Sending(
            self,
            self.send_jobs,
            provider_for,
            defaults=defaults,
            background=s.send_in_server,
            holdouts=self.holdouts,
            audiences=lambda campaign, now: segments.audience_query(self, campaign, now),
        )

    def campaign_lift(self, _workspace: Workspace, campaign: Campaign) -> LiftReport | None:
        """A campaign's lift against its holdout, None without one (the dashboard's card)."""
        return incrementality.lift_if_any(
            self.holdouts, campaign, now_us=now_us(), window_for=self.lift_window
        )

    def lift_window(self, campaign: Campaign) -> tuple[int, str]:
        """The window a campaign's lift counts conversions in (its attribution click window),
        and where it comes from."""
        return incrementality.attribution_window(self.attribution, campaign)

    @cached_property
    def holdouts(self) -> HoldoutQueries:
        """Campaigns' holdouts: their draws and held-out contacts (services/holdouts.py)."""
        return HoldoutQueries(self.engine)

    @cached_property
    def provider_repo(self) -> ProviderRepo:
        """The provider accounts of workspaces (Twilio, generic HTTP)."""
        return ProviderRepo(self.engine)

    @cached_property
    def provider_kinds(self) -> dict[str, ProviderKind]:
        """The kinds of provider a workspace can configure, by name."""
        return {"twilio": TwilioKind(self.outbound), "http": HttpKind(self.outbound)}

    @cached_property
    def outbound(self) -> OutboundPolicy:
        """Where requests to providers may go: public https addresses, and the operator's
        exceptions (outbound_allow_networks, outbound_allow_http)."""
        s = self.settings
        allowed = parse_networks(s.outbound_allow_networks, "outbound_allow_networks")
        return OutboundPolicy(allowed, s.outbound_allow_http)

    @cached_property
    def secret_env(self) -> SecretEnvironment:
        """The environment variables provider secrets may reference (secret_env_prefix)."""
        return SecretEnvironment(os.environ, self.settings.checked_secret_env_prefix())

    @cached_property
    def classifier(self) -> SignalsClassifier:
        """The request-level bot classifier, with the configured extra networks and each
        workspace's own network lists over them."""
        s = self.settings
        path = s.bot_networks_file
        configured = load_networks([Path(path)], name="configured") if path else None
        return SignalsClassifier(
            configured,
            listed=lambda: bots.listed_entities(
                self.clicks, now_us(), days=s.bot_early_days, min_campaigns=s.bot_early_campaigns
            ),
            workspace_networks=WorkspaceNetworks(
                configured,
                revisions=self.network_lists.network_list_revisions,
                ranges_of=lambda ws: [
                    (r.cidr, r.owner, r.kind, r.list_name)
                    for r in self.network_lists.workspace_network_ranges(ws)
                ],
                workspace_of=self.campaigns.campaign_workspace,
            ),
            secure_of=self.campaigns.campaign_is_secure,
        )

    def background_jobs(self) -> tuple[list[Job], Callable[[], object]]:
        """Return the periodic jobs (interval in seconds, job) and the final pass to run after
        the click log drained: the click pipeline (services/clicks.py: new clicks out of the
        inbox with provisional verdicts; final verdicts after the settle window; the engagement
        scores of the contacts they and conversions touched); kept scores of an older scoring
        epoch scored again (services/engagement.py, `rescore_stale`); and, with
        `send_in_server`, the sending worker; attribution (services/attribution.py: new
        conversions, credits waiting for final verdicts, re-attribution after a change);
        webhook deliveries; automation runs; with `stream_url`, the stream-out."""
        clicks = ClickPipeline(
            self.clicks, self.classifier, settle_us=self.settings.bot_settle_seconds * 1_000_000,
            rescore=lambda: engagement.refresh_dirty(self.engagement, now_us()),
        )  # fmt: skip

        def rescore_stale() -> int:
            return engagement.rescore_stale(self.engagement, now_us())

        runs = self.automations.runs  # automation runs: scheduled from the outbox, fired when due
        automations = AutomationWorker(self, runs, runs.fire, self.sending.provider_for, now_us)
        jobs: list[Job] = [
            (1.0, clicks.process_new),
            (RESCORE_INTERVAL, rescore_stale),
            (self.settings.bot_finalize_interval, clicks.finalize),
            (ATTRIBUTION_INTERVAL, Attributor(self.attribution).tick),
            (WEBHOOK_INTERVAL, self.webhook_worker.kick),
            (0.5, automations.tick),
        ]
        if self.settings.send_in_server:  # sending jobs: API-started, or whose sender died
            jobs.append((2.0, self.sending.worker.tick))
        if self.settings.stream_url:  # the stream-out (services/streams.py)
            jobs.append((STREAM_INTERVAL, self.stream_worker.kick))
        return jobs, clicks.process_new

    def web_app(
        self, *, dispose_on_close: bool = False, jobs_in_process: bool = True
    ) -> ClicktrailApp:
        """Return the ASGI app: redirect, click log and API on this container's repositories.

        With `dispose_on_close`, the app's shutdown also closes the engine's connections (for a
        process whose only job is serving this app). Without `jobs_in_process`, the background
        jobs are left to a process of their own (`clicktrail.jobs.process`; `clicktrail serve`
        starts it).
        """
        s = self.settings
        resolver = TokenResolver(self.engine, s.token_cache_size)
        jobs, final_pass = self.background_jobs() if jobs_in_process else ([], None)
        # In this process (`uvicorn --factory`, tests) the jobs run on a thread of the server.
        writer = InboxWriter(self.engine)
        clicks = ClickLog(
            s.resolved_spool_dir,
            writer,
            flush_interval=s.click_flush_interval,
            flush_max=s.click_flush_max,
            raw=True,  # spool lines go to the inbox as they are
        )

        def close() -> None:
            resolver.stop_prefetch()
            resolver.close()
            writer.close()
            if dispose_on_close:
                self.dispose()

        return ClicktrailApp(
            self,
            resolver.resolve,
            clicks,
            on_close=close,
            cached=resolver.cached,
            fallback_url_for=resolver.fallback_for,
            lookup_offload=(
                LookupOffload(resolver.resolve, resolver.mark_unavailable)
                if resolver.is_remote
                else None
            ),
            trusted_proxies=parse_networks(s.trusted_proxies),
            miss_guard=s.miss_guard(),
            jobs=Periodic(jobs),
            # The last clicks written at shutdown get their provisional verdicts too.
            after_drain=final_pass,
            on_start=lambda: resolver.start_prefetch(s.token_prefetch_interval),
            extra_routes=self.extra_routes(),
            ready=lambda: check_ready(self.engine),
        )

    def extra_routes(self) -> list[BaseRoute]:
        """Routes of the API areas beyond the core (resources, reports, exports, dashboard)."""
        routes: list[BaseRoute] = []
        # Each area adds its routes on its own line below.
        routes += api_resources.routes(self, ListingQueries(self.engine), self.export_queries, self.provider)  # fmt: skip
        routes += api_reports.routes(self.keys, self.report_queries)
        routes += api_wrap.routes(self.keys, self, self.wrap_queries, default_region=self.settings.default_region or None)  # fmt: skip
        routes += api_optouts.routes(self.keys, self.contacts, self.optout_queries, twilio_signers=lambda: optouts.twilio_signers(self.workspaces, self.provider_repo, self.secret_env), default_region=self.settings.default_region or None)  # fmt: skip
        routes += api_sending.routes(self.keys, self.campaigns, lambda: self.sending)
        routes += api_providers.routes(self.keys, self, self.provider_repo, self.provider_kinds, self.secret_env)  # fmt: skip
        routes += api_networks.routes(self.keys, self.network_lists)
        routes += api_bots.routes(self.keys, self.campaigns, self.clicks, self.classifier)
        routes += api_attribution.routes(self.keys, self.attribution, self.report_queries, self.multitouch)  # fmt: skip
        routes += api_multitouch.routes(self.keys, self.multitouch)
        routes += api_keys.routes(self.keys, self.keys)
        # The anonymous conversion routes first: /v1/conversions/pixel.gif is no conversion id.
        routes += conversions_public.routes(self.conversions, self.conversion_keys)
        routes += api_conversions.routes(self.keys, self.conversions, self.campaigns, self.conversion_keys, default_region=self.settings.default_region or None)  # fmt: skip
        routes += api_touchpoints.routes(self.keys, self.touchpoints, default_region=self.settings.default_region or None)  # fmt: skip
        routes += api_webhooks.routes(self.keys, self.webhooks, self.deliveries, self.outbound.check_url)  # fmt: skip
        routes += api_automations.routes(self.keys, self, self.automations.runs)
        routes += api_lift.routes(self.keys, self.campaigns, self.holdouts, self.lift_window)
        routes += api_engagement.routes(self.keys, self.contacts, self.engagement)
        routes += api_segments.routes(self.keys, self)
        routes += dashboard.routes(self.keys, self.campaigns, self.clicks, self.report_queries, secret=dashboard.load_secret(Path(self.settings.data_dir) / "dashboard.secret"), credits=self.attribution, lift=self.campaign_lift, multi=self.multitouch, segment_sizes=lambda ws: segments.sizes(self, ws, now_us()), automations=self.automations, hooks=(self.webhooks, self.deliveries), runs=self.automations.runs)  # fmt: skip
        return routes

    def dispose(self) -> None:
        """Stop sending jobs running here (they stay running for the next process) and close
        pooled connections."""
        if "sending" in self.__dict__:
            self.sending.worker.stop()
        if "webhook_worker" in self.__dict__:
            self.webhook_worker.close()
        if "stream_worker" in self.__dict__:
            self.stream_worker.close()
        if "engine" in self.__dict__:
            self.engine.dispose()


def create_app(
    settings: Settings | None = None, *, run_migrations: bool = True, jobs_in_process: bool = True
) -> ClicktrailApp:
    """Return the ASGI app of one server process (an app factory: it opens its own pools).

    Without `settings`, they are loaded from the environment and the config file. Raises
    `InvalidInput` for bad settings. `jobs_in_process=False` when the jobs process
    (`clicktrail.jobs.process`) runs beside it.
    """
    settings = load_settings() if settings is None else settings
    configure_logging(settings.log_level)
    tune_malloc()
    return Container(settings, run_migrations=run_migrations).web_app(
        dispose_on_close=True, jobs_in_process=jobs_in_process
    )


_M_MMAP_THRESHOLD = -3  # glibc's mallopt parameters (malloc.h)
_M_ARENA_MAX = -8


def tune_malloc() -> bool:
    """Keep a server process's heap from growing with its request rate (glibc only); call
    before threads start. Returns whether both settings took.

    Each thread (the click writer, token prefetch) gets a malloc arena of its own, and glibc
    raises its mmap threshold after freeing a large block, so the writer's batches (hundreds of
    KB each) then come from arenas that keep the memory. Measured with 10 million tokens
    (bench/memory.py) at 23,000 redirects/s: peak RSS 151 MiB as glibc defaults it, 137 MiB
    with two arenas and a fixed 128 KiB threshold (large blocks mapped and returned at once).
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False  # not glibc: its own allocator policy stands
    return bool(mallopt(_M_ARENA_MAX, 2)) and bool(mallopt(_M_MMAP_THRESHOLD, 128 * 1024))


def configure_logging(level: str) -> None:
    """Log to stderr at `level`."""
    logging.getLogger("alembic").setLevel(logging.WARNING)
    logging.basicConfig(
        level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
