"""Client addresses behind proxies: trust forwarding headers only from configured proxies."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from clicktrail.domain.errors import InvalidInput

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(spec: str) -> tuple[Network, ...]:
    """Parse ``"127.0.0.1, 10.0.0.0/8, ::1"`` into networks.

    Raises `InvalidInput` naming the entry that is not an IP address or CIDR range.
    """
    nets: list[Network] = []
    for part in spec.split(","):
        text = part.strip()
        if not text:
            continue
        try:
            nets.append(ipaddress.ip_network(text, strict=False))
        except ValueError:
            raise InvalidInput(
                f"trusted_proxies: {text!r} is not an IP address or CIDR range",
                field="trusted_proxies",
            ) from None
    return tuple(nets)


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    value = text.strip().strip('"')
    if value.startswith("["):  # [v6]:port
        value = value[1 : value.find("]")]
    elif value.count(":") == 1:  # v4:port
        value = value.split(":", 1)[0]
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        return None


def _trusted(addr: ipaddress.IPv4Address | ipaddress.IPv6Address, nets: Sequence[Network]) -> bool:
    return any(addr.version == n.version and addr in n for n in nets)


def client_ip(
    peer: str | None,
    forwarded: str | None,
    x_forwarded_for: str | None,
    trusted: Sequence[Network],
) -> str | None:
    """Return the client's IP address.

    Only when the connection comes from a trusted proxy are the forwarding headers read
    (``Forwarded`` first, per RFC 7239, else ``X-Forwarded-For``): the hops are walked from the
    nearest, skipping trusted proxies; the first untrusted address is the client. Anything
    unparsable stops the walk at the last trusted hop, so a forged header can never name an
    address beyond what the proxies vouch for.
    """
    if peer is None or not trusted:
        return peer
    peer_ip = _ip(peer)
    if peer_ip is None or not _trusted(peer_ip, trusted):
        return peer
    hops: list[str] = []
    if forwarded:
        for element in forwarded.split(","):
            for pair in element.split(";"):
                key, _, value = pair.strip().partition("=")
                if key.lower() == "for":
                    hops.append(value)
    elif x_forwarded_for:
        hops = x_forwarded_for.split(",")
    client = peer
    for hop in reversed(hops):
        addr = _ip(hop)
        if addr is None:
            break
        client = str(addr)
        if not _trusted(addr, trusted):
            break
    return client


def normalize_cidr(text: str) -> str | None:
    """Return `text` as a canonical CIDR range, or None when it is not an address or a range.

    Host bits are cleared (``10.1.2.3/8`` → ``10.0.0.0/8``), a bare address is its own /32 or
    /128 and IPv6 is compressed (``2001:DB8:0::/32`` → ``2001:db8::/32``), so one range is
    always written the same way. Zone ids (``fe80::1%eth0``) are not ranges.
    """
    value = text.strip()
    if not value or "%" in value or any(c.isspace() for c in value):
        return None
    try:
        return str(ipaddress.ip_network(value, strict=False))
    except ValueError:
        return None
