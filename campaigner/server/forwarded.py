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
no limit. `limit_key` names the client a limit counts: an IPv6 address by its /64, but a
tunnelled one by the IPv4 address it is made from (6to4 gives one IPv4 address a /48, 2^16
/64s; Teredo puts every client of a relay in the relay's /64).

A /64 per client still leaves a holder of a larger block many clients: a site is commonly
given a /48 (RFC 6177), 65,536 /64s, so 65,536 limits; and a holder of an IPv4 /24 has 256
addresses, 256 limits. `network_key` names the block a wider limit counts a client in: an
IPv6 client's /48, and the /24 of an IPv4 address, however it came (a tunnelled or NAT64 one
is counted as its IPv4 address, so in that address's /24).

A proxy may write a hop with its port (Azure Application Gateway writes "IP:port"; RFC 7239
brackets IPv6: "[2001:db8::1]:443"): the address is the hop without it, or each new source
port would be a new client.
"""

from __future__ import annotations

from collections.abc import Sequence
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network

Network = IPv4Network | IPv6Network
_MAPPED = IPv6Network("::ffff:0:0/96")
# NAT64 prefixes an IPv4 host is seen behind, the IPv4 address in their last 32 bits: the
# well-known prefix (RFC 6052) and the first /96 of the local-use 64:ff9b:1::/48 (RFC 8215).
# The rest of 64:ff9b:1::/48 is not decoded: a translator may use any /96 in it, or a /48,
# /56 or /64 prefix, which puts the IPv4 address in other bits; which one is the operator's
# configuration, not seen in the address, and a wrong guess would merge unrelated clients.
# Those addresses count as native IPv6, by /64 and /48: a translator's IPv4 clients then
# share its limits. 64:ff9b:1::/96 is unambiguous: read as a /48, /56 or /64 prefix's
# addresses, its addresses carry an IPv4 address in 0.0.0.0/8, no client's.
_NAT64 = (IPv6Network("64:ff9b::/96"), IPv6Network("64:ff9b:1::/96"))


def networks(entries: Sequence[str]) -> list[Network]:
    """Addresses or CIDR networks; ValueError names the first that is neither."""
    return [_plain_network(ip_network(entry.strip(), strict=False)) for entry in entries]


def trusted(address: str, proxies: Sequence[Network]) -> bool:
    parsed = _address(address)
    if parsed is None:
        return False
    plain = _plain(parsed)
    return any(plain in network for network in proxies)


def _address(hop: str) -> IPv4Address | IPv6Address | None:
    """The address in a hop, with or without a port ("IP:port", "[IPv6]:port", "[IPv6]")."""
    if hop.startswith("["):
        hop = hop[1:].partition("]")[0]
    elif hop.count(":") == 1:
        hop = hop.partition(":")[0]
    try:
        return ip_address(hop)
    except ValueError:
        return None


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


def _client(address: IPv4Address | IPv6Address) -> IPv4Address | IPv6Address:
    """The address a limit counts: IPv4-mapped, NAT64 (`_NAT64`), 6to4 and Teredo addresses
    as the IPv4 address they carry. A server reached through a NAT64/SIIT translator sees
    every IPv4 client in its prefix: counted by that /64 and /48, one client's failures would
    refuse every IPv4 client. Not for trusting proxies: the prefix is not a proxy's."""
    plain = _plain(address)
    if isinstance(plain, IPv4Address):
        return plain
    if any(plain in prefix for prefix in _NAT64):
        return IPv4Address(int(plain) & 0xFFFFFFFF)
    if plain.sixtofour is not None:
        return plain.sixtofour
    if plain.teredo is not None:
        return plain.teredo[1]  # (relay, client)
    return plain


def limit_key(address: str) -> str:
    """What a per-client limit counts `address` as: an IPv4 address (IPv4-mapped, NAT64,
    6to4 or Teredo too) as itself, an IPv6 address as its /64, anything else as it is."""
    parsed = _address(address)
    if parsed is None:
        return address
    parsed = _client(parsed)
    if isinstance(parsed, IPv4Address):
        return str(parsed)
    return str(IPv6Network((int(parsed) >> 64 << 64, 64)))


def network_key(address: str) -> str | None:
    """The wider block a second, larger limit counts `address` in: the /24 of what
    `limit_key` counts as an IPv4 address, a native IPv6 address's /48; None for what is no
    address."""
    parsed = _address(address)
    if parsed is None:
        return None
    parsed = _client(parsed)
    if isinstance(parsed, IPv4Address):
        return str(IPv4Network((int(parsed) >> 8 << 8, 24)))
    return str(IPv6Network((int(parsed) >> 80 << 80, 48)))


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
