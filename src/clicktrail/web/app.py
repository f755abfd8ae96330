"""One ASGI application: the redirect under the domain prefix, the API everywhere else."""

from __future__ import annotations

import gc
import logging
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from starlette.routing import BaseRoute

from clicktrail.domain.guessing import MissGuard
from clicktrail.domain.network import Network
from clicktrail.services.ports import Target
from clicktrail.web.api import ApiRepos, build_api
from clicktrail.web.home import home_route
from clicktrail.web.redirect import LookupOffload, Message, Receive, RedirectApp, Scope, Send

log = logging.getLogger("clicktrail.web")


class ClickSink(Protocol):
    """Where the redirect puts clicks (`storage.clicklog.ClickLog`)."""

    def start(self) -> int: ...
    def record(self, rec: tuple[Any, ...]) -> None: ...
    def append(self, rec: tuple[Any, ...]) -> None: ...
    def sync(self) -> None: ...
    def close(self) -> None: ...


class JobRunner(Protocol):
    """What runs the background jobs inside a server process (`services.scheduler.Periodic`)."""

    def start(self) -> None: ...
    def stop(self) -> None: ...


class _NoJobs:
    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass


class ClicktrailApp:
    """The whole server. Lifespan: replay and start the click log; on stop, drain it."""

    def __init__(
        self,
        repos: ApiRepos,
        resolve: Callable[[str], Target | None],
        clicks: ClickSink,
        on_close: Callable[[], None] | None = None,
        *,
        cached: Callable[[str], Target | None] = lambda _token: None,
        fallback_url_for: Callable[[str], str | None] = lambda _host: None,
        trusted_proxies: Sequence[Network] = (),
        lookup_offload: LookupOffload | None = None,
        jobs: JobRunner | None = None,
        extra_routes: Sequence[BaseRoute] = (),
        after_drain: Callable[[], object] | None = None,
        on_start: Callable[[], object] | None = None,
        miss_guard: MissGuard | None = None,
        ready: Callable[[], object] = lambda: None,
    ) -> None:
        self.after_drain = after_drain
        self.on_start = on_start
        self.jobs = jobs if jobs is not None else _NoJobs()
        self.clicks = clicks
        self.on_close = on_close
        self.offload = lookup_offload
        extra_routes = [home_route(fallback_url_for), *extra_routes]
        self.redirect = RedirectApp(
            resolve,
            clicks.record,
            build_api(repos, extra_routes, ready),
            cached=cached,
            fallback_url_for=fallback_url_for,
            trusted_proxies=trusted_proxies,
            lookup_offload=lookup_offload,
            append=clicks.append,
            sync=clicks.sync,
            miss_guard=miss_guard,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        await self.redirect(scope, receive, send)

    def startup(self) -> int:
        """Replay the spool, start the click log and the background jobs; return replayed."""
        replayed = self.clicks.start()
        if replayed:
            log.info("recovered %d clicks from the spool", replayed)
        self.jobs.start()
        if self.on_start is not None:
            self.on_start()
        # What start-up built (modules, routes, settings) lives as long as the process: out of
        # the collector's sight, a full collection no longer scans it (pauses of tens of ms on
        # the redirect otherwise).
        gc.freeze()
        return replayed

    def shutdown(self) -> None:
        """Stop the jobs, drain the click log, run the final pass, close connections."""
        self.jobs.stop()
        if self.offload is not None:
            self.offload.close()
        self.clicks.close()
        if self.after_drain is not None:
            try:
                self.after_drain()
            except Exception:
                log.exception("final pass after draining clicks failed")
        if self.on_close is not None:
            self.on_close()

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message: Message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    self.startup()
                except Exception as exc:
                    log.exception("start-up failed")
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                self.shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return
