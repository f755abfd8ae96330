"""User-agent facts: ua-parser for browser, OS and device; a public bot list; in-app browsers.

ua-parser 1.x with its Rust accelerator (`ua-parser-rs`, picked automatically) parses a new
string in ~15 µs; the pure-Python resolver takes ~1 ms, which a backlog of distinct user
agents (after an outage, or a re-classification) cannot afford. The accelerator costs ~29 MB
of memory per process once it has compiled its rule set (bench/RESULTS.md, memory). Parsing
runs in the server's classification job, never on the redirect's path, once per distinct
string: `ua_facts` is memoised and user agents repeat massively. The public bot list is ~1,500
regular expressions.
"""

from __future__ import annotations

import re
from functools import lru_cache

import crawleruseragents  # type: ignore[import-untyped]  # ships no py.typed
import ua_parser

from clicktrail.domain.bots.model import UaFacts
from clicktrail.domain.bots.rules import browser_shaped
from clicktrail.signals.human_apps import HUMAN_APPS

# In-app browsers announce themselves with a token of their own; they are people. The tokens
# (signals/human_apps.py, with their sources) are checked before ua-parser's family because
# Android web views often parse as "Chrome Mobile WebView" with the app named only in a
# trailing token.
IN_APP_TOKENS: tuple[tuple[str, str], ...] = tuple(
    (app.token, app.name) for app in HUMAN_APPS if app.kind == "in_app"
)
# ua-parser families that are in-app browsers, for strings without one of the tokens above.
IN_APP_FAMILIES: dict[str, str] = {
    "Instagram": "Instagram",
    "Facebook": "Facebook",
    "TikTok": "TikTok",
    "WeChat": "WeChat",
    "WeChat Browser": "WeChat",
    "Snapchat": "Snapchat",
    "LINE": "LINE",
    "Pinterest": "Pinterest",
    "Twitter": "X",
    "LinkedIn": "LinkedIn",
}

_crawler_patterns: list[tuple[str, re.Pattern[str]]] | None = None


def _crawlers() -> list[tuple[str, re.Pattern[str]]]:
    global _crawler_patterns
    if _crawler_patterns is None:
        _crawler_patterns = [
            (entry["pattern"], re.compile(entry["pattern"]))
            for entry in crawleruseragents.CRAWLER_USER_AGENTS_DATA
        ]
    return _crawler_patterns


def bot_list_match(user_agent: str) -> str | None:
    """Return the pattern of the crawler-user-agents list that matches, or None."""
    # The package's own check runs the patterns in combined chunks: a fast "no" for browsers.
    if not crawleruseragents.is_crawler(user_agent):
        return None
    for pattern, rx in _crawlers():
        if rx.search(user_agent):
            return pattern
    return None  # pragma: no cover - the chunked and single checks agree


def human_app(user_agent: str, family: str | None) -> tuple[str | None, str | None]:
    """Return (in-app browser, known human app) named by `user_agent`: the in-app browser's
    name (Instagram, Facebook, TikTok, GSA, WeChat…) only inside a browser-shaped UA, which is
    then also the human app; or a real browser with an unusual UA (Opera Mini, feature phones)
    as the human app alone."""
    if browser_shaped(user_agent):
        name = in_app_browser(user_agent, family)
        if name is not None:
            return name, name
    for app in HUMAN_APPS:
        if app.kind == "browser" and app.token in user_agent:
            return None, app.name
    return None, None


def in_app_browser(user_agent: str, family: str | None) -> str | None:
    """Return the in-app browser's name (Instagram, Facebook, TikTok, GSA, WeChat…) or None.

    Looks at the tokens only: `human_app` also asks for a browser-shaped UA."""
    for token, name in IN_APP_TOKENS:
        if token in user_agent:
            return name
    if family is not None:
        return IN_APP_FAMILIES.get(family)
    return None


@lru_cache(maxsize=65536)
def ua_facts(user_agent: str | None) -> UaFacts:
    """Return what `user_agent` says (browser, OS, device, in-app browser, bot-list match).

    Missing or blank strings give empty facts. Memoised per string.
    """
    if not user_agent or not user_agent.strip():
        return UaFacts()
    parsed = ua_parser.parse(user_agent)
    agent, os, device = parsed.user_agent, parsed.os, parsed.device
    family = agent.family if agent is not None else None
    major: int | None = None
    if agent is not None and agent.major and agent.major.isdigit():
        major = int(agent.major)
    in_app, known = human_app(user_agent, family)
    listed = None
    if in_app is None:
        listed = bot_list_match(user_agent)
        if listed is None and device is not None and device.family == "Spider":
            listed = "uap-core:Spider"  # ua-parser's own crawler rules
    return UaFacts(
        browser=family,
        os=os.family if os is not None else None,
        device=device.family if device is not None else None,
        in_app=in_app,
        human_app=known,
        bot_list_match=listed,
        browser_major=major,
    )
