"""Forwarded headers are believed only from the proxies the operator named."""

from __future__ import annotations

import pytest

from campaigner.config import ConsoleSettings
from campaigner.server.forwarded import (
    Network,
    client_address,
    is_https,
    limit_key,
    network_key,
    networks,
)

LOCAL = networks(["127.0.0.1", "10.0.0.0/8"])


@pytest.mark.parametrize(
    ("peer", "forwarded_for", "proxies", "address"),
    [
        # no proxy named: the header is the client's own words
        ("127.0.0.1", "203.0.113.9", [], "127.0.0.1"),
        ("198.51.100.4", "203.0.113.9", LOCAL, "198.51.100.4"),
        # a named proxy: the address it saw, not what the client put before it
        ("127.0.0.1", "203.0.113.9", LOCAL, "203.0.113.9"),
        ("127.0.0.1", "1.2.3.4, 203.0.113.9", LOCAL, "203.0.113.9"),
        ("127.0.0.1", "1.2.3.4, 203.0.113.9, 10.1.2.3", LOCAL, "203.0.113.9"),
        ("127.0.0.1", "", LOCAL, "127.0.0.1"),
        ("127.0.0.1", "10.0.0.5", LOCAL, "10.0.0.5"),  # only proxies: the first of them
        ("::1", "203.0.113.9", networks(["::1"]), "203.0.113.9"),
        ("testclient", "203.0.113.9", LOCAL, "testclient"),  # not an address at all
    ],
)
def test_the_client_address(
    peer: str, forwarded_for: str, proxies: list[Network], address: str
) -> None:
    assert client_address(peer, forwarded_for, proxies) == address


def test_https_is_believed_from_a_named_proxy_only() -> None:
    assert is_https("https", "198.51.100.4", "", [])
    assert not is_https("http", "127.0.0.1", "https", [])
    assert is_https("http", "127.0.0.1", "https, http", LOCAL)
    assert not is_https("http", "198.51.100.4", "https", LOCAL)


def test_trusted_proxies_default_to_none_and_must_be_addresses() -> None:
    assert ConsoleSettings().trusted_proxies == []
    assert ConsoleSettings(trusted_proxies=["127.0.0.1", "10.0.0.0/8", "::1"]).trusted_proxies
    with pytest.raises(ValueError, match="localhost"):
        ConsoleSettings(trusted_proxies=["localhost"])


@pytest.mark.parametrize(
    ("peer", "forwarded_for", "proxies", "address"),
    [
        # A dual-stack listener reports an IPv4 peer IPv4-mapped (`::ffff:127.0.0.1`): the
        # same proxy as 127.0.0.1. Regression: its X-Forwarded-For was ignored, and every
        # browser behind it shared the proxy's sign-in limit.
        ("::ffff:127.0.0.1", "203.0.113.9", LOCAL, "203.0.113.9"),
        ("::FFFF:10.1.2.3", "203.0.113.9", LOCAL, "203.0.113.9"),
        ("::ffff:127.0.0.1", "1.2.3.4, ::ffff:10.0.0.7", LOCAL, "1.2.3.4"),  # a mapped hop
        ("127.0.0.1", "203.0.113.9", networks(["::ffff:127.0.0.1"]), "203.0.113.9"),
        ("10.9.8.7", "203.0.113.9", networks(["::ffff:10.0.0.0/104"]), "203.0.113.9"),
        ("::ffff:198.51.100.4", "203.0.113.9", LOCAL, "::ffff:198.51.100.4"),  # no proxy
    ],
)
def test_an_ipv4_mapped_address_is_the_ipv4_address(
    peer: str, forwarded_for: str, proxies: list[Network], address: str
) -> None:
    assert client_address(peer, forwarded_for, proxies) == address
    assert is_https("http", peer, "https", proxies) == (address != peer)


@pytest.mark.parametrize(
    ("address", "key"),
    [
        ("203.0.113.9", "203.0.113.9"),
        ("::ffff:203.0.113.9", "203.0.113.9"),  # IPv4-mapped: the IPv4 address it is
        ("2001:db8:1:2:aaaa:bbbb:cccc:dddd", "2001:db8:1:2::/64"),
        ("2001:db8:1:2::1", "2001:db8:1:2::/64"),
        ("2001:db8:1:3::1", "2001:db8:1:3::/64"),
        ("::1", "::/64"),
        ("fe80::1%eth0", "fe80::/64"),
        ("testclient", "testclient"),  # not an address at all: as it is
    ],
)
def test_the_sign_in_limit_counts_an_ipv6_client_by_its_64(address: str, key: str) -> None:
    assert limit_key(address) == key


