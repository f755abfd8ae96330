"""The bot rules, signal by signal, with real user-agent strings and real header sets.

Facts are built by the real signal adapters (`facts_for`) so that a change of ua-parser or of
the bot list that would flip a verdict shows up here; behaviour windows use hand-made facts.
"""

from __future__ import annotations

import time
from dataclasses import replace

import pytest

from clicktrail.domain.bots.model import ClickFacts, IpFacts, RequestFacts, UaFacts, Verdict
from clicktrail.domain.bots.previewers import PREVIEWER_ENTRIES, Previewer
from clicktrail.domain.bots.rules import (
    DEFAULT_RULES,
    RuleSet,
    apply_behaviour,
    classify_request,
    sends_secure_headers,
)
from clicktrail.signals import facts_for

# -- real user agents (2024–2025 releases) -------------------------------------------------------
IOS_SAFARI = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/18.5 Mobile/15E148 Safari/604.1"
)
CHROME_ANDROID = (
    "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/137.0.0.0 Mobile Safari/537.36"
)
SAMSUNG_INTERNET = (
    "Mozilla/5.0 (Linux; Android 14; SAMSUNG SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) "
    "SamsungBrowser/28.0 Chrome/130.0.0.0 Mobile Safari/537.36"
)
FIREFOX_DESKTOP = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:139.0) Gecko/20100101 Firefox/139.0"
FIREFOX_ANDROID = "Mozilla/5.0 (Android 14; Mobile; rv:139.0) Gecko/139.0 Firefox/139.0"
CHROME_DESKTOP = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/137.0.0.0 Safari/537.36"
)
IN_APP = {
    "instagram_ios": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Mobile/15E148 Instagram 337.0.3.23.54 (iPhone14,5; iOS 17_5; en_US; en; "
    "scale=3.00; 1170x2532; 614434410)",
    "instagram_android": "Mozilla/5.0 (Linux; Android 14; SM-S918B Build/UP1A.231005.007; wv) "
    "AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/125.0.6422.165 Mobile "
    "Safari/537.36 Instagram 334.0.0.42.95 Android (34/14; 480dpi; 1080x2340; samsung; SM-S918B; "
    "dm3q; qcom; en_US; 606558400)",
    "facebook_ios": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Mobile/15E148 [FBAN/FBIOS;FBAV/470.0.0.45.109;FBBV/612734563;"
    "FBDV/iPhone14,5;FBMD/iPhone;FBSN/iOS;FBSV/17.5;FBSS/3;FBID/phone;FBLC/en_US;FBOP/5;"
    "FBRV/614056213]",
    "facebook_android": "Mozilla/5.0 (Linux; Android 14; SM-A546B Build/UP1A.231005.007; wv) "
    "AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/125.0.6422.165 Mobile "
    "Safari/537.36 [FB_IAB/FB4A;FBAV/468.1.0.56.78;]",
    "tiktok_ios": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Mobile/15E148 musical_ly_35.1.0 JsSdk/2.0 NetType/WIFI Channel/App Store "
    "ByteLocale/en Region/US ByteFullLocale/en WKWebView/1 BytedanceWebview/d8a21c6",
    "tiktok_android": "Mozilla/5.0 (Linux; Android 13; Pixel 7 Build/TQ3A.230901.001; wv) "
    "AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/125.0.6422.165 Mobile "
    "Safari/537.36 trill_350104 JsSdk/1.0 NetType/WIFI Channel/googleplay AppName/trill "
    "app_version/35.1.4 ByteLocale/en ByteFullLocale/en Region/US AppId/1180 Spark/1.5.9.1 "
    "AppVersion/35.1.4 BytedanceWebview/d8a21c6",
    "gsa_ios": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) GSA/322.0.648915268 Mobile/15E148 Safari/604.1",
    "wechat_ios": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Mobile/15E148 MicroMessenger/8.0.49(0x18003137) NetType/WIFI "
    "Language/zh_CN",
    "wechat_android": "Mozilla/5.0 (Linux; Android 13; V2148A Build/TP1A.220624.014; wv) "
    "AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/116.0.0.0 Mobile Safari/537.36 "
    "XWEB/1160065 MMWEBSDK/20231202 MMWEBID/2247 MicroMessenger/8.0.47.2560(0x28002F30) "
    "WeChat/arm64 Weixin NetType/WIFI Language/zh_CN ABI/arm64",
}
SAMSUNG_PREVIEW = "Mozilla/5.0 (X11; Ubuntu; Linux i686; rv:24.0) Gecko/20100101 Firefox/24.0"
IMESSAGE_PREVIEW = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_11_1) AppleWebKit/601.2.4 (KHTML, like Gecko) "
    "Version/9.0.1 Safari/601.2.4 facebookexternalhit/1.1 Facebot Twitterbot/1.0"
)
GOOGLE_MESSAGES = (
    "Mozilla/5.0 (Linux; Android 11) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/94.0.4606.61 Mobile Safari/537.36 GoogleMessages"
)
PREVIEWERS = [
    (SAMSUNG_PREVIEW, "preview", "UA_PREVIEW_SAMSUNG"),
    (IMESSAGE_PREVIEW, "preview", "UA_PREVIEW_IMESSAGE"),
    (GOOGLE_MESSAGES, "preview", "UA_PREVIEW_GOOGLE_MESSAGES"),
    ("WhatsApp/2.23.20.0 A", "preview", "UA_PREVIEW_WHATSAPP"),
    ("WhatsApp/2.24.6.77 i", "preview", "UA_PREVIEW_WHATSAPP"),
    ("WhatsApp/2", "preview", "UA_PREVIEW_SIGNAL"),
    ("TelegramBot (like TwitterBot)", "preview", "UA_PREVIEW_TELEGRAM"),
    ("Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)", "preview", "UA_PREVIEW_SLACK"),
    ("Slack-ImgProxy (+https://api.slack.com/robots)", "preview", "UA_PREVIEW_SLACK"),
    (
        "Mozilla/5.0 (compatible; Discordbot/2.0; +https://discordapp.com)",
        "preview",
        "UA_PREVIEW_DISCORD",
    ),
    (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 11.6; rv:92.0) Gecko/20100101 Firefox/92.0",
        "preview",
        "UA_PREVIEW_DISCORD",
    ),
    (
        "Mozilla/5.0 (Windows NT 6.1; WOW64) SkypeUriPreview Preview/0.5 "
        "skype-url-preview@microsoft.com",
        "preview",
        "UA_PREVIEW_TEAMS",
    ),
    ("MicrosoftPreview/2.0; +https://aka.ms/MicrosoftPreview", "preview", "UA_PREVIEW_MICROSOFT"),
    (
        "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
        "preview",
        "UA_PREVIEW_FACEBOOK",
    ),
    (
        "LinkedInBot/1.0 (compatible; Mozilla/5.0; Apache-HttpClient +http://www.linkedin.com)",
        "preview",
        "UA_PREVIEW_LINKEDIN",
    ),
    ("Twitterbot/1.0", "preview", "UA_PREVIEW_X"),
    (
        "Mozilla/5.0 (compatible; Snap URL Preview Service; bot; snapchat; "
        "https://developers.snap.com/robots)",
        "preview",
        "UA_PREVIEW_SNAPCHAT",
    ),
    ("Viber", "preview", "UA_PREVIEW_VIBER"),
    (
        "Mozilla/5.0 (compatible; Pinterestbot/1.0; +http://www.pinterest.com/bot.html)",
        "preview",
        "UA_PREVIEW_PINTEREST",
    ),
    ("Mozilla/5.0 (compatible; Barracuda Sentinel (EE))", "scanner", "UA_SCANNER_BARRACUDA"),
    ("Mozilla/5.0 (compatible; Proofpoint URL Defense)", "scanner", "UA_SCANNER_PROOFPOINT"),
    ("Mozilla/5.0 (compatible; Mimecast URL Protect)", "scanner", "UA_SCANNER_MIMECAST"),
    (
        "Microsoft Office Existence Discovery",
        "scanner",
        "UA_SCANNER_MICROSOFT",
    ),
]

