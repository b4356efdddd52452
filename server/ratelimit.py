"""Fixed-window rate limits in a store shared by every instance (Redis), or in memory when embedded."""

from __future__ import annotations

import math
import time
from typing import Protocol

from redis.asyncio import Redis


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
    def __init__(self, url: str, prefix: str = "cm:rl:") -> None:
        self._redis: Redis = Redis.from_url(url, socket_connect_timeout=2, socket_timeout=5)
        self._prefix = prefix

    async def hit(self, key: str, limit: int, window: int) -> float | None:
        name = self._prefix + key
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.incr(name)
            pipe.expire(name, window, nx=True)
            pipe.ttl(name)
            count, _, ttl = await pipe.execute()
        return None if int(count) <= limit else float(max(1, math.ceil(ttl)))

    async def reset(self, key: str) -> None:
        await self._redis.delete(self._prefix + key)

    async def close(self) -> None:
        await self._redis.aclose()


def rate_limiter_for(url: str, prefix: str = "cm:") -> RateLimiter:
    if url.startswith(("redis://", "rediss://", "unix://")):
        return RedisRateLimiter(url, prefix + "rl:")
    return MemoryRateLimiter()
