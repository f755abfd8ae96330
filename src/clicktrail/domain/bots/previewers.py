"""The curated list of link previewers and security scanners, as data with a source per entry.

Checked before the public bot list (`clicktrail.signals.ua`), because these are the agents that
fetch SMS links without a tap, and because some of them dress as browsers: Samsung Messages
sends a fake 2013 desktop Firefox, iOS a Safari+crawler hybrid, Discord's media proxy an old
macOS Firefox. Each entry names where its user agent is documented, so that a reviewer can check
it without trusting us; the sources are written down, never fetched.

An entry matches when its `pattern` occurs in the User-Agent (`kind="substring"`, case-sensitive),
when the whole User-Agent equals it (`kind="exact"`: for spoofed browser strings, which must not
catch a real browser that merely contains them), or when the regular expression searches true
(`kind="regex"`). The first entry that matches wins, so the specific ones come first.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

_KINDS = ("substring", "exact", "regex")


@dataclass(frozen=True, slots=True)
class Previewer:
    """One known previewer or scanner: how to recognise it and what it means."""

    name: str
    pattern: str
    verdict: str  # "preview" | "scanner"
    reason: str  # stable reason code, e.g. UA_PREVIEW_SAMSUNG
    source: str  # where this user agent is documented (text, not fetched)
    kind: str = "substring"
    note: str = ""
    _regex: re.Pattern[str] | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.kind not in _KINDS:
            raise ValueError(f"previewer {self.name!r}: kind must be one of {_KINDS}")
        if self.verdict not in ("preview", "scanner"):
            raise ValueError(f"previewer {self.name!r}: verdict must be preview or scanner")
        if self.kind == "regex":
            object.__setattr__(self, "_regex", re.compile(self.pattern))

    def matches(self, user_agent: str) -> bool:
        """Return whether this entry recognises `user_agent`."""
        if self._regex is not None:
            return self._regex.search(user_agent) is not None
        if self.kind == "exact":
            return user_agent == self.pattern
        return self.pattern in user_agent


class Previewers:
    """An ordered list of `Previewer` entries with a memo of answers per User-Agent string.

    User agents repeat massively (a campaign sees a few thousand distinct strings for a million
    requests), so each string is matched once. The memo is bounded: when full it is cleared,
    which costs one re-match per string and keeps memory flat on adversarial input.
    """

    __slots__ = ("_exact", "_memo", "_memo_size", "entries")

    def __init__(self, entries: Iterable[Previewer], memo_size: int = 65536) -> None:
        self.entries: tuple[Previewer, ...] = tuple(entries)
        # Exact strings first in a dict: one lookup instead of a scan.
        self._exact: dict[str, Previewer] = {}
        for e in self.entries:
            if e.kind == "exact":
                self._exact.setdefault(e.pattern, e)
        self._memo: dict[str, Previewer | None] = {}
        self._memo_size = memo_size

    def match(self, user_agent: str) -> Previewer | None:
        """Return the first entry that recognises `user_agent`, or None."""
        try:
            return self._memo[user_agent]
        except KeyError:
            pass
        found = self._exact.get(user_agent)
        if found is None:
            for e in self.entries:
                if e.kind != "exact" and e.matches(user_agent):
                    found = e
                    break
        if len(self._memo) >= self._memo_size:
            self._memo.clear()
        self._memo[user_agent] = found
        return found

    def plus(self, extra: Iterable[Previewer]) -> Previewers:
        """Return a new list with `extra` entries checked before these (user additions win)."""
        return Previewers((*tuple(extra), *self.entries), self._memo_size)


_P, _S = "preview", "scanner"

PREVIEWER_ENTRIES: tuple[Previewer, ...] = (
    # --- Device-side previews in SMS apps: fetched from the handset, often from its carrier IP.
    Previewer(
        "Samsung Messages (device preview)",
        "Mozilla/5.0 (X11; Ubuntu; Linux i686; rv:24.0) Gecko/20100101 Firefox/24.0",
        _P,
        "UA_PREVIEW_SAMSUNG",
        "Observed and published by SMS link-tracking vendors and in clicktrail issue 5: Samsung "
        "Messages fetches link previews from the handset with this fixed 2013 desktop Firefox UA",
        kind="exact",
        note="Comes from the recipient's own carrier IP, within seconds of delivery.",
    ),
    Previewer(
        "Apple iMessage / iOS Messages preview",
        "facebookexternalhit/1.1 Facebot Twitterbot/1.0",
        _P,
        "UA_PREVIEW_IMESSAGE",
        "Apple Messages link presentation (LPMetadataProvider) on iOS/macOS; widely documented "
        "by site owners debugging iMessage previews: a Safari UA followed by "
        "'facebookexternalhit/1.1 Facebot Twitterbot/1.0'",
        note="Must stay before the Facebook and X entries: it contains both of their tokens.",
    ),
    Previewer(
        "Google Messages preview",
        "GoogleMessages",
        _P,
        "UA_PREVIEW_GOOGLE_MESSAGES",
        "Google Messages (Android) server-side link preview; fetches from Google's published "
        "user-triggered-fetcher ranges with a Chrome Mobile UA ending in 'GoogleMessages'",
    ),
    # --- Messaging and social apps (server- or client-side link expansion).
    Previewer(
        "Signal link preview",
        "WhatsApp/2",
        _P,
        "UA_PREVIEW_SIGNAL",
        "Signal-Desktop ts/linkPreviews/linkPreviewFetch.ts and Signal-Android "
        "LinkPreviewRepository send the literal User-Agent 'WhatsApp/2' so sites serve OG tags",
        kind="exact",
        note="Before WhatsApp: Signal borrows WhatsApp's name; real WhatsApp adds a full version.",
    ),
    Previewer(
        "WhatsApp link preview",
        "WhatsApp/",
        _P,
        "UA_PREVIEW_WHATSAPP",
        "developers.facebook.com/docs/whatsapp (link previews) and monperrus/crawler-user-agents "
        "('WhatsApp/2.x A|i|W')",
    ),
    Previewer(
        "Telegram link preview",
        "TelegramBot",
        _P,
        "UA_PREVIEW_TELEGRAM",
        "core.telegram.org/bots/webapps and crawler-user-agents: 'TelegramBot (like TwitterBot)'",
    ),
    Previewer(
        "Slack link expanding",
        "Slackbot",
        _P,
        "UA_PREVIEW_SLACK",
        "api.slack.com/robots: 'Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)'",
    ),
    Previewer(
        "Slack image proxy",
        "Slack-ImgProxy",
        _P,
        "UA_PREVIEW_SLACK",
        "api.slack.com/robots: 'Slack-ImgProxy (+https://api.slack.com/robots)'",
    ),
    Previewer(
        "Discord link preview",
        "Discordbot",
        _P,
        "UA_PREVIEW_DISCORD",
        "Discord embeds: 'Mozilla/5.0 (compatible; Discordbot/2.0; +https://discordapp.com)' "
        "(crawler-user-agents)",
    ),
    Previewer(
        "Discord media proxy",
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 11.6; rv:92.0) Gecko/20100101 Firefox/92.0",
        _P,
        "UA_PREVIEW_DISCORD",
        "Discord's media proxy (images.discordapp.net / media.discordapp.net) fetches with this "
        "fixed macOS Firefox 92 UA; documented in Discord developer community threads",
        kind="exact",
    ),
    Previewer(
        "Discord media proxy (older)",
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10.10; rv:38.0) Gecko/20100101 Firefox/38.0",
        _P,
        "UA_PREVIEW_DISCORD",
        "Discord's media proxy before 2021, same sources as above",
        kind="exact",
    ),
    Previewer(
        "Microsoft Teams / Skype preview",
        "SkypeUriPreview",
        _P,
        "UA_PREVIEW_TEAMS",
        "Teams and Skype URL preview: '... SkypeUriPreview Preview/0.5 "
        "skype-url-preview@microsoft.com' (crawler-user-agents)",
    ),
    Previewer(
        "Microsoft Preview (Teams, Outlook, Bing)",
        "MicrosoftPreview/",
        _P,
        "UA_PREVIEW_MICROSOFT",
        "bing.com/webmasters 'which crawlers does Bing use': "
        "'MicrosoftPreview/2.0; +https://aka.ms/MicrosoftPreview'",
    ),
    Previewer(
        "Facebook / Messenger / Instagram link preview",
        "facebookexternalhit",
        _P,
        "UA_PREVIEW_FACEBOOK",
        "developers.facebook.com/docs/sharing/webmasters/web-crawlers: 'facebookexternalhit/1.1 "
        "(+http://www.facebook.com/externalhit_uatext.php)' and 'facebookcatalog'",
    ),
    Previewer(
        "Facebook (Facebot)",
        "Facebot",
        _P,
        "UA_PREVIEW_FACEBOOK",
        "developers.facebook.com/docs/sharing/webmasters/web-crawlers",
    ),
    Previewer(
        "LinkedIn link preview",
        "LinkedInBot",
        _P,
        "UA_PREVIEW_LINKEDIN",
        "linkedin.com/help 'LinkedInBot': 'LinkedInBot/1.0 (compatible; Mozilla/5.0; "
        "Apache-HttpClient +http://www.linkedin.com)'",
    ),
    Previewer(
        "X / Twitter card fetcher",
        "Twitterbot",
        _P,
        "UA_PREVIEW_X",
        "developer.x.com/en/docs/x-for-websites/cards/guides/getting-started: 'Twitterbot/1.0'",
    ),
    Previewer(
        "Snapchat link preview",
        "Snap URL Preview Service",
        _P,
        "UA_PREVIEW_SNAPCHAT",
        "developers.snap.com/robots: 'Snap URL Preview Service; bot; snapchat; "
        "https://developers.snap.com/robots'",
        note="Not 'Snapchat/': that token is Snapchat's in-app browser, a person.",
    ),
    Previewer(
        "Snapchat link preview (new)",
        "SnapURLPreview/",
        _P,
        "UA_PREVIEW_SNAPCHAT",
        "business.snapchat.com/legal/snapchat-automated-crawler",
    ),
    Previewer(
        "Snapchat link preview (other spellings)",
        r"Snap-URL-Preview|SnapPreviewBot|\(compatible; Snapchat/",
        _P,
        "UA_PREVIEW_SNAPCHAT",
        "botcrawl.com/bots/snap-url-preview-service (related patterns 'Snap-URL-Preview', "
        "'SnapPreviewBot'); a 'compatible;' Snapchat token is a fetcher, never the in-app "
        "browser (which is a WebKit UA ending in 'Snapchat/N.N.N.N')",
        kind="regex",
    ),
    Previewer(
        "Viber link preview",
        "Viber",
        _P,
        "UA_PREVIEW_VIBER",
        "crawler-user-agents entry 'Viber' (viber.com)",
        kind="exact",
    ),
    Previewer(
        "Pinterest",
        "Pinterestbot",
        _P,
        "UA_PREVIEW_PINTEREST",
        "pinterest.com/bot.html: 'Mozilla/5.0 (compatible; Pinterestbot/1.0; "
        "+http://www.pinterest.com/bot.html)'",
    ),
    Previewer(
        "Bluesky link preview",
        "BlueskyPreviewBot",
        _P,
        "UA_PREVIEW_BLUESKY",
        "docs.bsky.app; crawler-user-agents 'BlueskyPreviewBot/1.0'",
    ),
    Previewer(
        "Mattermost link preview",
        "Mattermost-Bot/",
        _P,
        "UA_PREVIEW_MATTERMOST",
        "Mattermost server link metadata fetcher: 'Mattermost-Bot/1.1'",
    ),
    Previewer(
        "Embedly",
        "Embedly",
        _P,
        "UA_PREVIEW_EMBED",
        "support.embed.ly: 'Embedly +support@embed.ly'",
    ),
    Previewer(
        "Iframely",
        "Iframely",
        _P,
        "UA_PREVIEW_EMBED",
        "iframely.com/docs/about: 'Iframely/1.3.1 (+https://iframely.com/docs/about)'",
    ),
    Previewer(
        "Yahoo Mail link preview",
        "Yahoo Link Preview",
        _P,
        "UA_PREVIEW_YAHOO",
        "help.yahoo.com/kb/mail/yahoo-link-preview-SLN23615.html",
    ),
    Previewer(
        "Google web preview",
        "Google Web Preview",
        _P,
        "UA_PREVIEW_GOOGLE",
        "crawler-user-agents 'Google Web Preview'",
    ),
    # --- Security scanners: mail and message gateways, carrier and antivirus link checks.
    Previewer(
        "Barracuda link protection",
        "Barracuda",
        _S,
        "UA_SCANNER_BARRACUDA",
        "Barracuda Email Protection link protection / Sentinel: "
        "'Mozilla/5.0 (compatible; Barracuda Sentinel (EE))' seen in site logs",
    ),
    Previewer(
        "Proofpoint URL Defense",
        "Proofpoint",
        _S,
        "UA_SCANNER_PROOFPOINT",
        "Proofpoint TAP URL Defense sandbox; help.proofpoint.com. Its sandbox usually sends an "
        "ordinary browser UA: expect NET_HOSTING and timing reasons rather than this entry",
    ),
    Previewer(
        "Mimecast URL Protect",
        "Mimecast",
        _S,
        "UA_SCANNER_MIMECAST",
        "Mimecast Targeted Threat Protection - URL Protect (community.mimecast.com); like "
        "Proofpoint it mostly fetches with a browser UA from its own ranges",
    ),
    Previewer(
        "Microsoft Office link check",
        "Microsoft Office Existence Discovery",
        _S,
        "UA_SCANNER_MICROSOFT",
        "learn.microsoft.com: Office apps probe links with 'Microsoft Office Existence Discovery'. "
        "Microsoft Defender Safe Links has no UA of its own: it fetches with a current "
        "Edge/Chrome UA from Microsoft Azure ranges (NET_HOSTING, DT_DELIVERY_LT_2S catch it)",
    ),
    Previewer(
        "Google Safety (Safe Browsing)",
        "Google-Safety",
        _S,
        "UA_SCANNER_GOOGLE_SAFETY",
        "developers.google.com/search/docs/crawling-indexing/overview-google-crawlers "
        "('Google-Safety': abuse and malware checks)",
    ),
    Previewer(
        "Bitdefender TrafficLight / link checker",
        "Bitdefender",
        _S,
        "UA_SCANNER_ANTIVIRUS",
        "Bitdefender link scanning services identify with a 'Bitdefender' token",
    ),
    Previewer(
        "Cisco / Trend Micro / other gateway scanners",
        r"(?i)\b(?:ironport|trendmicro|trend micro|fortiguard|zscaler|forcepoint|sophos)\b",
        _S,
        "UA_SCANNER_GATEWAY",
        "Vendor names of mail and web security gateways as they appear in scanner UAs in public "
        "bot lists; a catch-all so that a vendor who does name itself is labelled a scanner",
        kind="regex",
    ),
)

DEFAULT_PREVIEWERS = Previewers(PREVIEWER_ENTRIES)