# -- the headers real browsers send on a top-level navigation over HTTPS --------------------------
CHROME_HEADERS = {
    "accept": "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,"
    "image/apng,*/*;q=0.8,application/signed-exchange;v=b3;q=0.7",
    "accept-language": "en-US,en;q=0.9",
    "accept-encoding": "gzip, deflate, br, zstd",
    "sec-ch-ua": '"Google Chrome";v="137", "Chromium";v="137", "Not/A)Brand";v="24"',
    "sec-ch-ua-mobile": "?1",
    "sec-ch-ua-platform": '"Android"',
    "sec-fetch-dest": "document",
    "sec-fetch-mode": "navigate",
    "sec-fetch-site": "none",
    "sec-fetch-user": "?1",
    "upgrade-insecure-requests": "1",
    "_http": "2",
}
SAFARI_HEADERS = {
    "accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    "accept-language": "en-US,en;q=0.9",
    "accept-encoding": "gzip, deflate, br",
    "sec-fetch-dest": "document",
    "sec-fetch-mode": "navigate",
    "sec-fetch-site": "none",
    "_http": "2",
}
FIREFOX_HEADERS = {
    "accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    "accept-language": "en-US,en;q=0.5",
    "accept-encoding": "gzip, deflate, br, zstd",
    "sec-fetch-dest": "document",
    "sec-fetch-mode": "navigate",
    "sec-fetch-site": "none",
    "sec-fetch-user": "?1",
    "upgrade-insecure-requests": "1",
    "_http": "2",
}
WEBVIEW_HEADERS = {  # in-app web views: what they send depends on the app
    "accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    "accept-language": "en-US",
    "x-requested-with": "com.instagram.android",
}
CARRIER_IP = "172.58.0.1"  # T-Mobile US: in no hosting list
CARRIER_V6 = "2607:fb90::1"
AWS_IP = "52.95.110.1"
AZURE_IP = "40.94.0.1"  # Exchange Online Protection / Safe Links range
GOOGLE_IP = "66.249.84.1"
RELAY_IP = "172.225.6.1"  # Apple iCloud Private Relay egress
T0 = 1_750_000_000_000_000  # delivery time (µs)
MINUTE = 60_000_000


