"""Who is really asking, when a reverse proxy may stand in between.

`X-Forwarded-For` and `X-Forwarded-Proto` are written by whoever sends the request, so they
are believed only from a proxy the operator named (`[console] trusted_proxies`): otherwise
any client, even one on the same machine, could pick a new address for every guess and never
meet the per-address sign-in limit. uvicorn's own handling trusts 127.0.0.1 by default, so the
server turns it off (`campaigner.server.serve`) and asks here instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from ipaddress import IPv4Network, IPv6Network, ip_address, ip_network

Network = IPv4Network | IPv6Network


def networks(entries: Sequence[str]) -> list[Network]:
    """Addresses or CIDR networks; ValueError names the first that is neither."""
    return [ip_network(entry.strip(), strict=False) for entry in entries]


def trusted(address: str, proxies: Sequence[Network]) -> bool:
    try:
        parsed = ip_address(address)
    except ValueError:
        return False
    return any(parsed in network for network in proxies)


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
