"""The composition root: the only module that picks adapters and wires them to services.

`create_app` is also the ASGI entry point for process managers
(``uvicorn --factory clicktrail.bootstrap:create_app``) and for the worker processes of
``clicktrail serve --workers N``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path

import sqlalchemy as sa
from starlette.routing import BaseRoute

from clicktrail.config import Settings, load_settings
from clicktrail.domain.bots.model import Verdict
from clicktrail.domain.bots.rules import classify_request
from clicktrail.domain.network import parse_networks
from clicktrail.services import bots
from clicktrail.services.clock import now_us
from clicktrail.services.ports import SmsProvider, StoredRequest
from clicktrail.signals import facts_for, ip_facts
from clicktrail.signals.network import NetworkList, load_networks
from clicktrail.signals.ua import ua_facts
from clicktrail.sms.outbox import OutboxProvider
from clicktrail.storage.clicklog import ClickLog
from clicktrail.storage.database import create_engine, migrate
from clicktrail.storage.exports import ExportQueries
from clicktrail.storage.listing import ListingQueries
from clicktrail.storage.reports import ReportQueries
from clicktrail.storage.resolver import TokenResolver
from clicktrail.storage.sql_store import SqlStore
from clicktrail.web import api_reports, api_resources, dashboard
from clicktrail.web.app import ClicktrailApp
from clicktrail.web.redirect import LookupOffload

PROVIDERS = ("outbox",)


class SignalsClassifier:
    """Request-level bot classification: signals adapters + the pure rules.

    `listed` returns the entities (``ip:ADDRESS``) listed for showing up early in several
    campaigns; it is asked again at most every `listed_ttl` seconds.
    """

    def __init__(
        self,
        networks: NetworkList | None = None,
        listed: Callable[[], set[str]] | None = None,
        listed_ttl: float = 60.0,
    ) -> None:
        self.networks = networks
        self.listed_ttl = listed_ttl
        self._listed_source = listed
        self._listed: set[str] = set()
        self._listed_until = 0.0

    def _listed_now(self) -> set[str]:
        if self._listed_source is not None and time.monotonic() >= self._listed_until:
            self._listed = self._listed_source()
            self._listed_until = time.monotonic() + self.listed_ttl
        return self._listed

    def ip_kind(self, ip: str | None) -> str | None:
        """Return the kind of network of `ip` from the signals' datasets."""
        return ip_facts(ip, self.networks).kind

    def classify(self, request: StoredRequest) -> Verdict:
        """Return the verdict of one stored request from its own signals."""
        facts = facts_for(
            request.method, request.user_agent, request.headers, request.ip,
            request.at_us, request.delivered_us, request.sent_us, self.networks,
        )  # fmt: skip
        if request.ip and f"ip:{request.ip}" in self._listed_now() and facts.net.listed is None:
            facts = replace(facts, net=replace(facts.net, listed="early-sightings"))
        return classify_request(facts)


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
        return engine

    @cached_property
    def store(self) -> SqlStore:
        """The SQL store."""
        return SqlStore(self.engine)

    @cached_property
    def report_queries(self) -> ReportQueries:
        """The report queries, with the user-agent parser for device breakdowns."""
        return ReportQueries(self.engine, ua_facts=ua_facts)

    @cached_property
    def export_queries(self) -> ExportQueries:
        """The export queries (click events and messages in chunks)."""
        return ExportQueries(self.engine)

    def provider(self, name: str = "outbox", outbox_path: str | None = None) -> SmsProvider:
        """Return the SMS provider called `name`."""
        from pathlib import Path

        from clicktrail.domain.errors import InvalidInput

        if name == "outbox":
            return OutboxProvider(
                Path(outbox_path) if outbox_path else self.settings.resolved_outbox_path
            )
        raise InvalidInput(
            f"unknown provider {name!r}; available: {', '.join(PROVIDERS)}", field="provider"
        )

    @cached_property
    def classifier(self) -> SignalsClassifier:
        """The request-level bot classifier, with the configured extra networks."""
        s = self.settings
        path = s.bot_networks_file
        return SignalsClassifier(
            load_networks([Path(path)], name="configured") if path else None,
            listed=lambda: bots.listed_entities(
                self.store, now_us(), days=s.bot_early_days, min_campaigns=s.bot_early_campaigns
            ),
        )

    def web_app(self, *, dispose_on_close: bool = False) -> ClicktrailApp:
        """Return the ASGI app: redirect, click log and API on this container's store.

        With `dispose_on_close`, the app's shutdown also closes the engine's connections (for a
        process whose only job is serving this app).
        """
        s = self.settings
        resolver = TokenResolver(self.engine, s.token_cache_size)
        classify_new = bots.ClassifyNew(self.store, self.classifier)
        clicks = ClickLog(
            s.resolved_spool_dir,
            self.store.insert_clicks,
            flush_interval=s.click_flush_interval,
            flush_max=s.click_flush_max,
        )

        def close() -> None:
            resolver.close()
            if dispose_on_close:
                self.dispose()

        return ClicktrailApp(
            self.store,
            resolver.resolve,
            clicks,
            on_close=close,
            fallback_url_for=resolver.fallback_for,
            lookup_offload=(
                LookupOffload(resolver.cached, resolver.resolve, resolver.mark_unavailable)
                if resolver.is_remote
                else None
            ),
            trusted_proxies=parse_networks(s.trusted_proxies),
            jobs=[(1.0, classify_new), (s.bot_finalize_interval, self._finalize_bots)],
            # The last clicks written at shutdown get their provisional verdicts too.
            after_drain=classify_new,
            extra_routes=self.extra_routes(),
        )

    def extra_routes(self) -> list[BaseRoute]:
        """Routes of the API areas beyond the core (resources, reports, exports, dashboard)."""
        routes: list[BaseRoute] = []
        # Each area adds its routes on its own line below.
        routes += api_resources.routes(self.store, ListingQueries(self.engine), self.export_queries, self.provider)  # fmt: skip
        routes += api_reports.routes(self.store, self.report_queries)
        routes += dashboard.routes(self.store, self.report_queries, secret=dashboard.load_secret(Path(self.settings.data_dir) / "dashboard.secret"))  # fmt: skip
        return routes

    def _finalize_bots(self) -> None:
        bots.finalize_settled(
            self.store,
            now_us(),
            settle_us=self.settings.bot_settle_seconds * 1_000_000,
            ip_kind=self.classifier.ip_kind,
        )

    def dispose(self) -> None:
        """Close pooled connections."""
        if "engine" in self.__dict__:
            self.engine.dispose()


def create_app(settings: Settings | None = None, *, run_migrations: bool = True) -> ClicktrailApp:
    """Return the ASGI app of one server process (an app factory: it opens its own pools).

    Without `settings`, they are loaded from the environment and the config file. Raises
    `InvalidInput` for bad settings.
    """
    settings = load_settings() if settings is None else settings
    configure_logging(settings.log_level)
    return Container(settings, run_migrations=run_migrations).web_app(dispose_on_close=True)


def configure_logging(level: str) -> None:
    """Log to stderr at `level`."""
    logging.getLogger("alembic").setLevel(logging.WARNING)
    logging.basicConfig(
        level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
