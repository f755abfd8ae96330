"""Signal adapters for bot classification: facts about a request that need libraries or data.

`ua_facts` (ua-parser, crawler-user-agents) and `ip_facts` (iporigin, imported range lists)
turn raw strings into the `UaFacts` / `IpFacts` records that the pure rules in
`clicktrail.domain.bots.rules` read; `facts_for` assembles a whole `RequestFacts`.
"""

from __future__ import annotations

from collections.abc import Mapping

from clicktrail.domain.bots.model import RequestFacts
from clicktrail.signals.network import (
    NetworkList,
    NetworkRange,
    WorkspaceNetworks,
    ip_facts,
    load_networks,
    parse_range_file,
    range_file_entries,
    workspace_network_list,
    write_ranges,
)
from clicktrail.signals.ua import ua_facts

__all__ = [
    "NetworkList",
    "NetworkRange",
    "WorkspaceNetworks",
    "facts_for",
    "ip_facts",
    "load_networks",
    "parse_range_file",
    "range_file_entries",
    "ua_facts",
    "workspace_network_list",
    "write_ranges",
]


def facts_for(
    method: str,
    user_agent: str | None,
    headers: Mapping[str, str],
    ip: str | None,
    at_us: int,
    delivered_us: int | None,
    sent_us: int | None,
    extra_networks: NetworkList | None = None,
) -> RequestFacts:
    """Return the `RequestFacts` of one stored request.

    `headers` are the stored allow-listed headers (lowercase names). Times are microseconds
    since the epoch; the deltas are floored to milliseconds, so a request even a fraction of a
    millisecond before the receipt counts as before delivery.
    """
    return RequestFacts(
        method=method,
        user_agent=user_agent,
        headers=headers,
        ip=ip,
        ua=ua_facts(user_agent),
        net=ip_facts(ip, extra_networks),
        ms_since_delivery=(at_us - delivered_us) // 1000 if delivered_us is not None else None,
        ms_since_send=(at_us - sent_us) // 1000 if sent_us is not None else None,
    )
