"""Where the server may send requests (domain/network.py): the address classifier and the
reading of hosts written as addresses, with hypothesis over the whole address spaces."""

from __future__ import annotations

import ipaddress
import socket

import pytest
from hypothesis import given
from hypothesis import strategies as st

from clicktrail.domain.network import (
    embedded_ipv4,
    forbidden_reason,
    literal_address,
    parse_networks,
)

FORBIDDEN_V4 = [
    "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16",
    "172.16.0.0/12", "192.0.0.0/24", "192.168.0.0/16", "198.18.0.0/15", "224.0.0.0/4",
    "240.0.0.0/4",
]  # fmt: skip
FORBIDDEN_V6 = ["::1/128", "::/128", "fc00::/7", "fe80::/10", "ff00::/8", "64:ff9b:1::/48"]

v4 = st.integers(0, 2**32 - 1).map(ipaddress.IPv4Address)
v6 = st.integers(0, 2**128 - 1).map(ipaddress.IPv6Address)


def inside(cidr: str) -> st.SearchStrategy[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    net = ipaddress.ip_network(cidr)
    return st.integers(0, net.num_addresses - 1).map(lambda i: net[i])


@given(st.sampled_from(FORBIDDEN_V4 + FORBIDDEN_V6).flatmap(inside))
def test_every_address_of_a_forbidden_range_is_refused(addr: ipaddress.IPv4Address) -> None:
    assert forbidden_reason(addr) is not None


@given(st.sampled_from(FORBIDDEN_V4).flatmap(inside))
def test_ipv6_forms_of_a_forbidden_ipv4_address_are_refused(addr: ipaddress.IPv4Address) -> None:
    n = int(addr)
    forms = [
        ipaddress.IPv6Address((0xFFFF << 32) | n),  # ::ffff:a.b.c.d
        ipaddress.IPv6Address((0x64FF9B << 96) | n),  # 64:ff9b::a.b.c.d (NAT64)
        ipaddress.IPv6Address((0x2002 << 112) | (n << 80)),  # 2002:AABB:CCDD:: (6to4)
    ]
    for form in forms:
        assert embedded_ipv4(form) == addr
        assert forbidden_reason(form) is not None, form


@given(st.one_of(v4, v6))
def test_whatever_is_allowed_is_global_for_python_too(addr: ipaddress.IPv4Address) -> None:
    """The classifier is at least as strict as the standard library's `is_global`."""
    if forbidden_reason(addr) is None:
        assert addr.is_global or embedded_ipv4(addr) is not None, addr


@pytest.mark.parametrize(
    ("address", "why"),
    [("127.0.0.1", "loopback"), ("169.254.169.254", "link-local"), ("fd00:ec2::254", "private"),
     ("100.64.1.1", "CGNAT"), ("10.0.0.1", "private"), ("::ffff:10.0.0.1", "private"),
     ("0.0.0.0", "unspecified"), ("::", "unspecified"), ("224.0.0.251", "multicast")],
)  # fmt: skip
def test_the_reason_names_the_kind_of_address(address: str, why: str) -> None:
    reason = forbidden_reason(ipaddress.ip_address(address))
    assert reason is not None and why in reason


@pytest.mark.parametrize("address", ["93.184.216.34", "8.8.8.8", "2606:4700::1111", "1.1.1.1"])
def test_public_addresses_are_allowed(address: str) -> None:
    assert forbidden_reason(ipaddress.ip_address(address)) is None


def test_the_operators_networks_are_allowed_in_every_form() -> None:
    allowed = parse_networks("127.0.0.0/8, 10.1.2.0/24", "outbound_allow_networks")
    for text in ["127.0.0.1", "::ffff:127.0.0.1", "10.1.2.3", "64:ff9b::a01:203"]:
        assert forbidden_reason(ipaddress.ip_address(text), allowed) is None, text
    for text in ["10.1.3.1", "::1", "169.254.169.254"]:
        assert forbidden_reason(ipaddress.ip_address(text), allowed) is not None, text


@given(v4)
def test_every_written_form_of_an_ipv4_address_is_read(addr: ipaddress.IPv4Address) -> None:
    n = int(addr)
    a, b, c, d = addr.packed
    for text in [
        str(addr), str(n), hex(n), f"0{n:o}", f"{a}.{(b << 16) | (c << 8) | d}",
        f"{a}.{b}.{(c << 8) | d}", f"0{a:o}.0x{b:x}.{c}.0{d:o}", f"[::ffff:{addr}]",
    ]:  # fmt: skip
        found = literal_address(text)
        assert found is not None, text
        assert (embedded_ipv4(found) or found) == addr, text


@given(st.text(alphabet="0123456789abcdefxX.", max_size=16))
def test_hosts_the_c_library_reads_as_addresses_are_read_alike(text: str) -> None:
    try:
        expected = ipaddress.IPv4Address(socket.inet_aton(text))
    except OSError:
        return
    assert literal_address(text) == expected


@pytest.mark.parametrize(
    "host", ["localhost", "LOCALHOST", "localhost.", "api.localhost", "[::1]", "127.1", "0"]
)
def test_loopback_names_and_short_forms_are_addresses(host: str) -> None:
    found = literal_address(host)
    assert found is not None and forbidden_reason(found) is not None


@pytest.mark.parametrize("host", ["api.example.com", "localhost.example.com", "1.2.3.4.5", "0x"])
def test_dns_names_are_not_addresses(host: str) -> None:
    assert literal_address(host) is None
