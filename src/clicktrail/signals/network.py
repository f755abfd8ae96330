"""Network facts: who owns a client address, from offline data only (no network at run time).

Two sources, both offline:
- `iporigin` (PyPI): a packed table of ~39,000 ranges compiled from the providers' own published
  feeds (clouds, hosting, CDNs, Apple iCloud Private Relay, Tor exits, declared crawlers),
  rebuilt and released monthly. Its `online` module is never imported here.
- `NetworkList`: CIDR lists that a workspace supplies or that an operator imported from the
  clouds' published range files (`parse_range_file`): AWS ip-ranges.json, Google cloud.json and
  goog.json, Azure ServiceTags_*.json, Cloudflare ips-v4 / ips-v6, or plain CIDR text.
"""

from __future__ import annotations

import csv
import io
import ipaddress
import json
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import iporigin

from clicktrail.domain.bots.model import IpFacts
from clicktrail.domain.errors import InvalidInput

# iporigin kind → IpFacts kind. Apple Private Relay is listed by iporigin as a VPN; for us it is
# a relay of real Safari users and must never count against a request on its own.
_KINDS = {
    "hosting": "hosting",
    "cdn": "cdn",
    "vpn": "vpn",
    "tor": "tor",
    "bot": "crawler",
    "reserved": "reserved",
    "unknown": "unknown",
}
RELAY_OWNERS = frozenset({"Apple Private Relay"})
# Kinds of a listed range that mean "not a person's own connection": only these set
# `IpFacts.listed` (a workspace may also list its carriers' ranges as kind "mobile").
LISTED_KINDS = frozenset({"hosting", "cdn", "crawler", "scanner"})
RANGE_KINDS = frozenset({*LISTED_KINDS, "mobile", "relay", "residential", "vpn", "tor"})

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class NetworkRange:
    """One CIDR with who owns it, what kind of network it is and which list it came from."""

    network: Network
    owner: str
    kind: str = "hosting"
    source: str = ""  # list name: "aws", "azure", a workspace list name…


class NetworkList:
    """CIDR ranges answering "which range holds this address?"; the most specific one wins.

    Look-ups probe one dict per prefix length present (at most 33 for IPv4, 129 for IPv6; real
    cloud files use a dozen), so they cost microseconds whatever the list size.
    """

    __slots__ = ("_by_len", "name", "ranges")

    def __init__(self, ranges: Iterable[NetworkRange], name: str = "networks") -> None:
        self.name = name
        self.ranges: tuple[NetworkRange, ...] = tuple(ranges)
        by_len: dict[tuple[int, int], dict[int, NetworkRange]] = {}
        for r in self.ranges:
            key = (r.network.version, r.network.prefixlen)
            by_len.setdefault(key, {}).setdefault(int(r.network.network_address), r)
        self._by_len = {
            version: sorted(
                ((plen, table) for (v, plen), table in by_len.items() if v == version),
                key=lambda item: -item[0],
            )
            for version in (4, 6)
        }

    def __len__(self) -> int:
        return len(self.ranges)

    def find(self, ip: str) -> NetworkRange | None:
        """Return the most specific range holding `ip`, or None (also for a malformed address)."""
        try:
            addr = ipaddress.ip_address(ip.strip())
        except ValueError:
            return None
        bits = 32 if addr.version == 4 else 128
        value = int(addr)
        for plen, table in self._by_len[addr.version]:
            hit = table.get(value >> (bits - plen) << (bits - plen))
            if hit is not None:
                return hit
        return None


@lru_cache(maxsize=65536)
def _origin(ip: str) -> tuple[str, str]:
    try:
        found: Any = iporigin.classify(ip)  # type: ignore[no-untyped-call]
    except ValueError:
        return ("unknown", "")
    owner = str(found.provider)
    if owner in RELAY_OWNERS:
        return ("relay", owner)
    return (_KINDS.get(str(found.kind), "unknown"), owner)


@lru_cache(maxsize=65536)
def ip_facts(ip: str | None, networks: NetworkList | None = None) -> IpFacts:
    """Return the kind and owner of `ip` (hosting, cdn, crawler, relay, tor, vpn, reserved…).

    `networks` (workspace or imported lists) give the kind and owner when the bundled data
    does not know the address (or calls it reserved), and set `listed` when the range is of a non-human kind. A missing or
    malformed address gives empty facts. Memoised per (address, list).
    """
    if not ip:
        return IpFacts()
    text = ip.strip()
    kind, owner = _origin(text)
    listed = None
    if networks is not None:
        hit = networks.find(text)
        if hit is not None:
            if kind in ("unknown", "reserved"):  # the list knows better (own scanners on 10/8…)
                kind = hit.kind
            owner = owner or hit.owner
            if hit.kind in LISTED_KINDS and kind != "relay":
                listed = hit.source or networks.name
    return IpFacts(kind=kind, owner=owner or None, listed=listed)


def dataset_built_at() -> int:
    """Return when the bundled iporigin table was built (seconds since the epoch)."""
    info: Any = iporigin.dataset_info()  # type: ignore[no-untyped-call]
    return int(info["built_at"])


# ---------------------------------------------------------------------------------------------
# Importing the clouds' published range files (downloaded by the user; never fetched here).


