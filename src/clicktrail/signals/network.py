"""Network facts: who owns a client address, from offline data only (no network at run time).

Two sources, both offline:
- `iporigin` (PyPI): a packed table of ~39,000 ranges compiled from the providers' own published
  feeds (clouds, hosting, CDNs, Apple iCloud Private Relay, Tor exits, declared crawlers),
  rebuilt and released monthly. Its `online` module is never imported here.
- `NetworkList`: CIDR lists that a workspace supplies or that an operator imported from the
  clouds' published range files (`parse_range_file`): AWS ip-ranges.json, Google cloud.json and
  goog.json, Azure ServiceTags_*.json, Cloudflare ips-v4 / ips-v6, or plain CIDR text.
  `WorkspaceNetworks` keeps each workspace's stored lists as one `NetworkList` over the
  installation's, reloaded when the workspace's lists change.
"""

from __future__ import annotations

import csv
import io
import ipaddress
import json
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import iporigin

# LISTED_KINDS: only these set `IpFacts.listed` (a workspace may also list its carriers' ranges
# as kind "mobile"); RANGE_KINDS: every kind a list may name. Both are re-exported from here.
from clicktrail.domain.bots.model import LISTED_KINDS, RANGE_KINDS, IpFacts
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
    cloud files use a dozen), so they cost microseconds whatever the list size. With a `base`
    (a workspace's lists over the installation's), both are searched and the more specific
    range wins; on the same range, this list's.

    Never changed once built: `ip_facts` memoises per (address, list object), so a list that
    changes is a new `NetworkList` (and new cache entries), never an edit of this one.
    """

    __slots__ = ("_by_len", "base", "name", "ranges")

    def __init__(
        self,
        ranges: Iterable[NetworkRange],
        name: str = "networks",
        base: NetworkList | None = None,
    ) -> None:
        self.name = name
        self.base = base
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
        return len(self.ranges) + (len(self.base) if self.base is not None else 0)

    def find(self, ip: str) -> NetworkRange | None:
        """Return the most specific range holding `ip`, or None (also for a malformed address)."""
        try:
            addr = ipaddress.ip_address(ip.strip())
        except ValueError:
            return None
        return self._find(addr.version, int(addr))

    def _find(self, version: int, value: int) -> NetworkRange | None:
        bits = 32 if version == 4 else 128
        own = None
        for plen, table in self._by_len[version]:
            own = table.get(value >> (bits - plen) << (bits - plen))
            if own is not None:
                break
        if self.base is None:
            return own
        below = self.base._find(version, value)
        if below is None or (own is not None and own.network.prefixlen >= below.network.prefixlen):
            return own
        return below


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
        raise InvalidInput(
            f"kind {kind!r} is not one of {', '.join(sorted(RANGE_KINDS))}", field="kind"
        )
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
                f"{path}: {where}: cidr: {cidr!r} is not a CIDR range",
                field=f"{path}: {where}: cidr",
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
                f"{path}: line {n}: kind: unknown kind {kind!r}; expected one of "
                f"{', '.join(sorted(RANGE_KINDS))}",
                field=f"{path}: line {n}: kind",
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


def range_file_entries(
    path: Path, kind: str | None = None, owner: str | None = None
) -> list[tuple[str, str, str]]:
    """Return the ranges of one range file as (cidr, kind, owner) (see `parse_range_file`, whose
    errors it raises); the shape `services.networks.RangeFileReader` reads."""
    return [
        (str(r.network), r.kind, r.owner) for r in parse_range_file(path, owner=owner, kind=kind)
    ]


def load_networks(paths: Iterable[Path], name: str = "networks") -> NetworkList:
    """Return one `NetworkList` of every range in the files at `paths` (see `parse_range_file`)."""
    ranges: list[NetworkRange] = []
    for p in paths:
        ranges.extend(parse_range_file(p))
    return NetworkList(ranges, name=name)


def workspace_network_list(
    rows: Iterable[tuple[str, str, str, str]], base: NetworkList | None
) -> NetworkList | None:
    """Return a workspace's ranges (cidr, owner, kind, list name) as one `NetworkList` over
    `base` (the installation's), or `base` itself when the workspace has none.

    Rows come in list-name order: where two of a workspace's lists hold the same range, the
    list whose name sorts first decides its kind.
    """
    ranges = [
        NetworkRange(ipaddress.ip_network(cidr, strict=False), owner, kind, name)
        for cidr, owner, kind, name in rows
    ]
    if not ranges:
        return base
    return NetworkList(ranges, name="workspace", base=base)


class WorkspaceNetworks:
    """Each workspace's network lists, over the installation's `base`, for the classifier.

    A workspace's list is loaded the first time one of its requests is judged and kept until
    its revision changes; `revisions` (one small query) is asked at most every `ttl` seconds,
    so a change is picked up within about `ttl` and no request costs a query. Which workspace
    a campaign belongs to (`workspace_of`) is asked once per campaign. A workspace without
    lists gets `base` itself, so memoised `ip_facts` are shared.
    """

    def __init__(
        self,
        base: NetworkList | None,
        *,
        revisions: Callable[[], Mapping[int, int]],
        ranges_of: Callable[[int], Iterable[tuple[str, str, str, str]]],
        workspace_of: Callable[[int], int | None],
        ttl: float = 1.0,
    ) -> None:
        self.base = base
        self.ttl = ttl
        self._revisions_source = revisions
        self._ranges_of = ranges_of
        self._workspace_of = workspace_of
        self._campaigns: dict[int, int | None] = {}
        self._revisions: Mapping[int, int] = {}
        self._loaded: dict[int, tuple[int, NetworkList | None]] = {}
        self._checked_until = 0.0

    def refresh(self) -> None:
        """Read the revisions now; lists that changed are reloaded when next used."""
        self._revisions = dict(self._revisions_source())
        self._checked_until = time.monotonic() + self.ttl

    def for_campaign(self, campaign_id: int) -> NetworkList | None:
        """Return the networks a request on campaign `campaign_id` is judged with."""
        try:
            workspace_id = self._campaigns[campaign_id]
        except KeyError:
            workspace_id = self._campaigns[campaign_id] = self._workspace_of(campaign_id)
        return self.base if workspace_id is None else self.for_workspace(workspace_id)

    def for_workspace(self, workspace_id: int) -> NetworkList | None:
        """Return workspace `workspace_id`'s lists over the installation's (or the latter)."""
        if time.monotonic() >= self._checked_until:
            self.refresh()
        revision = self._revisions.get(workspace_id)
        if revision is None:
            return self.base
        loaded = self._loaded.get(workspace_id)
        if loaded is None or loaded[0] != revision:
            loaded = (revision, workspace_network_list(self._ranges_of(workspace_id), self.base))
            self._loaded[workspace_id] = loaded
        return loaded[1]
