"""The records bot classification works on. This module is the contract between the pure rules
(`domain/bots/rules.py`), the signal adapters (`clicktrail/signals/`) and storage."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

# human: a person's tap. preview: a link-preview fetch (messaging apps; shows the message was
# displayed, never a click). scanner: security scanning (carrier, antivirus, mail gateways).
# automation: other scripted traffic. probe: HEAD/OPTIONS. suspect: signals disagree; counted
# as human in filtered reports unless a rule says otherwise (see docs/bots.md).
VERDICTS = ("human", "preview", "scanner", "automation", "probe", "suspect")
CLASSIFIER_VERSION = "3"  # 3: UA_NON_BROWSER (issue 14)

# Kinds of network a CIDR list (a workspace's, or the installation's imported file) may name.
# Only LISTED_KINDS mean "not a person's own connection" and set `IpFacts.listed`; "mobile" and
# "relay" ranges say many people share the address (carrier NAT, Private Relay), which protects
# them from rules that would otherwise fire on a shared address.
LISTED_KINDS = frozenset({"hosting", "cdn", "crawler", "scanner"})
RANGE_KINDS = frozenset({*LISTED_KINDS, "mobile", "relay", "residential", "vpn", "tor"})


@dataclass(frozen=True, slots=True)
class UaFacts:
    """What the user agent says, found by the UA adapter (ua-parser and bot lists)."""

    browser: str | None = None  # family, e.g. "Mobile Safari", "Chrome Mobile"
    os: str | None = None  # family, e.g. "iOS", "Android"
    device: str | None = None  # family, e.g. "iPhone", "Samsung SM-S918B", "Spider"
    in_app: str | None = None  # in-app browser name (Instagram, Facebook, TikTok, GSA, WeChat…)
    # A known human app or browser (signals/human_apps.py): an in-app browser, or a real browser
    # whose UA is not browser-shaped (Opera Mini, UC Browser, feature phones).
    human_app: str | None = None
    bot_list_match: str | None = None  # the pattern of a public bot list that matched
    browser_major: int | None = None  # major version of `browser`, e.g. 137


@dataclass(frozen=True, slots=True)
class IpFacts:
    """What is known of the client address, from offline datasets and workspace lists."""

    # hosting | cdn | crawler | mobile | relay | residential | tor | vpn | reserved | unknown
    kind: str | None = None
    owner: str | None = None  # e.g. "Amazon", "Google", "Apple iCloud Private Relay"
    listed: str | None = None  # name of a workspace or imported CIDR list that matched


@dataclass(frozen=True, slots=True)
class RequestFacts:
    """One stored request as the request-level rules see it.

    `headers` are the allow-listed headers as stored with the click (lowercase names; `_http`
    is the HTTP version, `_ua` is "missing" when the User-Agent header was absent).
    """

    method: str
    user_agent: str | None
    headers: Mapping[str, str]
    ip: str | None
    ua: UaFacts = field(default_factory=UaFacts)
    net: IpFacts = field(default_factory=IpFacts)
    ms_since_delivery: int | None = None  # negative: before the delivery receipt
    ms_since_send: int | None = None


@dataclass(frozen=True, slots=True)
class Verdict:
    """A classification: the verdict, a bot score 0–100, stable reason codes, the version."""

    verdict: str
    score: int
    reasons: tuple[str, ...]
    version: str = CLASSIFIER_VERSION


@dataclass(frozen=True, slots=True)
class ClickFacts:
    """One stored request with what the behavioural rules (windows over many requests) need."""

    click_id: str
    message_id: int
    contact_id: int
    link_id: int
    campaign_id: int
    at_us: int
    ip: str | None
    user_agent: str | None
    request_verdict: Verdict
    message_links: int = 0  # links in the message's text; 0 when unknown
    ip_kind: str | None = None  # `IpFacts.kind` of `ip`: shared addresses need more evidence