def judge(
    ua: str | None,
    headers: dict[str, str] | None = None,
    ip: str | None = CARRIER_IP,
    *,
    method: str = "GET",
    after_delivery_us: int | None = 3 * MINUTE,
    rules: RuleSet = DEFAULT_RULES,
) -> Verdict:
    delivered = T0 if after_delivery_us is not None else None
    at = T0 + (after_delivery_us or 0)
    facts = facts_for(method, ua, headers or {}, ip, at, delivered, T0 - 5_000_000)
    return classify_request(facts, rules)


# -- humans ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ua", "headers"),
    [
        (IOS_SAFARI, SAFARI_HEADERS),
        (CHROME_ANDROID, CHROME_HEADERS),
        (SAMSUNG_INTERNET, CHROME_HEADERS),
        (FIREFOX_DESKTOP, FIREFOX_HEADERS),
        (FIREFOX_ANDROID, FIREFOX_HEADERS),
        (CHROME_DESKTOP, CHROME_HEADERS),
    ],
    ids=[
        "ios-safari",
        "chrome-android",
        "samsung-internet",
        "firefox",
        "firefox-android",
        "chrome",
    ],
)
@pytest.mark.parametrize("ip", [CARRIER_IP, CARRIER_V6, RELAY_IP, "73.162.10.20"])
def test_browsers_from_people_networks_are_human(ua: str, headers: dict[str, str], ip: str) -> None:
    v = judge(ua, headers, ip)
    assert v.verdict == "human", v
    assert v.score < DEFAULT_RULES.suspect_threshold


@pytest.mark.parametrize("name", sorted(IN_APP))
def test_in_app_browsers_are_human_even_with_sparse_headers(name: str) -> None:
    for headers in (WEBVIEW_HEADERS, {}):
        v = judge(IN_APP[name], headers)
        assert v.verdict == "human", (name, v)
        assert not any(r.startswith(("UA_", "HDR_")) for r in v.reasons)


@pytest.mark.parametrize("name", sorted(IN_APP))
def test_in_app_browser_on_a_hosting_ip_is_not_a_scanner(name: str) -> None:
    v = judge(IN_APP[name], WEBVIEW_HEADERS, AWS_IP)
    assert v.verdict == "human"
    assert v.reasons == ("NET_HOSTING",)


def test_private_relay_is_never_flagged_for_the_address_alone() -> None:
    v = judge(IOS_SAFARI, SAFARI_HEADERS, RELAY_IP)
    assert v == Verdict("human", 0, ())


# -- previewers and scanners -----------------------------------------------------------------------


@pytest.mark.parametrize(("ua", "verdict", "reason"), PREVIEWERS, ids=[p[2] for p in PREVIEWERS])
def test_every_listed_previewer_is_recognised(ua: str, verdict: str, reason: str) -> None:
    for ip in (CARRIER_IP, AWS_IP, GOOGLE_IP):
        v = judge(ua, {}, ip)
        assert (v.verdict, v.reasons) == (verdict, (reason,)), (ua, ip, v)


