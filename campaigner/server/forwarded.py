"""Who is really asking, when a reverse proxy may stand in between.

`X-Forwarded-For` and `X-Forwarded-Proto` are written by whoever sends the request, so they
are believed only from a proxy the operator named (`[console] trusted_proxies`): otherwise
any client, even one on the same machine, could pick a new address for every guess and never
meet the per-address sign-in limit. uvicorn's own handling trusts 127.0.0.1 by default, so the
server turns it off (`campaigner.server.serve`) and asks here instead.

A dual-stack listener reports an IPv4 peer IPv4-mapped (`::ffff:127.0.0.1`): addresses and
networks are compared as IPv4 then, so `127.0.0.1` names that peer too.

One IPv6 client is not one address: a host is given a whole /64 and makes up its own
addresses in it (SLAAC, RFC 4862; temporary addresses, RFC 8981), so a limit per address is
no limit. `limit_key` names the client a limit counts: an IPv6 address by its /64.
"""

from __future__ import annotations

from collections.abc import Sequence
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network

Network = IPv4Network | IPv6Network
_MAPPED = IPv6Network("::ffff:0:0/96")


def networks(entries: Sequence[str]) -> list[Network]:
    """Addresses or CIDR networks; ValueError names the first that is neither."""
    return [_plain_network(ip_network(entry.strip(), strict=False)) for entry in entries]


def trusted(address: str, proxies: Sequence[Network]) -> bool:
    try:
        parsed = ip_address(address)
    except ValueError:
        return False
    plain = _plain(parsed)
    return any(plain in network for network in proxies)


def _plain(address: IPv4Address | IPv6Address) -> IPv4Address | IPv6Address:
    """An IPv4-mapped IPv6 address as the IPv4 address it is."""
    mapped = address.ipv4_mapped if isinstance(address, IPv6Address) else None
    return mapped or address


def _plain_network(network: Network) -> Network:
    """An IPv4-mapped IPv6 network (`::ffff:10.0.0.0/104`) as the IPv4 network it is."""
    if isinstance(network, IPv6Network) and network.subnet_of(_MAPPED):
        plain = _plain(network.network_address)
        return IPv4Network(f"{plain}/{network.prefixlen - 96}")
    return network


def limit_key(address: str) -> str:
    """What a per-client limit counts `address` as: an IPv4 address (IPv4-mapped too) as
    itself, an IPv6 address as its /64, anything else as it is."""
    try:
        parsed = _plain(ip_address(address))
    except ValueError:
        return address
    if isinstance(parsed, IPv4Address):
        return str(parsed)
    return str(IPv6Network((int(parsed) >> 64 << 64, 64)))


def client_address(peer: str, forwarded_for: str, proxies: Sequence[Network]) -> str:
    """The peer's address, unless the peer is a trusted proxy: then the nearest address in
    its `X-Forwarded-For` that is not a trusted proxy too (the ones before it were written
    by the client and prove nothing)."""
    if not trusted(peer, proxies):
        return peer
    hops = [hop.strip() for hop in forwarded_for.split(",") if hop.strip()]
    for hop in reversed(hops):
        if not trusted(hop, proxies):
            return hop
    return hops[0] if hops else peer


def is_https(scheme: str, peer: str, forwarded_proto: str, proxies: Sequence[Network]) -> bool:
    """Whether the browser's connection is HTTPS: as the socket says, or as a trusted proxy
    that ended TLS says."""
    if scheme == "https":
        return True
    return trusted(peer, proxies) and forwarded_proto.split(",")[0].strip().lower() == "https"
