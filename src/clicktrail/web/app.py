"""One ASGI application: the redirect under the domain prefix, the API everywhere else."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Protocol

from clicktrail.domain.network import Network
from clicktrail.services.ports import ClickRecord, Store, Target
from clicktrail.web.api import build_api
from clicktrail.web.redirect import LookupOffload, Message, Receive, RedirectApp, Scope, Send

log = logging.getLogger("clicktrail.web")


class ClickSink(Protocol):
    """Where the redirect puts clicks (`storage.clicklog.ClickLog`)."""

    def start(self) -> int: ...
    def record(self, rec: ClickRecord) -> None: ...
    def close(self) -> None: ...


class ClicktrailApp:
    """The whole server. Lifespan: replay and start the click log; on stop, drain it."""

    def __init__(
        self,
        store: Store,
        resolve: Callable[[str], Target | None],
        clicks: ClickSink,
        on_close: Callable[[], None] | None = None,
        *,
        fallback_url_for: Callable[[str], str | None] = lambda _host: None,
        trusted_proxies: Sequence[Network] = (),
        lookup_offload: LookupOffload | None = None,
    ) -> None:
        self.clicks = clicks
        self.on_close = on_close
        self.offload = lookup_offload
        self.redirect = RedirectApp(
            resolve,
            clicks.record,
            build_api(store),
            fallback_url_for=fallback_url_for,
            trusted_proxies=trusted_proxies,
            lookup_offload=lookup_offload,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        await self.redirect(scope, receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message: Message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    replayed = self.clicks.start()
                except Exception as exc:
                    log.exception("start-up failed")
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                if replayed:
                    log.info("recovered %d clicks from the spool", replayed)
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self.offload is not None:
                    self.offload.close()
                self.clicks.close()
                if self.on_close is not None:
                    self.on_close()
                await send({"type": "lifespan.shutdown.complete"})
                return