def test_samsung_device_preview_from_the_carrier_ip_within_a_second() -> None:
    v = judge(SAMSUNG_PREVIEW, {"accept": "*/*"}, CARRIER_IP, after_delivery_us=700_000)
    assert v.verdict == "preview"
    assert v.reasons == ("UA_PREVIEW_SAMSUNG",)


def test_google_messages_from_google_ranges_is_a_preview() -> None:
    assert judge(GOOGLE_MESSAGES, {}, GOOGLE_IP).reasons == ("UA_PREVIEW_GOOGLE_MESSAGES",)


def test_real_firefox_is_not_mistaken_for_samsung_preview() -> None:
    assert judge(FIREFOX_DESKTOP, FIREFOX_HEADERS).verdict == "human"
    # The exact Samsung string only: a newer Ubuntu Firefox is a person.
    ubuntu = "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:139.0) Gecko/20100101 Firefox/139.0"
    assert judge(ubuntu, FIREFOX_HEADERS).verdict == "human"


def test_snapchat_in_app_browser_is_not_its_preview_bot() -> None:
    snapchat_app = (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) Mobile/15E148 Snapchat/13.10.0.40 (like Safari/8618.2.12.10.5, "
        "panda)"
    )
    assert judge(snapchat_app, WEBVIEW_HEADERS).verdict == "human"


def test_every_curated_entry_has_a_source_and_a_stable_code() -> None:
    codes = {e.reason for e in PREVIEWER_ENTRIES}
    assert all(e.source and e.name for e in PREVIEWER_ENTRIES)
    assert all(c.startswith(("UA_PREVIEW_", "UA_SCANNER_")) for c in codes)
    assert all(
        (e.verdict == "preview") == e.reason.startswith("UA_PREVIEW_") for e in PREVIEWER_ENTRIES
    )


def test_user_entries_are_checked_before_the_defaults() -> None:
    mine = Previewer("acme sms gateway", "AcmeLinkCheck", "scanner", "UA_SCANNER_ACME", "ours")
    rules = replace(DEFAULT_RULES, previewers=DEFAULT_RULES.previewers.plus([mine]))
    assert judge("AcmeLinkCheck/1.0", rules=rules).reasons == ("UA_SCANNER_ACME",)
    assert judge("AcmeLinkCheck/1.0").verdict != "scanner"


def test_public_bot_list_match_is_automation() -> None:
    for ua in (
        "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
        "curl/8.5.0",
        "python-requests/2.31.0",
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "HeadlessChrome/120.0.0.0 Safari/537.36",
    ):
        v = judge(ua, CHROME_HEADERS)
        assert (v.verdict, v.reasons) == ("automation", ("UA_BOT_LIST",)), ua


# -- request shape -----------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["HEAD", "OPTIONS", "head"])
def test_head_and_options_are_probes(method: str) -> None:
    v = judge(IOS_SAFARI, SAFARI_HEADERS, method=method)
    assert (v.verdict, v.score, v.reasons) == ("probe", 100, ("METHOD_PROBE",))


def test_missing_and_empty_user_agents_are_told_apart() -> None:
    assert judge(None, {"_ua": "missing"}).reasons == ("UA_MISSING",)
    assert judge(None).reasons == ("UA_MISSING",)
    assert judge("", {"accept": "*/*"}).reasons == ("UA_EMPTY",)
    assert judge("   ").reasons == ("UA_EMPTY",)
    assert judge("").verdict == "automation"


@pytest.mark.parametrize(
    "header",
    [{"purpose": "prefetch"}, {"sec-purpose": "prefetch;prerender"}, {"x-purpose": "preview"}],
)
def test_prefetch_headers_are_previews(header: dict[str, str]) -> None:
    v = judge(CHROME_ANDROID, CHROME_HEADERS | header)
    assert (v.verdict, v.reasons) == ("preview", ("HDR_PREFETCH",))


def test_chrome_without_fetch_metadata_or_client_hints_is_flagged() -> None:
    bare = {"accept": "*/*", "accept-language": "en-US"}
    v = judge(CHROME_ANDROID, bare)
    assert v.reasons == ("HDR_NO_SEC_FETCH", "HDR_NO_CLIENT_HINTS")
    assert v.verdict == "suspect"
    # Over plain HTTP browsers send neither: the operator turns the rule off.
    assert judge(CHROME_ANDROID, bare, rules=RuleSet(expect_secure_headers=False)).verdict == (
        "human"
    )


