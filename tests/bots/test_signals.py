"""The signal adapters: user-agent facts, network facts, cloud range imports, `facts_for`."""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path

import pytest

from clicktrail.domain.bots.model import IpFacts, UaFacts
from clicktrail.domain.errors import InvalidInput
from clicktrail.signals import (
    NetworkList,
    NetworkRange,
    facts_for,
    ip_facts,
    load_networks,
    parse_range_file,
    ua_facts,
    write_ranges,
)
from clicktrail.signals.network import dataset_built_at

IOS_SAFARI = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/18.5 Mobile/15E148 Safari/604.1"
)
SAMSUNG_INTERNET = (
    "Mozilla/5.0 (Linux; Android 14; SAMSUNG SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) "
    "SamsungBrowser/28.0 Chrome/130.0.0.0 Mobile Safari/537.36"
)
WECHAT_ANDROID = (
    "Mozilla/5.0 (Linux; Android 13; V2148A Build/TP1A.220624.014; wv) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Version/4.0 Chrome/116.0.0.0 Mobile Safari/537.36 XWEB/1160065 "
    "MMWEBSDK/20231202 MMWEBID/2247 MicroMessenger/8.0.47.2560(0x28002F30) WeChat/arm64 Weixin "
    "NetType/WIFI Language/zh_CN ABI/arm64"
)
FACEBOOK_IOS = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
    "Gecko) Mobile/15E148 [FBAN/FBIOS;FBAV/470.0.0.45.109;FBBV/612734563;FBDV/iPhone14,5;"
    "FBMD/iPhone;FBSN/iOS;FBSV/17.5;FBSS/3;FBID/phone;FBLC/en_US;FBOP/5;FBRV/614056213]"
)
GSA_IOS = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
    "Gecko) GSA/322.0.648915268 Mobile/15E148 Safari/604.1"
)


# -- user agent ------------------------------------------------------------------------------------


def test_ua_facts_of_real_browsers() -> None:
    safari = ua_facts(IOS_SAFARI)
    assert (safari.browser, safari.browser_major, safari.os, safari.device) == (
        "Mobile Safari",
        18,
        "iOS",
        "iPhone",
    )
    assert safari.in_app is None and safari.bot_list_match is None
    samsung = ua_facts(SAMSUNG_INTERNET)
    assert (samsung.browser, samsung.os) == ("Samsung Internet", "Android")


@pytest.mark.parametrize(
    ("ua", "app"),
    [(WECHAT_ANDROID, "WeChat"), (FACEBOOK_IOS, "Facebook"), (GSA_IOS, "GSA")],
)
def test_in_app_browsers_are_named_and_never_bot_listed(ua: str, app: str) -> None:
    facts = ua_facts(ua)
    assert facts.in_app == app
    assert facts.bot_list_match is None


def test_bot_list_names_the_matching_pattern() -> None:
    assert ua_facts("Mozilla/5.0 (compatible; Googlebot/2.1)").bot_list_match == "Googlebot\\/"
    assert ua_facts("curl/8.5.0").bot_list_match is not None
    assert ua_facts(IOS_SAFARI).bot_list_match is None


def test_missing_and_blank_user_agents_give_empty_facts() -> None:
    assert ua_facts(None) == UaFacts()
    assert ua_facts("  ") == UaFacts()


def test_ua_facts_are_memoised() -> None:
    assert ua_facts(IOS_SAFARI) is ua_facts(IOS_SAFARI)


# -- network ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ip", "kind", "owner"),
    [
        ("52.95.110.1", "hosting", "Amazon AWS"),
        ("40.94.0.1", "hosting", "Microsoft Azure"),
        ("172.225.6.1", "relay", "Apple Private Relay"),
        ("66.249.66.1", "crawler", "Googlebot"),
        ("185.220.101.1", "tor", "Tor"),
        ("104.16.0.1", "cdn", "Cloudflare"),
        ("10.1.2.3", "reserved", None),
        ("172.58.0.1", "unknown", None),
    ],
)
def test_ip_facts_from_the_bundled_dataset(ip: str, kind: str, owner: str | None) -> None:
    assert ip_facts(ip) == IpFacts(kind=kind, owner=owner)


def test_ip_facts_of_nothing_or_garbage() -> None:
    assert ip_facts(None) == IpFacts()
    assert ip_facts("not-an-ip") == IpFacts(kind="unknown")


def test_the_bundled_dataset_is_recent_enough_to_trust() -> None:
    assert dataset_built_at() > 1_735_689_600  # built in 2025 or later


def test_workspace_lists_name_owner_and_listing_most_specific_first() -> None:
    nets = NetworkList(
        [
            NetworkRange(ipaddress.ip_network("203.0.113.0/24"), "Acme gateway", "scanner", "acme"),
            NetworkRange(ipaddress.ip_network("203.0.113.128/25"), "Acme carrier", "mobile", "c"),
            NetworkRange(ipaddress.ip_network("2001:db8::/32"), "v6 host", "hosting", "v6"),
        ],
        name="workspace",
    )
    assert ip_facts("203.0.113.5", nets) == IpFacts("scanner", "Acme gateway", "acme")
    assert ip_facts("203.0.113.200", nets) == IpFacts("mobile", "Acme carrier", None)
    assert nets.find("2001:db8::1") is not None
    assert nets.find("198.51.100.1") is None
    assert nets.find("garbage") is None
    # The bundled data's relay verdict is never overridden into a listing.
    relay = NetworkList([NetworkRange(ipaddress.ip_network("172.225.0.0/16"), "x", "hosting")])
    assert ip_facts("172.225.6.1", relay).listed is None


# -- cloud range files -----------------------------------------------------------------------------


