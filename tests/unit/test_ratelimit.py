"""Login rate limits in both shipped stores (memory and real Redis), and the trusted-proxy client IP rule."""

from __future__ import annotations

import uuid

import pytest
from starlette.requests import Request

from server.clientip import client_ip
from server.ratelimit import MemoryRateLimiter, RateLimiter, RedisRateLimiter
from tests.conftest import REDIS_URL, redis_prefix


@pytest.mark.parametrize("kind", ["memory", "redis"])
async def test_limit_counts_per_key_and_resets(kind: str) -> None:
    limiter: RateLimiter = MemoryRateLimiter() if kind == "memory" else RedisRateLimiter(REDIS_URL, redis_prefix())
    key = f"test:{uuid.uuid4().hex}"
    try:
        results = [await limiter.hit(key, 3, 60) for _ in range(5)]
        assert results[:3] == [None, None, None]
        assert all(r is not None and 1 <= r <= 60 for r in results[3:])
        assert await limiter.hit(key + ":other", 3, 60) is None
        await limiter.reset(key)
        assert await limiter.hit(key, 3, 60) is None
    finally:
        await limiter.close()


async def test_redis_limiter_is_shared_between_instances() -> None:
    prefix = redis_prefix()
    a, b = RedisRateLimiter(REDIS_URL, prefix), RedisRateLimiter(REDIS_URL, prefix)
    key = f"test:{uuid.uuid4().hex}"
    try:
        assert await a.hit(key, 2, 60) is None
        assert await b.hit(key, 2, 60) is None
        assert await a.hit(key, 2, 60) is not None
    finally:
        await a.close()
        await b.close()


def _request(peer: str, xff: str | None) -> Request:
    headers = [(b"x-forwarded-for", xff.encode())] if xff else []
    return Request({"type": "http", "client": (peer, 1234), "headers": headers, "method": "GET", "path": "/"})


def test_forwarded_for_is_ignored_without_trusted_proxies() -> None:
    assert client_ip(_request("203.0.113.9", "1.2.3.4"), ()) == "203.0.113.9"


def test_forwarded_for_is_ignored_from_an_untrusted_peer() -> None:
    assert client_ip(_request("203.0.113.9", "1.2.3.4"), ("10.0.0.0/8",)) == "203.0.113.9"


def test_forwarded_for_from_trusted_proxy_takes_nearest_untrusted_hop() -> None:
    req = _request("10.0.0.2", "6.6.6.6, 198.51.100.7, 10.0.0.5")
    assert client_ip(req, ("10.0.0.0/8",)) == "198.51.100.7"
