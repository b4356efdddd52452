"""Fixed-window rate limits in a store shared by every instance (Redis), or in memory when embedded.

While Redis does not answer, the Redis limiter counts in this process instead: the limits then hold per
instance (never unlimited, never an error), and the shared counts take over again once Redis answers."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from typing import Protocol

from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ClusterDownError, SlotNotCoveredError, TryAgainError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from channels.redis_client import RedisClient, connect, is_cluster, is_redis

log = logging.getLogger("conversme.ratelimit")

# Redis away, or a Redis Cluster failing over (no master for the key's slot yet): count in this process meanwhile.
REDIS_AWAY = (RedisConnectionError, RedisTimeoutError, ClusterDownError, TryAgainError, SlotNotCoveredError)


class RateLimiter(Protocol):
    async def hit(self, key: str, limit: int, window: int) -> float | None:
        """Count one attempt; return seconds to wait when `key` is over `limit` per `window`, else None."""

    async def reset(self, key: str) -> None: ...

    async def close(self) -> None: ...


class MemoryRateLimiter:
    def __init__(self) -> None:
        self._windows: dict[str, tuple[float, int]] = {}

    async def hit(self, key: str, limit: int, window: int) -> float | None:
        now = time.monotonic()
        start, count = self._windows.get(key, (now, 0))
        if now - start >= window:
            start, count = now, 0
        count += 1
        self._windows[key] = (start, count)
        if len(self._windows) > 100_000:
            self._windows = {k: v for k, v in self._windows.items() if now - v[0] < window}
        return None if count <= limit else max(1.0, start + window - now)

    async def reset(self, key: str) -> None:
        self._windows.pop(key, None)

    async def close(self) -> None:
        return None


class RedisRateLimiter:
    """Counts in Redis; falls back to a `MemoryRateLimiter` of its own while Redis is away. After a failure Redis
    is left alone for `probe_every` seconds (a stalled Redis would otherwise cost every login a timeout), then
    the next attempt tries it again."""

    def __init__(self, url: str, prefix: str = "cm:rl:", *, probe_every: float = 5.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        # Short timeouts and one retry (a pooled connection Redis closed on restart): a login waits little.
        self._redis: RedisClient = connect(url, socket_connect_timeout=1, socket_timeout=1,
                                           retry=Retry(NoBackoff(), 1))
        self._prefix = prefix
        self._cluster = is_cluster(url)  # each key is one slot: the MULTI below stays on one node
        self._fallback = MemoryRateLimiter()
        self._probe_every = probe_every
        self._clock = clock
        self._down_since: float | None = None
        self._next_probe = 0.0

    @property
    def shared(self) -> bool:
        """Whether the last attempt counted in Redis (False: per instance, in memory)."""
        return self._down_since is None

    def _skip_redis(self) -> bool:
        return self._down_since is not None and self._clock() < self._next_probe

    def _failed(self, exc: Exception) -> None:
        now = self._clock()
        self._next_probe = now + self._probe_every
        if self._down_since is None:  # once per outage, not per request
            self._down_since = now
            log.warning("Redis is unreachable (%s: %s); login rate limits count per instance until it answers",
                        type(exc).__name__, exc)

    def _answered(self) -> None:
        if self._down_since is not None:
            log.info("Redis answers again after %.0f s; login rate limits are shared again",
                        self._clock() - self._down_since)
            self._down_since = None

    async def hit(self, key: str, limit: int, window: int) -> float | None:
        if self._skip_redis():
            return await self._fallback.hit(key, limit, window)
        name = self._name(key)
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.incr(name)
                pipe.expire(name, window, nx=True)
                pipe.ttl(name)
                count, _, ttl = await pipe.execute()
        except REDIS_AWAY as exc:
            self._failed(exc)
            return await self._fallback.hit(key, limit, window)
        self._answered()
        return None if int(count) <= limit else float(max(1, math.ceil(ttl)))

    async def reset(self, key: str) -> None:
        await self._fallback.reset(key)
        if self._skip_redis():
            return
        try:
            await self._redis.delete(self._name(key))
        except REDIS_AWAY as exc:
            self._failed(exc)
            return
        self._answered()

    def _name(self, key: str) -> str:
        # On a cluster the whole key is the hash tag: every limit is one key, so any slot will do.
        return f"{self._prefix}{{{key}}}" if self._cluster else self._prefix + key

    async def close(self) -> None:
        await self._redis.aclose()


def rate_limiter_for(url: str, prefix: str = "cm:") -> RateLimiter:
    if is_redis(url):
        return RedisRateLimiter(url, prefix + "rl:")
    return MemoryRateLimiter()
