"""The bot rules: one request's verdict from its facts, then behavioural windows over many.

Pure and fast: `classify_request` runs for every stored request (inline, and a million times in
a re-classification), so it does dictionary look-ups and integer arithmetic only; user-agent
strings are matched against the curated list once per distinct string (`Previewers` memo).

How a verdict is reached (docs/bots.md has the table of reason codes):

1. *Hard* signals decide alone, first match wins: a probe method (`METHOD_PROBE`), a curated
   previewer or scanner UA (`UA_PREVIEW_*`, `UA_SCANNER_*`), a prefetch header
   (`HDR_PREFETCH`), a request before the delivery receipt (`DT_BEFORE_DELIVERY`), a missing or
   empty UA (`UA_MISSING`, `UA_EMPTY`), a public bot-list match (`UA_BOT_LIST`), a UA that is
   not a browser at all and names no known human app (`UA_NON_BROWSER`: an HTTP library, a
   feed fetcher, a health checker, a `compatible;` fetcher, a UA carrying a contact URL).
2. *Soft* signals add weights (`RuleSet.w_*`) to a score capped at 100: the network kind,
   headers that the claimed browser always sends but are missing, a non-browser or outdated UA,
   a request within seconds of delivery. At or above `RuleSet.bot_threshold` the request is not
   a person's tap: `scanner` when the network or headers point at a server, `preview` when it
   came within seconds of delivery from the recipient's own network (a device-side previewer we
   do not know by name), else `automation`. At or above `suspect_threshold`: `suspect`, which
   reports count as human. Below: `human`.

In-app browsers (Instagram, Facebook, TikTok, GSA, WeChat…) are people: no UA or header rule is
applied to them, only network and timing.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from clicktrail.domain.bots.model import ClickFacts, RequestFacts, Verdict
from clicktrail.domain.bots.previewers import DEFAULT_PREVIEWERS, Previewers
from clicktrail.domain.network import literal_address

NOT_HUMAN = frozenset({"preview", "scanner", "automation", "probe"})

# ua-parser browser families by engine: which headers each always sends over HTTPS.
# Chromium sends Sec-Fetch-* since 76 (Sec-Fetch-Dest since 80) and Sec-CH-UA since 89;
# Firefox sends Sec-Fetch-* since 90 and no client hints; Safari sends Sec-Fetch-* since 16.4.
# Web views ("Chrome Mobile WebView", "Mobile Safari UI/WKWebView") and iOS shells (CriOS,
# FxiOS, which are WebKit) are left out: what they send depends on the embedding app.
_CHROMIUM = "chromium"
_FIREFOX = "firefox"
_SAFARI = "safari"
ENGINES: Mapping[str, str] = {
    "Chrome": _CHROMIUM,
    "Chrome Mobile": _CHROMIUM,
    "Edge": _CHROMIUM,
    "Edge Mobile": _CHROMIUM,
    "Samsung Internet": _CHROMIUM,
    "Opera": _CHROMIUM,
    "Opera Mobile": _CHROMIUM,
    "Yandex Browser": _CHROMIUM,
    "Vivaldi": _CHROMIUM,
    "Brave": _CHROMIUM,
    "HeadlessChrome": _CHROMIUM,
    "Firefox": _FIREFOX,
    "Firefox Mobile": _FIREFOX,
    "Safari": _SAFARI,
    "Mobile Safari": _SAFARI,
}
# Chromium browsers whose own version is the Chromium version; for the others (Samsung Internet,
# Opera, Yandex…) the engine version is read from the "Chrome/NNN" token of the UA.
_CHROME_VERSIONED = frozenset({"Chrome", "Chrome Mobile", "Edge", "Edge Mobile", "Brave"})
MOBILE_OS = frozenset({"iOS", "iPadOS", "Android", "HarmonyOS", "KaiOS"})
_PREFETCH_WORDS = ("prefetch", "preview", "prerender")
# What every browser's UA has since the 2000s: a "Mozilla/" (or old Opera's "Opera/") product
# token and a rendering engine. A bare product token ("Feedly/1.0", "kube-probe/1.29",
# "python-httpx/0.27") or a "Mozilla/5.0 (compatible; SomeFetcher/2.1; +http://…)" fetcher has
# no engine; and no browser puts a URL in its UA, which self-declared fetchers do.
_BROWSER_PRODUCTS = ("Mozilla/", "Opera/")
_ENGINE_TOKENS = ("AppleWebKit/", "Gecko/", "like Gecko", "Trident/", "Presto/", "Goanna/", "MSIE ")
_URL_MARKS = ("http://", "https://", "+http", "www.")


@dataclass(frozen=True, slots=True)
class RuleSet:
    """Every threshold and weight of the rules, with documented defaults (docs/bots.md).

    Weights are points of bot score added by a soft signal; the score is capped at 100.
    Times are milliseconds.
    """

    # -- verdict thresholds
    bot_threshold: int = 60  # score at or above: not a person's tap
    suspect_threshold: int = 30  # score at or above: suspect (still counted as human)
    # -- request shape
    probe_methods: frozenset[str] = frozenset({"HEAD", "OPTIONS"})
    # Sec-Fetch-* and client hints are only sent to secure (HTTPS) origins: turn these off
    # when short links are served over plain HTTP.
    expect_secure_headers: bool = True
    min_chromium_sec_fetch: int = 80
    min_chromium_client_hints: int = 90
    min_firefox_sec_fetch: int = 90
    min_safari_sec_fetch: int = 17
    min_chromium_major: int = 70  # older claims are outdated (scanners pin old UAs)
    min_firefox_major: int = 60
    w_hdr_no_sec_fetch: int = 35
    w_hdr_no_client_hints: int = 20
    w_hdr_no_accept_language: int = 35
    w_hdr_no_accept: int = 25
    w_ua_not_browser: int = 40
    w_ua_outdated: int = 25
    # -- network
    w_net_hosting: int = 60
    w_net_hosting_mobile: int = 25  # hosting IP but a mobile/in-app UA with consistent headers
    w_net_cdn: int = 30
    w_net_crawler: int = 70
    w_net_tor: int = 30
    w_net_vpn: int = 10
    w_net_listed: int = 60
    # -- timing
    before_delivery_grace_ms: int = 0  # tolerance for receipts that arrive late
    fast_after_delivery_ms: int = 2000
    fast_after_send_ms: int = 1000  # used only when the delivery time is unknown
    w_dt_delivery_fast: int = 40
    w_dt_send_fast: int = 40
    # -- behaviour windows (apply_behaviour)
    all_links_window_ms: int = 2000
    same_token_window_ms: int = 5000
    fanout_window_ms: int = 60000
    fanout_min_contacts: int = 5
    # Carrier NAT and Private Relay put many people behind one address: ask for more.
    fanout_shared_min_contacts: int = 25
    fanout_shared_kinds: frozenset[str] = frozenset({"mobile", "relay"})
    v4_fanout_prefix: int = 24
    v6_fanout_prefix: int = 48
    behaviour_score: int = 90
    # -- the curated list (add entries with `DEFAULT_PREVIEWERS.plus([...])`)
    previewers: Previewers = field(default=DEFAULT_PREVIEWERS)


DEFAULT_RULES = RuleSet()
# Short links served over plain HTTP: browsers send Fetch Metadata and client hints to secure
# origins only (a domain whose scheme is "http" is judged with these, unless its host is a
# loopback one: see `sends_secure_headers`).
PLAIN_HTTP_RULES = RuleSet(expect_secure_headers=False)


def sends_secure_headers(scheme: str, host: str) -> bool:
    """Return whether browsers send Fetch Metadata and client hints to short links of
    `scheme`://`host`: to potentially trustworthy origins only (W3C Secure Contexts §3.2):
    ``https``, and ``http`` on a loopback host (``localhost`` and its subdomains,
    ``127.0.0.0/8``, ``::1``, in any spelling `literal_address` reads)."""
    if scheme == "https":
        return True
    address = literal_address(host)
    return address is not None and address.is_loopback


_PROBE = Verdict("probe", 100, ("METHOD_PROBE",))
_UA_MISSING = Verdict("automation", 90, ("UA_MISSING",))
_UA_EMPTY = Verdict("automation", 85, ("UA_EMPTY",))
_UA_NON_BROWSER = Verdict("automation", 90, ("UA_NON_BROWSER",))


def browser_shaped(user_agent: str) -> bool:
    """Return whether `user_agent` has a browser's shape: a ``Mozilla/`` (or ``Opera/``)
    product, a rendering engine token (AppleWebKit, Gecko, Trident, Presto…) and no URL.

    Every desktop and mobile browser and every app web view passes; HTTP libraries, feed
    readers, health checkers, admin tools and ``compatible;`` fetchers do not. The few real
    browsers that fail (Opera Mini, UC Browser, feature phones) are known human apps
    (`UaFacts.human_app`).
    """
    if not user_agent.startswith(_BROWSER_PRODUCTS):
        return False
    if not any(token in user_agent for token in _ENGINE_TOKENS):
        return False
    return not any(mark in user_agent for mark in _URL_MARKS)


def classify_request(facts: RequestFacts, rules: RuleSet = DEFAULT_RULES) -> Verdict:
    """Return the request-level verdict of one stored request (no history needed).

    Never raises on odd input: missing facts are simply no evidence.
    """
    method = facts.method
    if method in rules.probe_methods or method.upper() in rules.probe_methods:
        return _PROBE
    ua = facts.user_agent
    headers = facts.headers
    if ua:
        known = rules.previewers.match(ua)
        if known is not None:
            return Verdict(known.verdict, 100, (known.reason,))
    purpose = headers.get("sec-purpose") or headers.get("purpose") or headers.get("x-purpose")
    if purpose and _is_prefetch(purpose):
        return Verdict("preview", 95, ("HDR_PREFETCH",))
    dt = facts.ms_since_delivery
    if dt is not None and dt < -rules.before_delivery_grace_ms:
        return Verdict("automation", 90, ("DT_BEFORE_DELIVERY",))
    if ua is None or headers.get("_ua") == "missing":
        return _UA_MISSING
    if not ua.strip():
        return _UA_EMPTY

    uaf = facts.ua
    in_app = uaf.in_app
    if uaf.bot_list_match is not None and in_app is None:
        return Verdict("automation", 95, ("UA_BOT_LIST",))
    if uaf.human_app is None and not browser_shaped(ua):
        return _UA_NON_BROWSER

    reasons: list[str] = []
    score = 0
    server_like = False  # evidence pointing at a machine rather than a handset

    # -- UA sanity and headers the claimed browser always sends.
    header_points = 0
    if in_app is None:
        family = uaf.browser
        engine = ENGINES.get(family) if family is not None else None
        major = uaf.browser_major
        if engine == _CHROMIUM and family not in _CHROME_VERSIONED:
            major = _chrome_major(ua)
        if engine is None:
            if uaf.human_app is None and (
                family is None or family == "Other" or not ua.startswith("Mozilla/")
            ):
                reasons.append("UA_NOT_BROWSER")
                score += rules.w_ua_not_browser
                server_like = True
        else:
            if "accept-language" not in headers:
                reasons.append("HDR_NO_ACCEPT_LANGUAGE")
                header_points += rules.w_hdr_no_accept_language
            if "accept" not in headers:
                reasons.append("HDR_NO_ACCEPT")
                header_points += rules.w_hdr_no_accept
            if major is not None:
                if rules.expect_secure_headers:
                    header_points += _secure_header_points(engine, major, headers, rules, reasons)
                if (engine == _CHROMIUM and major < rules.min_chromium_major) or (
                    engine == _FIREFOX and major < rules.min_firefox_major
                ):
                    reasons.append("UA_OUTDATED")
                    score += rules.w_ua_outdated
    if header_points:
        score += header_points
        server_like = True

    # -- Network.
    net = facts.net
    kind = net.kind
    if kind is not None and kind not in ("unknown", "residential", "mobile", "relay", "reserved"):
        if kind == "hosting":
            mobile = in_app is not None or uaf.os in MOBILE_OS
            reasons.append("NET_HOSTING")
            score += (
                rules.w_net_hosting_mobile if mobile and not header_points else rules.w_net_hosting
            )
            server_like = True
        elif kind == "crawler":
            reasons.append("NET_CRAWLER")
            score += rules.w_net_crawler
            server_like = True
        elif kind == "cdn":
            reasons.append("NET_CDN")
            score += rules.w_net_cdn
            server_like = True
        elif kind == "tor":
            reasons.append("NET_TOR")
            score += rules.w_net_tor
        elif kind == "vpn":
            reasons.append("NET_VPN")
            score += rules.w_net_vpn
    if (
        net.listed is not None
        and kind not in ("relay", "mobile", "residential")
        and "NET_HOSTING" not in reasons
    ):
        reasons.append("NET_LISTED")
        score += rules.w_net_listed
        server_like = True

    # -- Timing.
    fast = False
    if dt is not None:
        if dt < rules.fast_after_delivery_ms:
            reasons.append("DT_DELIVERY_LT_2S")
            score += rules.w_dt_delivery_fast
            fast = True
    else:
        ds = facts.ms_since_send
        if ds is not None and ds < rules.fast_after_send_ms:
            reasons.append("DT_SEND_LT_1S")
            score += rules.w_dt_send_fast
            fast = True

    if score > 100:
        score = 100
    if score >= rules.bot_threshold:
        if fast and kind not in ("hosting", "crawler", "cdn") and net.listed is None:
            verdict = "preview"  # seconds after delivery, from the recipient's own network
        elif server_like:
            verdict = "scanner" if kind is not None and kind != "unknown" else "automation"
        else:
            verdict = "automation"
    elif score >= rules.suspect_threshold:
        verdict = "suspect"
    else:
        verdict = "human"
    return Verdict(verdict, score, tuple(reasons))


def _chrome_major(ua: str) -> int | None:
    at = ua.find("Chrome/")
    if at < 0:
        return None
    digits = ua[at + 7 : at + 11].split(".", 1)[0]
    return int(digits) if digits.isdigit() else None


def _is_prefetch(value: str) -> bool:
    low = value.lower()
    return any(word in low for word in _PREFETCH_WORDS)


def _secure_header_points(
    engine: str, major: int, headers: Mapping[str, str], rules: RuleSet, reasons: list[str]
) -> int:
    points = 0
    if engine == _CHROMIUM:
        expects_fetch = major >= rules.min_chromium_sec_fetch
    elif engine == _FIREFOX:
        expects_fetch = major >= rules.min_firefox_sec_fetch
    else:
        expects_fetch = major >= rules.min_safari_sec_fetch
    if expects_fetch and not (
        "sec-fetch-mode" in headers or "sec-fetch-site" in headers or "sec-fetch-dest" in headers
    ):
        reasons.append("HDR_NO_SEC_FETCH")
        points += rules.w_hdr_no_sec_fetch
    if (
        engine == _CHROMIUM
        and major >= rules.min_chromium_client_hints
        and "sec-ch-ua" not in headers
        and "sec-ch-ua-mobile" not in headers
    ):
        reasons.append("HDR_NO_CLIENT_HINTS")
        points += rules.w_hdr_no_client_hints
    return points


# ---------------------------------------------------------------------------------------------
# Behaviour: windows over many requests. Only requests whose request-level verdict still counts
# (human, suspect) can be changed; previews, scanners and probes keep theirs.


def apply_behaviour(
    clicks: Sequence[ClickFacts], rules: RuleSet = DEFAULT_RULES
) -> dict[str, Verdict]:
    """Return click_id → final verdict for the clicks whose verdict a behavioural window changes.

    Windows (thresholds in `RuleSet`):
    - `ALL_LINKS_2S`: every link of a message (at least two) hit within `all_links_window_ms`:
      no person taps two links that fast → scanner.
    - `TOKEN_MULTI_UA_5S`: the same message link hit with different user agents within
      `same_token_window_ms` → automation, except the last counting request of the burst,
      which becomes suspect (still counted) so a person tapping after a scanner is not lost.
      Evaluated last, without the requests the other windows already made scanners: a link
      checker caught by `ALL_LINKS_2S` seconds after a person's tap leaves the tap alone.
    - `FANOUT_IP_60S` / `FANOUT_NET_UA_60S`: one IP, or one /24 (/48) with one UA, reaching
      `fanout_min_contacts` distinct recipients within `fanout_window_ms` → scanner. Addresses of
      a kind in `fanout_shared_kinds` (carrier NAT, Private Relay) need
      `fanout_shared_min_contacts`.

    Clicks not returned keep their request verdict. The input order does not matter.
    """
    extra: dict[int, list[str]] = defaultdict(list)
    demote: dict[int, str] = {}  # index → verdict
    counting = [i for i, c in enumerate(clicks) if c.request_verdict.verdict not in NOT_HUMAN]
    if not counting:
        return {}
    order = sorted(counting, key=lambda i: clicks[i].at_us)

    # Same-token bursts last: a request another window already proved to be a scanner is
    # explained, and must not make the person who tapped the same link look like a second UA.
    _all_links(clicks, order, rules, extra, demote)
    _fanout(clicks, order, rules, extra, demote)
    _same_token(clicks, order, rules, extra, demote)

    out: dict[str, Verdict] = {}
    for i, codes in extra.items():
        c = clicks[i]
        before = c.request_verdict
        verdict = demote[i]
        reasons = before.reasons + tuple(code for code in codes if code not in before.reasons)
        score = before.score if verdict == "suspect" else max(before.score, rules.behaviour_score)
        if verdict == "suspect":
            score = max(score, rules.suspect_threshold)
        out[c.click_id] = Verdict(verdict, score, reasons, before.version)
    return out


_RANK = {"suspect": 0, "automation": 1, "scanner": 2}
# The codes `apply_behaviour` appends: a final verdict carrying one was counted at request level.
BEHAVIOUR_REASONS = frozenset(
    {"ALL_LINKS_2S", "TOKEN_MULTI_UA_5S", "FANOUT_IP_60S", "FANOUT_NET_UA_60S"}
)


def request_level(final: Verdict) -> Verdict:
    """Return the request-level verdict under a final one, as the behaviour windows see it.

    Behaviour only ever demotes requests that counted (human, suspect) and appends its codes,
    so a final verdict with a behavioural code stands for a counted request (`suspect` when
    other reasons remain, else `human`); any other final verdict is its request-level one.
    Windows over neighbours already finalized must count them as the first pass did, or a
    later pass sees fewer recipients behind a fanning-out address than a one-pass
    re-classification does.
    """
    if not BEHAVIOUR_REASONS.intersection(final.reasons):
        return final
    rest = tuple(code for code in final.reasons if code not in BEHAVIOUR_REASONS)
    return Verdict("suspect" if rest else "human", final.score, rest, final.version)


def _mark(
    i: int, code: str, verdict: str, extra: dict[int, list[str]], demote: dict[int, str]
) -> None:
    if code not in extra[i]:
        extra[i].append(code)
    if i not in demote or _RANK[verdict] > _RANK[demote[i]]:
        demote[i] = verdict


def _all_links(
    clicks: Sequence[ClickFacts],
    order: list[int],
    rules: RuleSet,
    extra: dict[int, list[str]],
    demote: dict[int, str],
) -> None:
    window = rules.all_links_window_ms * 1000
    by_message: dict[int, list[int]] = defaultdict(list)
    for i in order:
        by_message[clicks[i].message_id].append(i)
    for idxs in by_message.values():
        if len(idxs) < 2:
            continue
        needed = max(2, clicks[idxs[0]].message_links)
        if clicks[idxs[0]].message_links == 1:
            continue
        lo = 0
        links: dict[int, int] = {}
        for hi, i in enumerate(idxs):
            links[clicks[i].link_id] = links.get(clicks[i].link_id, 0) + 1
            while clicks[i].at_us - clicks[idxs[lo]].at_us > window:
                old = clicks[idxs[lo]].link_id
                links[old] -= 1
                if not links[old]:
                    del links[old]
                lo += 1
            if len(links) >= needed:
                for j in idxs[lo : hi + 1]:
                    _mark(j, "ALL_LINKS_2S", "scanner", extra, demote)


def _same_token(
    clicks: Sequence[ClickFacts],
    order: list[int],
    rules: RuleSet,
    extra: dict[int, list[str]],
    demote: dict[int, str],
) -> None:
    window = rules.same_token_window_ms * 1000
    by_token: dict[tuple[int, int], list[int]] = defaultdict(list)
    for i in order:
        if demote.get(i) == "scanner":  # explained by ALL_LINKS / FANOUT: not part of a burst
            continue
        c = clicks[i]
        by_token[(c.message_id, c.link_id)].append(i)
    for idxs in by_token.values():
        if len(idxs) < 2:
            continue
        burst = [idxs[0]]
        for i in idxs[1:]:
            if clicks[i].at_us - clicks[burst[-1]].at_us <= window:
                burst.append(i)
                continue
            _close_burst(clicks, burst, extra, demote)
            burst = [i]
        _close_burst(clicks, burst, extra, demote)


def _close_burst(
    clicks: Sequence[ClickFacts],
    burst: list[int],
    extra: dict[int, list[str]],
    demote: dict[int, str],
) -> None:
    if len(burst) < 2 or len({clicks[i].user_agent for i in burst}) < 2:
        return
    for i in burst[:-1]:
        _mark(i, "TOKEN_MULTI_UA_5S", "automation", extra, demote)
    last = burst[-1]
    if last not in demote:
        _mark(last, "TOKEN_MULTI_UA_5S", "suspect", extra, demote)
    elif "TOKEN_MULTI_UA_5S" not in extra[last]:
        extra[last].append("TOKEN_MULTI_UA_5S")


def _fanout(
    clicks: Sequence[ClickFacts],
    order: list[int],
    rules: RuleSet,
    extra: dict[int, list[str]],
    demote: dict[int, str],
) -> None:
    window = rules.fanout_window_ms * 1000
    by_ip: dict[str, list[int]] = defaultdict(list)
    by_net_ua: dict[tuple[str, str], list[int]] = defaultdict(list)
    for i in order:
        c = clicks[i]
        if not c.ip:
            continue
        by_ip[c.ip].append(i)
        prefix = _prefix(c.ip, rules)
        if prefix is not None:
            by_net_ua[(prefix, c.user_agent or "")].append(i)
    for ip_idxs in by_ip.values():
        _fanout_group(clicks, ip_idxs, window, rules, "FANOUT_IP_60S", extra, demote)
    for net_idxs in by_net_ua.values():
        _fanout_group(clicks, net_idxs, window, rules, "FANOUT_NET_UA_60S", extra, demote)


def _fanout_group(
    clicks: Sequence[ClickFacts],
    idxs: list[int],
    window: int,
    rules: RuleSet,
    code: str,
    extra: dict[int, list[str]],
    demote: dict[int, str],
) -> None:
    if len(idxs) < min(rules.fanout_min_contacts, rules.fanout_shared_min_contacts):
        return
    shared = clicks[idxs[0]].ip_kind in rules.fanout_shared_kinds
    needed = rules.fanout_shared_min_contacts if shared else rules.fanout_min_contacts
    if len(idxs) < needed:
        return
    contacts: dict[int, int] = {}
    lo = 0
    marked_upto = 0
    for hi, i in enumerate(idxs):
        cid = clicks[i].contact_id
        contacts[cid] = contacts.get(cid, 0) + 1
        while clicks[i].at_us - clicks[idxs[lo]].at_us > window:
            old = clicks[idxs[lo]].contact_id
            contacts[old] -= 1
            if not contacts[old]:
                del contacts[old]
            lo += 1
        if len(contacts) >= needed:
            for j in idxs[max(lo, marked_upto) : hi + 1]:
                _mark(j, code, "scanner", extra, demote)
            marked_upto = hi + 1


def _prefix(ip: str, rules: RuleSet) -> str | None:
    """Return the /24 (IPv4) or /48 (IPv6) of `ip` as text, cheaply; None if unparsable."""
    if ":" in ip:
        # Text-level grouping is enough for a window key; expand "::" so that groups line up.
        groups = ip.split(":")
        if "" in groups:
            at = groups.index("")
            head = [g for g in groups[:at] if g]
            tail = [g for g in groups[at:] if g]
            groups = head + ["0"] * (8 - len(head) - len(tail)) + tail
        n = rules.v6_fanout_prefix // 16
        return ":".join(g.lower().lstrip("0") or "0" for g in groups[:n]) + "::/" + str(n * 16)
    parts = ip.split(".")
    if len(parts) != 4:
        return None
    n = rules.v4_fanout_prefix // 8
    return ".".join(parts[:n] + ["0"] * (4 - n)) + "/" + str(n * 8)