def _write(tmp_path: Path, name: str, content: object) -> Path:
    path = tmp_path / name
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return path


def test_aws_ip_ranges(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "ip-ranges.json",
        {
            "syncToken": "1",
            "createDate": "2025-06-01-00-00-00",
            "prefixes": [
                {"ip_prefix": "3.2.34.0/26", "region": "af-south-1", "service": "AMAZON"},
                {"ip_prefix": "3.2.34.0/26", "region": "af-south-1", "service": "EC2"},
                {"ip_prefix": "13.32.0.0/15", "region": "GLOBAL", "service": "CLOUDFRONT"},
            ],
            "ipv6_prefixes": [
                {"ipv6_prefix": "2600:1f14::/35", "region": "us-west-2", "service": "EC2"}
            ],
        },
    )
    ranges = parse_range_file(path)
    assert [(str(r.network), r.owner, r.kind, r.source) for r in ranges] == [
        ("3.2.34.0/26", "Amazon AWS", "hosting", "aws"),
        ("13.32.0.0/15", "Amazon AWS", "cdn", "aws"),
        ("2600:1f14::/35", "Amazon AWS", "hosting", "aws"),
    ]


def test_google_cloud_and_goog(tmp_path: Path) -> None:
    cloud = _write(
        tmp_path,
        "cloud.json",
        {
            "syncToken": None,
            "creationTime": "2025-06-01T00:00:00",
            "prefixes": [
                {
                    "ipv4Prefix": "34.1.208.0/20",
                    "service": "Google Cloud",
                    "scope": "africa-south1",
                },
                {"ipv6Prefix": "2600:1900:8000::/44", "service": "Google Cloud", "scope": "x"},
            ],
        },
    )
    # cloud.json carries a null syncToken key: it must not be read as AWS.
    doc = json.loads(cloud.read_text())
    del doc["syncToken"]
    cloud.write_text(json.dumps(doc))
    assert {(r.owner, r.source) for r in parse_range_file(cloud)} == {
        ("Google Cloud", "google-cloud")
    }
    goog = _write(tmp_path, "goog.json", {"prefixes": [{"ipv4Prefix": "8.8.4.0/24"}]})
    assert [(str(r.network), r.owner) for r in parse_range_file(goog)] == [("8.8.4.0/24", "Google")]


def test_azure_service_tags(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "ServiceTags_Public_20250602.json",
        {
            "changeNumber": 1,
            "cloud": "Public",
            "values": [
                {"name": "AzureCloud", "properties": {"addressPrefixes": ["4.0.0.0/8"]}},
                {
                    "name": "AzureFrontDoor.Frontend",
                    "properties": {"addressPrefixes": ["13.107.246.0/24", "2620:1ec:bdf::/48"]},
                },
            ],
        },
    )
    ranges = parse_range_file(path)
    assert {str(r.network) for r in ranges} == {"4.0.0.0/8", "13.107.246.0/24", "2620:1ec:bdf::/48"}
    assert {r.owner for r in ranges} == {"Microsoft Azure"}


def test_cloudflare_text_and_csv_round_trip(tmp_path: Path) -> None:
    path = _write(tmp_path, "ips-v4", "173.245.48.0/20\n# comment\n\n103.21.244.0/22\n")
    ranges = parse_range_file(path)
    assert [(str(r.network), r.owner, r.kind) for r in ranges] == [
        ("173.245.48.0/20", "Cloudflare", "cdn"),
        ("103.21.244.0/22", "Cloudflare", "cdn"),
    ]
    csv_path = _write(tmp_path, "nets.csv", write_ranges(ranges))
    assert parse_range_file(csv_path) == ranges
    nets = load_networks([path, csv_path])
    assert nets.find("173.245.48.1") is not None


def test_owner_and_kind_overrides(tmp_path: Path) -> None:
    path = _write(tmp_path, "carrier.txt", "198.51.100.0/24\n")
    (r,) = parse_range_file(path, owner="Example Mobile", kind="mobile")
    assert (r.owner, r.kind) == ("Example Mobile", "mobile")
    with pytest.raises(InvalidInput, match="kind 'planet' is not one of cdn, crawler"):
        parse_range_file(path, kind="planet")


def test_bad_range_files_name_the_entry(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="line 2: cidr: 'nope' is not a CIDR range"):
        parse_range_file(_write(tmp_path, "bad.txt", "10.0.0.0/8\nnope\n"))
    with pytest.raises(InvalidInput, match="not a known range file"):
        parse_range_file(_write(tmp_path, "x.json", {"hello": 1}))
    with pytest.raises(InvalidInput, match="invalid JSON"):
        parse_range_file(_write(tmp_path, "y.json", "{nope"))
    with pytest.raises(InvalidInput, match="cannot read"):
        parse_range_file(tmp_path / "missing.json")
    with pytest.raises(InvalidInput, match="line 2: kind: unknown kind 'planet'"):
        parse_range_file(_write(tmp_path, "k.csv", "cidr,owner,kind\n10.0.0.0/8,x,planet\n"))


# -- facts_for -------------------------------------------------------------------------------------


def test_facts_for_computes_deltas_in_milliseconds() -> None:
    t = 1_750_000_000_000_000
    f = facts_for("GET", IOS_SAFARI, {"accept": "*/*"}, "52.95.110.1", t + 2_500_400, t, t - 9_000)
    assert (f.ms_since_delivery, f.ms_since_send) == (2500, 2509)
    assert f.ua.browser == "Mobile Safari"
    assert f.net.kind == "hosting"
    early = facts_for("GET", None, {}, None, t - 1, t, None)
    assert (early.ms_since_delivery, early.ms_since_send) == (-1, None)
    assert early.ua == UaFacts() and early.net == IpFacts()
