"""Client addresses behind proxies: trust forwarding headers only from configured proxies."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from clicktrail.domain.errors import InvalidInput

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(spec: str, setting: str = "trusted_proxies") -> tuple[Network, ...]:
    """Parse ``"127.0.0.1, 10.0.0.0/8, ::1"`` (the value of `setting`) into networks.

    Raises `InvalidInput` naming `setting` and the entry that is not an IP address or range.
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
                f"{setting}: {text!r} is not an IP address or CIDR range",
                field=setting,
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


# -- outbound destinations ----------------------------------------------------------------------
# Where the server may send requests for a tenant (provider APIs, later webhooks): never to
# itself, its neighbours or its cloud's metadata service (SSRF). Pure classification here; the
# resolving and connecting that apply it is in `clicktrail.outbound`.

Address = ipaddress.IPv4Address | ipaddress.IPv6Address

# Written out rather than left to `is_global`/`is_private`, whose lists changed between Python
# patch releases (3.11.7 calls 192.0.0.8 and 64:ff9b:1::/48 global).
_FORBIDDEN: tuple[tuple[Network, str], ...] = tuple(
    (ipaddress.ip_network(cidr), why)
    for cidr, why in (
        ("0.0.0.0/8", "unspecified"),  # "this network": 0.0.0.0 reaches the host itself
        ("10.0.0.0/8", "private"),
        ("100.64.0.0/10", "shared address space (CGNAT)"),
        ("127.0.0.0/8", "loopback"),
        ("169.254.0.0/16", "link-local (cloud metadata)"),
        ("172.16.0.0/12", "private"),
        ("192.0.0.0/24", "IETF protocol assignments"),
        ("192.0.2.0/24", "documentation"),
        ("192.88.99.0/24", "6to4 relay anycast"),
        ("192.168.0.0/16", "private"),
        ("198.18.0.0/15", "benchmarking"),
        ("198.51.100.0/24", "documentation"),
        ("203.0.113.0/24", "documentation"),
        ("224.0.0.0/4", "multicast"),
        ("240.0.0.0/4", "reserved"),  # 255.255.255.255 included
        ("::/128", "unspecified"),
        ("::1/128", "loopback"),
        ("::/96", "IPv4-compatible (deprecated)"),
        ("100::/64", "discard-only"),
        ("64:ff9b:1::/48", "local-use NAT64"),
        ("2001::/23", "IETF protocol assignments (Teredo and others)"),
        ("2001:db8::/32", "documentation"),
        ("3fff::/20", "documentation"),
        ("5f00::/16", "segment routing"),
        ("fc00::/7", "private (unique local; fd00:ec2::254 is a cloud metadata address)"),
        ("fe80::/10", "link-local"),
        ("fec0::/10", "site-local (deprecated)"),
        ("ff00::/8", "multicast"),
    )
)
# IPv6 forms that carry an IPv4 address the packets end up at: the IPv4 address is judged too.
_MAPPED = ipaddress.ip_network("::ffff:0:0/96")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_SIX_TO_FOUR = ipaddress.ip_network("2002::/16")


def embedded_ipv4(addr: Address) -> ipaddress.IPv4Address | None:
    """Return the IPv4 address an IPv6 address leads to (IPv4-mapped ``::ffff:a.b.c.d``,
    NAT64 ``64:ff9b::a.b.c.d``, 6to4 ``2002:AABB:CCDD::``), or None."""
    if addr.version != 6:
        return None
    assert isinstance(addr, ipaddress.IPv6Address)
    if addr in _MAPPED or addr in _NAT64:
        return ipaddress.IPv4Address(int(addr) & 0xFFFFFFFF)
    if addr in _SIX_TO_FOUR:
        return addr.sixtofour
    return None


def forbidden_reason(addr: Address, allowed: Sequence[Network] = ()) -> str | None:
    """Return why the server must not connect to `addr` (``"loopback"``, ``"private"``…), or
    None when it may: a public unicast address, or one inside the operator's `allowed`
    networks (the address itself or the IPv4 address it embeds)."""
    inner = embedded_ipv4(addr)
    if _trusted(addr, allowed) or (inner is not None and _trusted(inner, allowed)):
        return None
    for candidate in (addr, inner):
        if candidate is None:
            continue
        for net, why in _FORBIDDEN:
            if candidate.version == net.version and candidate in net:
                return why
    return None


_LOCALHOST = ("localhost", "localhost.")


def literal_address(host: str) -> Address | None:
    """Return the address a URL's host names without DNS, or None for a DNS name.

    Reads every form resolvers accept (``inet_aton``): ``[::1]``, ``127.0.0.1``, ``127.1``,
    ``2130706433``, ``0x7f.1``, ``0177.0.0.1``; and ``localhost`` and its subdomains, which
    always mean loopback (RFC 6761). Zone ids (``fe80::1%eth0``) are dropped.
    """
    text = host.strip().lower()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    text = text.split("%", 1)[0]
    if text in _LOCALHOST or text.endswith((".localhost", ".localhost.")):
        return ipaddress.IPv4Address("127.0.0.1")
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        pass
    return _inet_aton(text)


def _inet_aton(text: str) -> ipaddress.IPv4Address | None:
    parts = text.split(".")
    if parts and parts[-1] == "" and len(parts) > 1:
        parts.pop()  # a trailing dot, as in "127.0.0.1."
    if not 1 <= len(parts) <= 4:
        return None
    numbers: list[int] = []
    for part in parts:
        try:
            if part[:2] in ("0x", "0X"):
                numbers.append(int(part[2:], 16))
            elif len(part) > 1 and part.startswith("0"):
                numbers.append(int(part, 8))
            else:
                numbers.append(int(part, 10) if part.isdigit() else -1)
        except ValueError:
            return None
    if any(n < 0 for n in numbers):
        return None
    # The last part fills the remaining bytes: a.b.c.d, a.b.cd, a.bcd, abcd.
    *head, last = numbers
    if any(n > 255 for n in head) or last >= 1 << (8 * (4 - len(head))):
        return None
    value = last
    for i, n in enumerate(head):
        value |= n << (8 * (3 - i))
    return ipaddress.IPv4Address(value)
