"""Token budgets (per user, per live session) over a sliding 60-second window, shared by every instance through
Redis or kept in memory when embedded. A turn may start while the last 60 s spent less than the limit; what the
turn used is added when it ends (the exact count comes with the answer's usage), so one turn can overshoot.

A sliding window rather than fixed clock minutes: "at most N tokens in any 60 s" is what users expect, and a
refusal's wait is the real time until enough spent tokens age out, not the time to the next minute mark."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from typing import Protocol

from channels.redis_client import RedisClient, connect, is_cluster, is_redis

WINDOW = 60.0
WINDOW_MS = 60_000
Clock = Callable[[], float]  # seconds since the epoch: Redis keeps the spends of every instance on one timeline


class TokenBudget(Protocol):
    async def wait_needed(self, limits: Sequence[tuple[str, int]]) -> float | None:
        """Seconds until every (key, limit) has room again — until enough of what the key spent has left the
        last WINDOW seconds that the rest is under its limit — or None when all have room now. Limit 0: none."""

    async def spend(self, keys: Sequence[str], tokens: int) -> None: ...

    async def close(self) -> None: ...


def wait_for_room(spent: Iterable[tuple[float, int]], limit: int, now: float) -> float | None:
    """The wait for one key, from its spends (time, tokens) inside the window: None when under `limit` now, else
    the seconds until the oldest spends whose leaving brings it under `limit` are WINDOW old."""
    entries = sorted(spent)
    total = sum(tokens for _, tokens in entries)
    if total < limit:
        return None
    for at, tokens in entries:
        total -= tokens
        if total < limit:
            return at + WINDOW - now
    return None  # not reached: limit > 0 and every spend is positive


def _longest(waits: Iterable[float | None]) -> float | None:
    found = [w for w in waits if w is not None]
    return max(found) if found else None


class MemoryTokenBudget:
    def __init__(self, *, clock: Clock = time.time) -> None:
        self._clock = clock
        self._spent: dict[str, list[tuple[float, int]]] = {}
        self._swept = clock()

    def _recent(self, key: str, now: float) -> list[tuple[float, int]]:
        entries = [e for e in self._spent.get(key, ()) if e[0] > now - WINDOW]
        if entries:
            self._spent[key] = entries
        else:
            self._spent.pop(key, None)
        return entries

    async def wait_needed(self, limits: Sequence[tuple[str, int]]) -> float | None:
        now = self._clock()
        return _longest(wait_for_room(self._recent(key, now), limit, now) for key, limit in limits if limit > 0)

    async def spend(self, keys: Sequence[str], tokens: int) -> None:
        if tokens <= 0:
            return
        now = self._clock()
        if now - self._swept >= WINDOW:  # drop keys that went quiet, in at most one pass a window
            self._swept = now
            for key in list(self._spent):
                self._recent(key, now)
        for key in keys:
            self._spent[key] = [*self._recent(key, now), (now, tokens)]

    async def close(self) -> None:
        return None


class RedisTokenBudget:
    """One sorted set per key (`<prefix><key>`): member `<unique id>:<tokens>`, score the spend's time in ms.
    Spending adds, trims what left the window and sets the key to expire with its newest entry; checking reads
    the window back and computes the wait here, with the same rule as the memory budget."""

    def __init__(self, url: str, prefix: str = "cm:ai:tokens:", *, clock: Clock = time.time) -> None:
        self._redis: RedisClient = connect(url, decode_responses=True, socket_connect_timeout=2, socket_timeout=5)
        self._p = prefix
        self._cluster = is_cluster(url)
        self._clock = clock

    async def wait_needed(self, limits: Sequence[tuple[str, int]]) -> float | None:
        checked = [(key, limit) for key, limit in limits if limit > 0]
        if not checked:
            return None
        now_ms = round(self._clock() * 1000)
        async with self._redis.pipeline(transaction=False) as pipe:
            for key, _ in checked:
                pipe.zrangebyscore(self._name(key), f"({now_ms - WINDOW_MS}", "+inf", withscores=True)
            windows: list[list[tuple[str, float]]] = await pipe.execute()
        now = now_ms / 1000
        return _longest(
            wait_for_room(((score / 1000, int(member.rsplit(":", 1)[1])) for member, score in entries), limit, now)
            for entries, (_, limit) in zip(windows, checked, strict=True))

    async def spend(self, keys: Sequence[str], tokens: int) -> None:
        if tokens <= 0 or not keys:
            return
        now_ms = round(self._clock() * 1000)
        member = f"{uuid.uuid4().hex}:{tokens}"  # unique, so equal spends at the same millisecond all count
        # One MULTI on one server; on a cluster the keys (a user's, a session's) live in different slots, and
        # each key's three commands still go together to its node (a spend counted without its trim is harmless).
        async with self._redis.pipeline(transaction=not self._cluster) as pipe:
            for key in keys:
                name = self._name(key)
                pipe.zadd(name, {member: now_ms})
                pipe.zremrangebyscore(name, "-inf", now_ms - WINDOW_MS)
                pipe.pexpire(name, WINDOW_MS)
            await pipe.execute()

    def _name(self, key: str) -> str:
        return f"{self._p}{{{key}}}" if self._cluster else self._p + key

    async def close(self) -> None:
        await self._redis.aclose()


def create_token_budget(url: str, prefix: str = "cm:", *, clock: Clock = time.time) -> TokenBudget:
    if is_redis(url):
        return RedisTokenBudget(url, prefix + "ai:tokens:", clock=clock)
    return MemoryTokenBudget(clock=clock)