def parse_range_file(
    path: Path, *, owner: str | None = None, kind: str | None = None
) -> list[NetworkRange]:
    """Return the ranges of one published range file, recognised by its content.

    Understands AWS ip-ranges.json, Google cloud.json / goog.json, Azure ServiceTags JSON,
    clicktrail's own CSV (``cidr,owner,kind``, as written by `write_ranges`) and plain text with
    one CIDR per line (Cloudflare ips-v4 / ips-v6; ``#`` starts a comment). `owner` and `kind`
    override what the file implies. Raises `InvalidInput` naming the file and the bad entry.
    """
    if kind is not None and kind not in RANGE_KINDS:
        raise InvalidInput(f"kind must be one of {sorted(RANGE_KINDS)}", field="kind")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise InvalidInput(f"{path}: cannot read ({exc.strerror})", field=str(path)) from None
    except UnicodeDecodeError:
        raise InvalidInput(f"{path}: not a UTF-8 text file", field=str(path)) from None
    stripped = text.lstrip()
    if stripped.startswith("{"):
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InvalidInput(
                f"{path}: invalid JSON at line {exc.lineno}", field=str(path)
            ) from None
        found = _from_json(doc, path)
    elif stripped.startswith("cidr,"):
        found = _from_csv(text, path)
    else:
        default_owner = "Cloudflare" if path.name.startswith("ips-v") else path.stem
        default_kind = "cdn" if default_owner == "Cloudflare" else "hosting"
        found = [
            (cidr, default_owner, default_kind, path.stem, f"line {n}")
            for n, line in enumerate(text.splitlines(), 1)
            if (cidr := line.split("#", 1)[0].strip())
        ]
    ranges: list[NetworkRange] = []
    seen: set[Network] = set()
    for cidr, own, knd, source, where in found:
        try:
            net = ipaddress.ip_network(cidr, strict=False)
        except ValueError:
            raise InvalidInput(
                f"{path}: {where}: {cidr!r} is not a CIDR range", field=f"{path}: {where}"
            ) from None
        if net in seen:  # AWS "AMAZON" and Azure "AzureCloud" repeat the specific entries
            continue
        seen.add(net)
        ranges.append(NetworkRange(net, owner or own, kind or knd, source))
    return ranges


_Found = list[tuple[str, str, str, str, str]]  # cidr, owner, kind, source, where


def _from_json(doc: Any, path: Path) -> _Found:
    out: _Found = []
    if isinstance(doc, dict) and "syncToken" in doc:  # AWS ip-ranges.json
        # Specific services first so that deduplication keeps them over the "AMAZON" superset.
        for key, field in (("prefixes", "ip_prefix"), ("ipv6_prefixes", "ipv6_prefix")):
            items = sorted(doc.get(key) or [], key=lambda e: e.get("service") == "AMAZON")
            for n, e in enumerate(items):
                service = str(e.get("service", ""))
                kind = "cdn" if service == "CLOUDFRONT" else "hosting"
                out.append((str(e.get(field, "")), "Amazon AWS", kind, "aws", f"{key}[{n}]"))
        return out
    if isinstance(doc, dict) and isinstance(doc.get("values"), list):  # Azure ServiceTags
        values = sorted(doc["values"], key=lambda v: v.get("name") == "AzureCloud")
        for v in values:
            props = v.get("properties") or {}
            for cidr in props.get("addressPrefixes") or []:
                out.append((str(cidr), "Microsoft Azure", "hosting", "azure", str(v.get("name"))))
        return out
    if isinstance(doc, dict) and isinstance(doc.get("prefixes"), list):  # Google
        cloud = any("service" in e for e in doc["prefixes"])
        owner, source = ("Google Cloud", "google-cloud") if cloud else ("Google", "goog")
        for n, e in enumerate(doc["prefixes"]):
            cidr = e.get("ipv4Prefix") or e.get("ipv6Prefix") or ""
            out.append((str(cidr), owner, "hosting", source, f"prefixes[{n}]"))
        return out
    raise InvalidInput(
        f"{path}: not a known range file (AWS ip-ranges.json, Google cloud.json/goog.json, "
        "Azure ServiceTags JSON, Cloudflare ips-v4/v6 text or clicktrail CSV)",
        field=str(path),
    )


def _from_csv(text: str, path: Path) -> _Found:
    out: _Found = []
    for n, row in enumerate(csv.DictReader(io.StringIO(text)), 2):
        kind = (row.get("kind") or "hosting").strip()
        if kind not in RANGE_KINDS:
            raise InvalidInput(
                f"{path}: line {n}: unknown kind {kind!r}", field=f"{path}: line {n}"
            )
        out.append(
            (
                (row.get("cidr") or "").strip(),
                (row.get("owner") or "").strip(),
                kind,
                (row.get("source") or path.stem).strip(),
                f"line {n}",
            )
        )
    return out


def write_ranges(ranges: Iterable[NetworkRange]) -> str:
    """Return `ranges` as clicktrail's CSV (``cidr,owner,kind,source``), readable back by
    `parse_range_file`."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["cidr", "owner", "kind", "source"])
    for r in ranges:
        writer.writerow([str(r.network), r.owner, r.kind, r.source])
    return out.getvalue()


def load_networks(paths: Iterable[Path], name: str = "networks") -> NetworkList:
    """Return one `NetworkList` of every range in the files at `paths` (see `parse_range_file`)."""
    ranges: list[NetworkRange] = []
    for p in paths:
        ranges.extend(parse_range_file(p))
    return NetworkList(ranges, name=name)
