"""Token budgets per minute (per user, per live session), shared by every instance through Redis or kept in
memory when embedded. Fixed one-minute windows: a turn may start while the window still has room; what the
turn used is added when it ends (the exact count comes with the answer's usage)."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Protocol

from redis.asyncio import Redis

WINDOW = 60


class TokenBudget(Protocol):
    async def wait_needed(self, limits: Sequence[tuple[str, int]]) -> float | None:
        """Seconds until every (key, limit) has room again, or None when all have room now. Limit 0: none."""

    async def spend(self, keys: Sequence[str], tokens: int) -> None: ...

    async def close(self) -> None: ...


def _window(now: float) -> tuple[int, float]:
    current = int(now // WINDOW)
    return current, max(1.0, math.ceil((current + 1) * WINDOW - now))


class MemoryTokenBudget:
    def __init__(self) -> None:
        self._used: dict[tuple[str, int], int] = {}

    async def wait_needed(self, limits: Sequence[tuple[str, int]]) -> float | None:
        window, left = _window(time.time())
        over = any(limit > 0 and self._used.get((key, window), 0) >= limit for key, limit in limits)
        return left if over else None

    async def spend(self, keys: Sequence[str], tokens: int) -> None:
        window, _ = _window(time.time())
        if len(self._used) > 50_000:
            self._used = {k: v for k, v in self._used.items() if k[1] >= window}
        for key in keys:
            self._used[(key, window)] = self._used.get((key, window), 0) + tokens

    async def close(self) -> None:
        return None


class RedisTokenBudget:
    def __init__(self, url: str, prefix: str = "cm:ai:tokens:") -> None:
        self._redis: Redis = Redis.from_url(url, decode_responses=True, socket_connect_timeout=2, socket_timeout=5)
        self._p = prefix

    async def wait_needed(self, limits: Sequence[tuple[str, int]]) -> float | None:
        checked = [(key, limit) for key, limit in limits if limit > 0]
        if not checked:
            return None
        window, left = _window(time.time())
        values = await self._redis.mget([f"{self._p}{key}:{window}" for key, _ in checked])
        over = any(int(v or 0) >= limit for v, (_, limit) in zip(values, checked, strict=True))
        return left if over else None

    async def spend(self, keys: Sequence[str], tokens: int) -> None:
        if tokens <= 0 or not keys:
            return
        window, _ = _window(time.time())
        async with self._redis.pipeline(transaction=False) as pipe:
            for key in keys:
                name = f"{self._p}{key}:{window}"
                pipe.incrby(name, tokens)
                pipe.expire(name, WINDOW * 2)
            await pipe.execute()

    async def close(self) -> None:
        await self._redis.aclose()


def create_token_budget(url: str) -> TokenBudget:
    if url.startswith(("redis://", "rediss://", "unix://")):
        return RedisTokenBudget(url)
    return MemoryTokenBudget()
