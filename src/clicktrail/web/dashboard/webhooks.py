"""What the dashboard's Webhooks page shows: each endpoint of the workspace with its state (why
it was disabled, the run of failures) and its latest deliveries."""

from __future__ import annotations

from dataclasses import dataclass

from clicktrail.domain.models import Workspace
from clicktrail.services.deliveries import Delivery, DeliveryStore
from clicktrail.services.webhooks import WebhookStore


@dataclass(frozen=True)
class EndpointView:
    """A webhook endpoint as the dashboard shows it, with its latest deliveries."""

    id: str
    url: str
    description: str
    events: tuple[str, ...]
    enabled: bool
    disabled_reason: str | None
    disabled_us: int | None
    failures: int
    failing_since_us: int | None
    deliveries: list[Delivery]


def webhooks_view(
    hooks: WebhookStore, sent: DeliveryStore, ws: Workspace, latest: int = 20
) -> list[EndpointView]:
    """Return the workspace's webhook endpoints (at most 50), each with its `latest`
    deliveries, newest first."""
    return [
        EndpointView(
            ep.public_id,
            ep.url,
            ep.description,
            ep.event_types,
            ep.enabled,
            ep.disabled_reason,
            ep.disabled_us,
            ep.failures,
            ep.failing_since_us,
            sent.deliveries_page(ws.id, ep.id, None, latest, None),
        )
        for ep in hooks.endpoints_page(ws.id, None, 50)
    ]
