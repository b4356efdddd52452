"""Login rate limits in both shipped stores (memory and real Redis), the Redis limiter's fallback to memory while
Redis is away (against a private Redis), and the trusted-proxy client IP rule."""

from __future__ import annotations

import logging
import uuid
from pathlib import Path

import pytest
from starlette.requests import Request

from server.clientip import client_ip
from server.ratelimit import MemoryRateLimiter, RateLimiter, RedisRateLimiter
from tests.conftest import REDIS_URL, redis_prefix
from tests.faults.services import PrivateRedis


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


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _shared_count(rs: PrivateRedis, prefix: str, key: str) -> int | None:
    with rs.client() as c:
        value = c.get(prefix + key)
    return None if value is None else int(value)


@pytest.mark.slow
async def test_redis_limiter_counts_in_memory_while_redis_is_away_and_goes_back(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    rs = PrivateRedis(tmp_path / "redis").start()
    clock, prefix, key = _Clock(), "rl:", "login:acct:someone"
    limiter = RedisRateLimiter(rs.url, prefix, probe_every=5.0, clock=clock)
    caplog.set_level(logging.INFO, logger="conversme.ratelimit")
    try:
        assert await limiter.hit(key, 3, 60) is None
        assert _shared_count(rs, prefix, key) == 1 and limiter.shared

        rs.kill()
        # Never an error, never unlimited: this instance counts on its own (from zero) and refuses past the limit.
        assert [await limiter.hit(key, 3, 60) for _ in range(3)] == [None, None, None]
        assert not limiter.shared
        refused = await limiter.hit(key, 3, 60)
        assert refused is not None and 1 <= refused <= 60
        await limiter.reset(key)  # a successful login during the outage
        assert await limiter.hit(key, 3, 60) is None

        rs.restart(empty=True)
        # Until the next probe the limiter leaves Redis alone (a stalled Redis must not slow every login) ...
        assert await limiter.hit(key, 3, 60) is None and _shared_count(rs, prefix, key) is None
        # ... then counts there again.
        clock.now += 5.0
        assert await limiter.hit(key, 3, 60) is None
        assert _shared_count(rs, prefix, key) == 1 and limiter.shared
    finally:
        await limiter.close()
        rs.stop()
    messages = [r.getMessage() for r in caplog.records if r.name == "conversme.ratelimit"]
    assert [m.split(" (")[0].split(" after")[0] for m in messages] == ["Redis is unreachable", "Redis answers again"]


@pytest.mark.slow
async def test_redis_limiter_falls_back_when_redis_stalls(tmp_path: Path) -> None:
    rs = PrivateRedis(tmp_path / "redis").start()
    clock, prefix, key = _Clock(), "rl:", "login:ip:203.0.113.9"
    limiter = RedisRateLimiter(rs.url, prefix, clock=clock)
    try:
        assert await limiter.hit(key, 2, 60) is None
        rs.pause()  # SIGSTOP: the connection stays open, nothing answers; the socket timeout decides
        try:
            assert await limiter.hit(key, 2, 60) is None
            assert not limiter.shared
            assert await limiter.hit(key, 2, 60) is None  # memory, without waiting on Redis again
            assert await limiter.hit(key, 2, 60) is not None
        finally:
            rs.resume()
        clock.now += 5.0
        # Back on Redis. (A fresh key: Redis may still run the timed-out INCR once it wakes up — one attempt
        # counted twice, which errs on the strict side.)
        assert await limiter.hit(key + ":after", 2, 60) is None
        assert limiter.shared and _shared_count(rs, prefix, key + ":after") == 1
    finally:
        await limiter.close()
        rs.stop()
