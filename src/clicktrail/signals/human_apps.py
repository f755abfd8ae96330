"""Known human apps: in-app browsers and web views of apps people tap links in, and the few real
browsers whose User-Agent does not look like a desktop or mobile browser's. Data, with the
source each entry's user agent is documented in (written down, never fetched).

A request whose User-Agent is neither browser-shaped (`clicktrail.domain.bots.rules.
browser_shaped`) nor matched here is not a person tapping a link (`UA_NON_BROWSER`). An
`in_app` entry counts only inside a browser-shaped UA: the token alone (``Snapchat/13.1``,
``Instagram 300.0 Android``) is the app's own API client or a fetcher, not its web view.

Matching is a case-sensitive substring; the first entry that matches wins.
"""

from __future__ import annotations

from dataclasses import dataclass

UAP_CORE = "ua-parser uap-core regexes.yaml (github.com/ua-parser/uap-core), family rule for "


@dataclass(frozen=True, slots=True)
class HumanApp:
    """One app or browser people use: the token that names it, what it is, where documented.

    `kind` is ``in_app`` (an app's web view: people, judged by network and timing only) or
    ``browser`` (a real browser with an unusual UA: feature phones, proxy browsers).
    """

    name: str
    token: str
    kind: str
    source: str


HUMAN_APPS: tuple[HumanApp, ...] = (
    # -- in-app browsers (web views inside apps people read links in)
    HumanApp("Facebook", "FBAN/", "in_app", UAP_CORE + "'Facebook' (FBAN/FBAV tokens)"),
    HumanApp("Facebook", "FBAV/", "in_app", UAP_CORE + "'Facebook' (FBAN/FBAV tokens)"),
    HumanApp(
        "Facebook",
        "FB_IAB/",
        "in_app",
        UAP_CORE + "'Facebook Messenger' ([FB_IAB/FB4A;FBAV/…] on Android)",
    ),
    HumanApp("Instagram", "Instagram ", "in_app", UAP_CORE + "'Instagram'"),
    HumanApp("TikTok", "musical_ly", "in_app", UAP_CORE + "'TikTok' (musical_ly)"),
    HumanApp("TikTok", "BytedanceWebview", "in_app", UAP_CORE + "'TikTok' (BytedanceWebview)"),
    HumanApp(
        "TikTok",
        "trill_",
        "in_app",
        "TikTok's Asian build (trill_) in-app browser, as listed by ua-parser test cases "
        "(uap-core tests/test_ua.yaml, TikTok)",
    ),
    HumanApp(
        "TikTok",
        " TikTok ",
        "in_app",
        "TikTok in-app browser on iOS ('… Mobile/15E148 TikTok 37.x …'), "
        "uap-core tests/test_ua.yaml (a word of its own: 'TikTokSpider' is the crawler)",
    ),
    HumanApp("GSA", "GSA/", "in_app", UAP_CORE + "'Google' (GSA/ on iOS)"),
    HumanApp("WeChat", "MicroMessenger/", "in_app", UAP_CORE + "'WeChat Browser' (MicroMessenger)"),
    HumanApp("Snapchat", "Snapchat/", "in_app", UAP_CORE + "'Snapchat' (Snapchat/N.N.N.N)"),
    HumanApp(
        "LinkedIn",
        "LinkedInApp",
        "in_app",
        "LinkedIn iOS/Android in-app browser ('… LinkedInApp/9.x'), uap-core tests/test_ua.yaml",
    ),
    HumanApp(
        "LINE",
        " Line/",
        "in_app",
        "LINE in-app browser ('… Safari Line/13.x'), LINE Developers: 'Opening LIFF apps' / "
        "uap-core tests/test_ua.yaml",
    ),
    HumanApp("X", "Twitter for iPhone", "in_app", UAP_CORE + "'Twitter'"),
    HumanApp("X", "TwitterAndroid", "in_app", UAP_CORE + "'Twitter'"),
    HumanApp("Pinterest", "Pinterest/iOS", "in_app", UAP_CORE + "'Pinterest' ([Pinterest/iOS])"),
    HumanApp("Pinterest", "Pinterest/Android", "in_app", UAP_CORE + "'Pinterest'"),
    HumanApp("KakaoTalk", "KAKAOTALK", "in_app", UAP_CORE + "'KakaoTalk'"),
    HumanApp(
        "Naver",
        "NAVER(inapp",
        "in_app",
        "NAVER app in-app browser ('NAVER(inapp; search; …)'), uap-core tests/test_ua.yaml",
    ),
    HumanApp(
        "Telegram",
        "Telegram-Android/",
        "in_app",
        UAP_CORE + "'Telegram' (Telegram-Android web view)",
    ),
    HumanApp(
        "Threads",
        "Barcelona ",
        "in_app",
        "Threads (Meta, code name Barcelona) in-app browser ('… Barcelona 289.0.0.77.109'), "
        "seen in Meta's own web-view UAs; same web view as Instagram",
    ),
    HumanApp(
        "Reddit",
        "Reddit/Version",
        "in_app",
        "Reddit iOS in-app browser ('… Reddit/Version 2024.x/Build …'), uap-core "
        "tests/test_ua.yaml",
    ),
    # -- real browsers whose UA is not Mozilla-shaped (feature phones, proxy browsers)
    HumanApp("Opera Mini", "Opera Mini/", "browser", UAP_CORE + "'Opera Mini'"),
    HumanApp("UC Browser", "UCWEB/", "browser", UAP_CORE + "'UC Browser' (UCWEB)"),
    HumanApp("UC Browser", "UCBrowser/", "browser", UAP_CORE + "'UC Browser'"),
    HumanApp(
        "Feature phone (MIDP)",
        "Profile/MIDP-",
        "browser",
        UAP_CORE + "device 'Generic Feature Phone' (midp); J2ME phones send "
        "'Nokia…/… Profile/MIDP-2.0 Configuration/CLDC-1.1'",
    ),
    HumanApp("Feature phone (NetFront)", "NetFront/", "browser", UAP_CORE + "'NetFront' browser"),
    HumanApp("Feature phone (Obigo)", "Obigo", "browser", UAP_CORE + "device 'Feature Phone'"),
    HumanApp("Opera Presto", "Presto/", "browser", UAP_CORE + "'Opera' (Opera/9.80 … Presto/2.x)"),
)