def test_chrome_79_is_not_expected_to_send_sec_fetch_dest_era_headers() -> None:
    old = CHROME_ANDROID.replace("Chrome/137.0.0.0", "Chrome/79.0.3945.136")
    v = judge(old, {"accept": "*/*", "accept-language": "en"})
    assert "HDR_NO_SEC_FETCH" not in v.reasons
    assert "HDR_NO_CLIENT_HINTS" not in v.reasons


def test_safari_without_accept_language_is_flagged() -> None:
    headers = {k: v for k, v in SAFARI_HEADERS.items() if k != "accept-language"}
    v = judge(IOS_SAFARI, headers)
    assert v.reasons == ("HDR_NO_ACCEPT_LANGUAGE",)
    assert v.verdict == "suspect"


def test_outdated_chrome_is_noted() -> None:
    ancient = CHROME_ANDROID.replace("Chrome/137.0.0.0", "Chrome/49.0.2623.105")
    assert "UA_OUTDATED" in judge(ancient, {"accept": "*/*", "accept-language": "en"}).reasons


# -- network ---------------------------------------------------------------------------------------


def test_scanner_spoofing_mobile_safari_from_a_cloud_ip_is_a_scanner() -> None:
    v = judge(IOS_SAFARI, {"accept": "*/*", "accept-encoding": "gzip"}, AWS_IP)
    assert v.verdict == "scanner"
    assert {"HDR_NO_ACCEPT_LANGUAGE", "HDR_NO_SEC_FETCH", "NET_HOSTING"} <= set(v.reasons)
    assert v.score == 100


def test_safe_links_style_desktop_browser_from_azure_is_a_scanner() -> None:
    v = judge(CHROME_DESKTOP, CHROME_HEADERS, AZURE_IP)
    assert (v.verdict, v.reasons) == ("scanner", ("NET_HOSTING",))


def test_real_phone_on_a_hosting_ip_with_consistent_headers_stays_human() -> None:
    v = judge(IOS_SAFARI, SAFARI_HEADERS, AWS_IP)
    assert (v.verdict, v.reasons) == ("human", ("NET_HOSTING",))


def test_declared_crawler_ranges_and_tor() -> None:
    assert judge(CHROME_ANDROID, CHROME_HEADERS, "66.249.66.1").reasons == ("NET_CRAWLER",)
    tor = judge(CHROME_ANDROID, CHROME_HEADERS, "185.220.101.1")
    assert (tor.verdict, tor.reasons) == ("suspect", ("NET_TOR",))


def test_listed_networks_count_like_hosting() -> None:
    facts = RequestFacts(
        "GET",
        CHROME_DESKTOP,
        CHROME_HEADERS,
        "203.0.113.9",
        ua=UaFacts("Chrome", "Windows", None, browser_major=137),
        net=IpFacts("unknown", "Acme gateway", "workspace"),
    )
    assert classify_request(facts).reasons == ("NET_LISTED",)
    assert classify_request(facts).verdict == "automation"
    mobile = replace(facts, net=IpFacts("mobile", "Verizon", None))
    assert classify_request(mobile).verdict == "human"


# -- timing ----------------------------------------------------------------------------------------


def test_request_before_delivery_is_automation() -> None:
    v = judge(IOS_SAFARI, SAFARI_HEADERS, after_delivery_us=-1_000)
    assert (v.verdict, v.reasons) == ("automation", ("DT_BEFORE_DELIVERY",))
    lenient = RuleSet(before_delivery_grace_ms=5_000)
    assert judge(IOS_SAFARI, SAFARI_HEADERS, after_delivery_us=-1_000, rules=lenient).verdict == (
        "suspect"
    )


def test_within_two_seconds_of_delivery() -> None:
    person = judge(IOS_SAFARI, SAFARI_HEADERS, after_delivery_us=1_500_000)
    assert (person.verdict, person.reasons) == ("suspect", ("DT_DELIVERY_LT_2S",))
    # The same fetch with nothing a browser sends, from the recipient's own network: an
    # unknown device-side previewer.
    device = judge(CHROME_ANDROID, {}, CARRIER_IP, after_delivery_us=500_000)
    assert device.verdict == "preview"
    assert "DT_DELIVERY_LT_2S" in device.reasons
    # From a cloud: a scanner.
    cloud = judge(CHROME_DESKTOP, CHROME_HEADERS, AZURE_IP, after_delivery_us=800_000)
    assert (cloud.verdict, cloud.reasons) == ("scanner", ("NET_HOSTING", "DT_DELIVERY_LT_2S"))
    assert judge(IOS_SAFARI, SAFARI_HEADERS, after_delivery_us=2_000_000).verdict == "human"


