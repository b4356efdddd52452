"""The caller's IP: X-Forwarded-For is believed only when the direct peer is a configured trusted proxy."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from starlette.requests import HTTPConnection


def _trusted(addr: str, proxies: Sequence[str]) -> bool:
    try:
        ip = ipaddress.ip_address(addr)
    except ValueError:
        return False
    for proxy in proxies:
        try:
            if ip in ipaddress.ip_network(proxy, strict=False):
                return True
        except ValueError:
            continue
    return False


def client_ip(conn: HTTPConnection, trusted_proxies: Sequence[str]) -> str:
    peer = conn.client.host if conn.client else "unknown"
    if not trusted_proxies or not _trusted(peer, trusted_proxies):
        return peer
    forwarded = [p.strip() for p in conn.headers.get("x-forwarded-for", "").split(",") if p.strip()]
    # Walk from the nearest hop back; the first address that is not one of our proxies is the client.
    for hop in reversed(forwarded):
        if not _trusted(hop, trusted_proxies):
            return hop
    return forwarded[0] if forwarded else peer