@pytest.mark.parametrize(
    ("address", "key"),
    [
        # Azure Application Gateway writes X-Forwarded-For as "a comma-separated list of
        # IP:Port" (azure.microsoft.com/en-us/blog/rewrite-http-headers-with-azure-
        # application-gateway/); RFC 7239 brackets IPv6 with a port. Kept whole, the key
        # was new with each source port: the limit never met.
        ("203.0.113.9:51234", "203.0.113.9"),
        ("[2001:db8:1:2::7]:51234", "2001:db8:1:2::/64"),
        ("[2001:db8:1:2::7]", "2001:db8:1:2::/64"),
        ("[::ffff:203.0.113.9]:443", "203.0.113.9"),
        # 6to4 (RFC 3056): a whole /48 is made from one IPv4 address, 2^16 /64s.
        ("2002:cb00:7109::1", "203.0.113.9"),
        ("2002:cb00:7109:ffff::1", "203.0.113.9"),
        # Teredo (RFC 4380): the /64 is the relay's, shared by all its clients; the client
        # is its public IPv4 address, stored inverted in the last 32 bits.
        ("2001:0:4136:e378:8000:63bf:34ff:8ef6", "203.0.113.9"),
    ],
)
def test_the_sign_in_limit_counts_a_client_not_its_port_or_tunnel(address: str, key: str) -> None:
    assert limit_key(address) == key


@pytest.mark.parametrize(
    ("address", "key"),
    [
        ("2001:db8:1:2::1", "2001:db8:1::/48"),
        ("2001:db8:1:ffff:aaaa::1", "2001:db8:1::/48"),  # another /64 of the same /48
        ("[2001:db8:2:2::1]:443", "2001:db8:2::/48"),
        ("::1", "::/48"),
        # counted by their IPv4 address: in its /24. Regression: they had no wider limit,
        # so a /24's holder had 256 per-address limits.
        ("203.0.113.9", "203.0.113.0/24"),
        ("203.0.113.255:443", "203.0.113.0/24"),
        ("203.0.114.1", "203.0.114.0/24"),
        ("::ffff:203.0.113.9", "203.0.113.0/24"),
        ("2002:cb00:7109::1", "203.0.113.0/24"),  # 6to4: the /48 is the IPv4 address's
        ("2001:0:4136:e378:8000:63bf:34ff:8ef6", "203.0.113.0/24"),  # Teredo
        ("testclient", None),
    ],
)
def test_the_wider_sign_in_limit_counts_an_ipv6_client_by_its_48_and_ipv4_by_its_24(
    address: str, key: str | None
) -> None:
    assert network_key(address) == key


def test_a_proxy_hop_with_a_port_is_still_a_proxy() -> None:
    """A hop written "IP:port" did not parse, so a trusted proxy's own entry was taken for
    the client's."""
    assert client_address("10.0.0.1", "203.0.113.9:1000, 10.0.0.2:2000", LOCAL) == (
        "203.0.113.9:1000"
    )


@pytest.mark.parametrize(
    "address",
    ["64:ff9b::203.0.113.9", "64:FF9B:0:0:0:0:CB00:7109", "[64:ff9b::cb00:7109]:443"],
)
def test_a_nat64_address_is_counted_as_the_ipv4_client_it_carries(address: str) -> None:
    """Regression: behind a NAT64/SIIT translator (RFC 6052's well-known prefix) every IPv4
    client arrives in 64:ff9b::/96, so all of them were one /64 and one /48: 20 failures
    from any of them refused every IPv4 client of the console."""
    assert limit_key(address) == "203.0.113.9"
    assert limit_key("64:ff9b::198.51.100.4") == "198.51.100.4"  # a neighbour: its own limit
    assert network_key(address) == "203.0.113.0/24"  # as a plain IPv4 client is


@pytest.mark.parametrize(
    "address", ["64:ff9b:1::203.0.113.9", "64:FF9B:1:0:0:0:CB00:7109", "[64:ff9b:1::cb00:7109]:443"]
)
def test_a_local_use_nat64_address_is_counted_as_the_ipv4_client_it_carries(address: str) -> None:
    """Regression: a translator using the local-use prefix's /96 (RFC 8215, 64:ff9b:1::/96)
    put every IPv4 client in one /64 and /48, as the well-known prefix did: 20 failures from
    any of them refused them all."""
    assert limit_key(address) == "203.0.113.9"
    assert limit_key("64:ff9b:1::198.51.100.4") == "198.51.100.4"  # a neighbour: its own limit
    assert network_key(address) == "203.0.113.0/24"


@pytest.mark.parametrize(
    ("address", "key", "network"),
    [
        # a /96 elsewhere in 64:ff9b:1::/48
        ("64:ff9b:1:abcd::cb00:7109", "64:ff9b:1:abcd::/64", "64:ff9b:1::/48"),
        # 203.0.113.9 behind the /64 prefix 64:ff9b:1::/64 (RFC 6052 2.2: bits 72-103)
        ("64:ff9b:1:0:cb:71:900:0", "64:ff9b:1::/64", "64:ff9b:1::/48"),
    ],
)
def test_other_local_use_nat64_prefixes_count_as_ipv6(address: str, key: str, network: str) -> None:
    """Where in 64:ff9b:1::/48 the IPv4 address sits is the translator's configuration, not
    seen in the address: decoded by a guess, unrelated clients would share a limit."""
    assert limit_key(address) == key
    assert network_key(address) == network