def test_send_time_is_used_only_without_a_receipt() -> None:
    facts = facts_for("GET", IOS_SAFARI, SAFARI_HEADERS, CARRIER_IP, T0 + 300_000, None, T0)
    assert classify_request(facts).reasons == ("DT_SEND_LT_1S",)


def test_score_is_capped_and_reasons_are_stable_codes() -> None:
    v = judge(CHROME_DESKTOP, {}, AWS_IP, after_delivery_us=100_000)
    assert v.score == 100
    assert all(r.isupper() and " " not in r for r in v.reasons)


# -- behaviour windows -----------------------------------------------------------------------------

HUMAN = Verdict("human", 0, ())


def click(
    n: int,
    at_us: int,
    *,
    message: int = 1,
    link: int = 1,
    contact: int | None = None,
    ip: str = "198.51.100.7",
    ua: str = IOS_SAFARI,
    verdict: Verdict = HUMAN,
    links: int = 0,
    ip_kind: str | None = "unknown",
) -> ClickFacts:
    return ClickFacts(
        click_id=f"c{n}",
        message_id=message,
        contact_id=contact if contact is not None else message,
        link_id=link,
        campaign_id=1,
        at_us=at_us,
        ip=ip,
        user_agent=ua,
        request_verdict=verdict,
        message_links=links,
        ip_kind=ip_kind,
    )


def test_every_link_of_a_message_within_two_seconds() -> None:
    clicks = [
        click(1, T0, link=1, links=3),
        click(2, T0 + 400_000, link=2, links=3),
        click(3, T0 + 1_100_000, link=3, links=3),
        click(4, T0 + 10 * MINUTE, link=1, links=3),  # the person, later
    ]
    out = apply_behaviour(clicks)
    assert set(out) == {"c1", "c2", "c3"}
    assert all(v.verdict == "scanner" and "ALL_LINKS_2S" in v.reasons for v in out.values())
    # Two of three links only: no rule.
    assert apply_behaviour(clicks[:2]) == {}


def test_all_links_window_is_tunable_and_single_link_messages_are_skipped() -> None:
    clicks = [click(1, T0, link=1, links=2), click(2, T0 + 3_000_000, link=2, links=2)]
    assert apply_behaviour(clicks) == {}
    assert set(apply_behaviour(clicks, RuleSet(all_links_window_ms=5_000))) == {"c1", "c2"}
    same_link = [click(1, T0, links=1), click(2, T0 + 100_000, links=1)]
    assert apply_behaviour(same_link) == {}


def test_same_token_with_different_user_agents_keeps_the_last_tap() -> None:
    clicks = [
        click(1, T0, ua=CHROME_DESKTOP),
        click(2, T0 + 1_000_000, ua=FIREFOX_DESKTOP),
        click(3, T0 + 3_000_000, ua=IOS_SAFARI),
    ]
    out = apply_behaviour(clicks)
    assert out["c1"].verdict == out["c2"].verdict == "automation"
    assert out["c3"].verdict == "suspect"  # still counted: it may be the person
    assert all("TOKEN_MULTI_UA_5S" in v.reasons for v in out.values())
    # Same UA twice (a double tap): nothing.
    assert apply_behaviour([click(1, T0), click(2, T0 + 500_000)]) == {}


def test_a_tap_just_before_a_link_checker_is_not_a_multi_ua_burst() -> None:
    """A person taps link 1; two seconds later a checker (another UA, a full header set) hits
    both links within a second. ALL_LINKS_2S explains the checker, so the person's tap is not
    the first request of a multi-UA burst and stays counted."""
    clicks = [
        click(1, T0, link=1, links=2, ua=IOS_SAFARI),
        click(2, T0 + 2_000_000, link=1, links=2, ua=CHROME_ANDROID),
        click(3, T0 + 2_300_000, link=2, links=2, ua=CHROME_ANDROID),
    ]
    out = apply_behaviour(clicks)
    assert "c1" not in out
    assert out["c2"].verdict == out["c3"].verdict == "scanner"
    assert all("ALL_LINKS_2S" in v.reasons for v in out.values())


