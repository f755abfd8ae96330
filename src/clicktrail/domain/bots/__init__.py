"""Bot and prefetch click filtering: the facts about a request, verdicts and their reasons.

Pure: the facts that need libraries or data files (parsed user agent, IP ownership) are found by
the `clicktrail.signals` adapter and handed in as `UaFacts` / `IpFacts`.
"""

from clicktrail.domain.bots.model import (
    CLASSIFIER_VERSION,
    VERDICTS,
    ClickFacts,
    IpFacts,
    RequestFacts,
    UaFacts,
    Verdict,
)

__all__ = [
    "CLASSIFIER_VERSION",
    "VERDICTS",
    "ClickFacts",
    "IpFacts",
    "RequestFacts",
    "UaFacts",
    "Verdict",
]
