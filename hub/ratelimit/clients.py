"""Who the client is: the address of the connection, or, behind a proxy the hub trusts, the
address that proxy says it forwarded for.

A header naming the client is as trustworthy as whoever added it last. So the headers are
read only when the connection comes from a trusted proxy (``trusted_proxies``), and then
from the right: each hop a trusted proxy added is skipped, and the first address no trusted
proxy vouches for is the client. Whatever a client wrote into the header itself stays to
the left of that, unread.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

from starlette.datastructures import Headers
from starlette.types import Scope

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address
UNKNOWN = "unknown"


def trusted_networks(proxies: Iterable[str]) -> tuple[Network, ...]:
    """The setting's addresses and CIDRs as networks (the setting checked them already)."""
    return tuple(ipaddress.ip_network(proxy, strict=False) for proxy in proxies)


def _address(value: str) -> Address | None:
    value = value.strip().strip('"')
    if value.startswith("["):  # [2001:db8::1]:4711
        value = value[1:].split("]", 1)[0]
    elif value.count(":") == 1:  # 192.0.2.1:4711
        value = value.split(":", 1)[0]
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        return None


def _is_trusted(address: Address, trusted: Sequence[Network]) -> bool:
    return any(address in network for network in trusted)


def forwarded_hops(headers: Headers) -> list[str]:
    """The addresses the proxies say they forwarded for, nearest the client first: from
    ``Forwarded`` (RFC 7239) when present, else from ``X-Forwarded-For``."""
    forwarded = headers.getlist("forwarded")
    if forwarded:
        hops = []
        for element in ",".join(forwarded).split(","):
            for pair in element.split(";"):
                name, _, value = pair.partition("=")
                if name.strip().lower() == "for":
                    hops.append(value)
        return hops
    return ",".join(headers.getlist("x-forwarded-for")).split(",")


def client_address(scope: Scope, trusted: Sequence[Network]) -> str:
    """The client's IP address as text (``"unknown"`` when the server gives none)."""
    peer = scope.get("client")
    address = _address(peer[0]) if peer else None
    if address is None:
        return peer[0] if peer else UNKNOWN
    if not trusted or not _is_trusted(address, trusted):
        return str(address)
    for hop in reversed(forwarded_hops(Headers(scope=scope))):
        named = _address(hop)
        if named is None:
            # Garbage (or "unknown", or an obfuscated name) where an address should be: the
            # last proxy we trust is as far as we can see.
            break
        address = named
        if not _is_trusted(named, trusted):
            break
    return str(address)