def test_fanout_from_one_ip_to_many_recipients_within_a_minute() -> None:
    clicks = [
        click(n, T0 + n * 5_000_000, message=n, ip="34.120.0.9", ua=CHROME_DESKTOP)
        for n in range(1, 7)
    ]
    out = apply_behaviour(clicks)
    assert set(out) == {f"c{n}" for n in range(1, 7)}
    assert all(v.verdict == "scanner" and "FANOUT_IP_60S" in v.reasons for v in out.values())
    # Spread over ten minutes: a shared office IP, not a scanner.
    slow = [replace(c, at_us=T0 + i * 2 * MINUTE) for i, c in enumerate(clicks)]
    assert apply_behaviour(slow) == {}


def test_fanout_by_slash24_and_user_agent() -> None:
    clicks = [
        click(n, T0 + n * 1_000_000, message=n, ip=f"203.0.113.{n}", ua="ScannerUA/1")
        for n in range(1, 6)
    ]
    out = apply_behaviour(clicks)
    assert all("FANOUT_NET_UA_60S" in v.reasons for v in out.values())
    assert len(out) == 5
    mixed = [replace(c, user_agent=f"UA{i}") for i, c in enumerate(clicks)]
    assert apply_behaviour(mixed) == {}


def test_fanout_on_shared_carrier_or_relay_addresses_needs_more_recipients() -> None:
    clicks = [
        click(n, T0 + n * 1_000_000, message=n, ip=RELAY_IP, ip_kind="relay") for n in range(10)
    ]
    assert apply_behaviour(clicks) == {}
    assert len(apply_behaviour(clicks, RuleSet(fanout_shared_min_contacts=10))) == 10


def test_behaviour_never_touches_requests_already_not_counted() -> None:
    preview = Verdict("preview", 100, ("UA_PREVIEW_IMESSAGE",))
    clicks = [
        click(1, T0, link=1, links=2, verdict=preview),
        click(2, T0 + 100_000, link=2, links=2, verdict=preview),
    ]
    assert apply_behaviour(clicks) == {}
    assert apply_behaviour([]) == {}


def test_behaviour_keeps_request_reasons_and_version() -> None:
    suspect = Verdict("suspect", 40, ("DT_DELIVERY_LT_2S",), "1")
    clicks = [
        click(1, T0, link=1, links=2, verdict=suspect),
        click(2, T0 + 100_000, link=2, links=2),
    ]
    out = apply_behaviour(clicks)
    assert out["c1"].reasons == ("DT_DELIVERY_LT_2S", "ALL_LINKS_2S")
    assert out["c1"].score == DEFAULT_RULES.behaviour_score
    assert out["c1"].version == "1"


# -- speed -----------------------------------------------------------------------------------------


def test_classify_request_is_fast_with_cached_facts() -> None:
    """≥ 50k requests/s with cached UA and IP facts (a reclassification of 1M requests)."""
    uas = [IOS_SAFARI, CHROME_ANDROID, SAMSUNG_PREVIEW, IN_APP["instagram_ios"], CHROME_DESKTOP]
    ips = [CARRIER_IP, AWS_IP, RELAY_IP, AZURE_IP]
    facts = [
        facts_for("GET", ua, SAFARI_HEADERS, ip, T0 + n * 700_000, T0, T0 - 1)
        for n, (ua, ip) in enumerate((u, i) for u in uas for i in ips)
    ] * 500
    classify_request(facts[0])
    start = time.perf_counter()
    for f in facts:
        classify_request(f)
    rate = len(facts) / (time.perf_counter() - start)
    assert rate > 50_000, f"{rate:,.0f} requests/s"


@pytest.mark.parametrize(
    ("scheme", "host", "sends"),
    [
        ("https", "sms.example.com", True),
        ("http", "sms.example.com", False),
        ("http", "127.0.0.1", True),
        ("http", "127.8.9.10", True),
        ("http", "[::1]", True),
        ("http", "localhost", True),
        ("http", "go.localhost", True),
        ("http", "127.0.0.1.example.com", False),
        ("http", "localhost.example.com", False),
    ],
)
def test_secure_headers_go_to_potentially_trustworthy_origins(
    scheme: str, host: str, sends: bool
) -> None:
    assert sends_secure_headers(scheme, host) is sends
