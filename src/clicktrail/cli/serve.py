"""`clicktrail serve`: run the server in this process (uvicorn, httptools, uvloop)."""

from __future__ import annotations

import sys

import uvicorn

from clicktrail.bootstrap import Container, configure_logging
from clicktrail.config import Settings
from clicktrail.services import demo
from clicktrail.services.clock import now_us


def run_server(settings: Settings, *, demo_mode: bool = False) -> None:
    """Migrate, optionally seed the demo, print where to go, and serve until Ctrl-C/SIGTERM."""
    configure_logging(settings.log_level)
    container = Container(settings)
    store = container.store  # migrates
    if demo_mode:
        info = demo.seed_demo(
            store, container.provider("outbox"), host=settings.host, port=settings.port,
            clock=now_us,
        )  # fmt: skip
        _print_banner(container, info)
    app = container.web_app()
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        loop="uvloop" if sys.platform != "win32" else "asyncio",
        http="httptools",
        lifespan="on",
        access_log=settings.access_log,
        log_level=settings.log_level,
        server_header=False,
        timeout_graceful_shutdown=10,
    )
    try:
        uvicorn.Server(config).run()
    finally:
        container.dispose()


def _print_banner(container: Container, info: demo.DemoInfo) -> None:
    s = container.settings
    base = f"http://{s.host}:{s.port}"
    store = container.store
    lines = ["", "clicktrail is starting with a DEMO workspace (sample data, fictional numbers)."]
    if not info.workspace.is_demo:
        lines.append(f"The database already has workspaces; showing {info.workspace.slug!r}.")
    else:
        campaign = store.find_campaign(info.workspace.id, info.campaign_slug)
        if campaign is not None:
            lines += [
                f"  database     {s.resolved_database_url}",
                f"  outbox       {s.resolved_outbox_path}  (the demo's 'sent' messages)",
                f"  health       {base}/healthz",
                "",
                "Try a tracked link (each recipient has their own; it 302s to the real URL):",
            ]
            for token, phone, dest in store.sample_links(campaign.id, 2):
                lines.append(f"  {base}/c/{token}    ({phone} → {dest})")
            key = container_key(container, info)
            lines += [
                "",
                "Then read the report:",
                f"  .venv/bin/clicktrail report {info.campaign_slug} -w demo",
                f"  curl -H 'Authorization: Bearer {key}' {base}/v1/campaigns/{info.campaign_slug}/report",
                "",
                "Press Ctrl-C to stop. Your own data: see README (workspace create, domain add, …).",
            ]
    print("\n".join(lines), flush=True)


def container_key(container: Container, info: demo.DemoInfo) -> str:
    """Create a fresh API key for the demo workspace (keys are stored hashed, never re-shown)."""
    from clicktrail.services.workspaces import create_api_key

    return create_api_key(container.store, info.workspace, "demo (make run)", now_us())
