"""Who a request comes from: the address uvicorn put in the ASGI scope, and the key rate limits count it by."""

from __future__ import annotations

import ipaddress

from starlette.requests import HTTPConnection

MAX_ADDRESS_CHARS = 45
# One IPv6 subscriber usually holds a whole /64 and can pick any address in it: counted per address, each
# request could come from a fresh one.
IPV6_PREFIX = 64


def client_address(request: HTTPConnection) -> str:
    """The client's address as uvicorn saw it, for the audit log.

    uvicorn replaces the peer's address by X-Forwarded-For only when the peer is in --forwarded-allow-ips
    (env FORWARDED_ALLOW_IPS, default 127.0.0.1): a header sent by anyone else is ignored, so it cannot be
    used to pick another address. Behind a reverse proxy that setting must name the proxy, or every citizen
    shares the proxy's address.
    """
    client = request.scope.get("client")
    host = client[0] if client else None
    return (str(host) if host else "unknown")[:MAX_ADDRESS_CHARS]


def client_key(request: HTTPConnection) -> str:
    """The address rate limits count by: an IPv4 address as is, an IPv6 address as its /64."""
    host = client_address(request)
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host  # not an address (a test client's "testclient", a Unix socket): counted as what it is
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:  # ::ffff:203.0.113.7 is the IPv4 client it wraps
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, IPV6_PREFIX), strict=False))
    return str(address)
