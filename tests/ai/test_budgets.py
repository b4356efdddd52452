"""Token budgets over a sliding 60 s window, in memory and on a real Redis, driven by a fake clock: room while the
last 60 s spent less than the limit, spends leaving exactly 60 s later, waits until enough has left, many keys."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from redis.asyncio import Redis

from ai.budgets import MemoryTokenBudget, RedisTokenBudget, TokenBudget, create_token_budget
from tests.conftest import REDIS_URL, redis_prefix

T0 = 1_700_000_000.0  # seconds since the epoch, like time.time()


@dataclass
class FakeClock:
    now: float = T0

    def __call__(self) -> float:
        return self.now

    def at(self, offset: float) -> None:
        self.now = T0 + offset


@dataclass
class Budget:
    store: TokenBudget
    clock: FakeClock


@pytest.fixture(params=["memory", "redis"])
async def budget(request: pytest.FixtureRequest) -> AsyncIterator[Budget]:
    clock = FakeClock()
    if request.param == "memory":
        yield Budget(MemoryTokenBudget(clock=clock), clock)
        return
    prefix = redis_prefix()
    store = RedisTokenBudget(REDIS_URL, prefix, clock=clock)
    try:
        yield Budget(store, clock)
    finally:
        await store.close()
        client = Redis.from_url(REDIS_URL)
        keys = [key async for key in client.scan_iter(match=f"{prefix}*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()


async def test_room_while_under_the_limit(budget: Budget) -> None:
    b = budget.store
    assert await b.wait_needed([("user:a", 100), ("session:s", 1000)]) is None
    assert await b.wait_needed([]) is None
    await b.spend(["user:a", "session:s"], 99)
    assert await b.wait_needed([("user:a", 100), ("session:s", 1000)]) is None  # 99 < 100: one more turn
    budget.clock.at(10)
    await b.spend(["user:a"], 1)
    assert await b.wait_needed([("user:a", 100)]) == pytest.approx(50)  # 100: until the 99 leave, at 60 s
    assert await b.wait_needed([("user:a", 101)]) is None
    assert await b.wait_needed([("user:a", 0)]) is None  # 0: no budget
    assert await b.wait_needed([("session:s", 1000), ("user:b", 100)]) is None  # other keys are their own
    await b.spend(["user:a"], 0)  # nothing spent, nothing recorded
    await b.spend([], 500)
    assert await b.wait_needed([("user:a", 101)]) is None


async def test_spends_leave_the_window_sixty_seconds_later(budget: Budget) -> None:
    b, clock = budget.store, budget.clock
    await b.spend(["user:a"], 60)
    clock.at(30)
    await b.spend(["user:a"], 60)
    assert await b.wait_needed([("user:a", 100)]) == pytest.approx(30)
    clock.at(59.5)
    assert await b.wait_needed([("user:a", 100)]) == pytest.approx(0.5)  # the real wait, not "a minute"
    clock.at(60)  # the first spend is 60 s old: out
    assert await b.wait_needed([("user:a", 100)]) is None
    await b.spend(["user:a"], 50)  # 60 (at 30 s) + 50 (at 60 s)
    assert await b.wait_needed([("user:a", 100)]) == pytest.approx(30)
    clock.at(90)
    assert await b.wait_needed([("user:a", 100)]) is None
    clock.at(119.9)
    assert await b.wait_needed([("user:a", 50)]) == pytest.approx(0.1)
    clock.at(120)
    assert await b.wait_needed([("user:a", 1)]) is None  # everything left: the window is empty again


async def test_the_wait_lasts_until_enough_has_left_not_just_the_oldest(budget: Budget) -> None:
    b, clock = budget.store, budget.clock
    for second in (0, 10, 20):
        clock.at(second)
        await b.spend(["user:a"], 50)
    # 150 spent; under 60 needs the spends at 0 s and 10 s gone: at 70 s.
    assert await b.wait_needed([("user:a", 60)]) == pytest.approx(50)
    assert await b.wait_needed([("user:a", 120)]) == pytest.approx(40)  # only the first must go
    clock.at(65)
    assert await b.wait_needed([("user:a", 60)]) == pytest.approx(5)
    assert await b.wait_needed([("user:a", 120)]) is None


async def test_equal_spends_at_the_same_moment_all_count(budget: Budget) -> None:
    b = budget.store
    await b.spend(["user:a"], 40)
    await b.spend(["user:a"], 40)
    await b.spend(["user:a"], 40)
    assert await b.wait_needed([("user:a", 100)]) == pytest.approx(60)


async def test_several_keys_wait_for_the_last_one_to_have_room(budget: Budget) -> None:
    b, clock = budget.store, budget.clock
    await b.spend(["user:a", "session:s"], 100)
    clock.at(15)
    await b.spend(["session:s"], 100)
    await b.spend(["user:b"], 10)
    clock.at(20)
    limits = [("user:a", 100), ("session:s", 150), ("user:b", 100)]
    # Both over-limit keys have room once the spends at 0 s leave, at 60 s (user:b was never over).
    assert await b.wait_needed(limits) == pytest.approx(40)
    # With a limit of 100, session:s needs its spend at 15 s gone too: the later key sets the wait.
    assert await b.wait_needed([("session:s", 100), ("user:a", 100)]) == pytest.approx(55)
    assert await b.wait_needed([("user:b", 100)]) is None
    clock.at(60)
    assert await b.wait_needed(limits) is None
    assert await b.wait_needed([("session:s", 100)]) == pytest.approx(15)


async def test_redis_keeps_one_sorted_set_per_key_that_expires_with_the_window() -> None:
    clock, prefix = FakeClock(), redis_prefix()
    store = RedisTokenBudget(REDIS_URL, prefix, clock=clock)
    client = Redis.from_url(REDIS_URL, decode_responses=True)
    try:
        await store.spend(["user:a"], 7)
        clock.at(61)
        await store.spend(["user:a"], 8)  # the first spend left the window: trimmed
        assert await client.type(f"{prefix}user:a") == "zset"
        entries: list[Any] = await client.zrange(f"{prefix}user:a", 0, -1, withscores=True)
        [(member, score)] = entries
        assert member.endswith(":8") and score == (T0 + 61) * 1000
        assert 0 < await client.pttl(f"{prefix}user:a") <= 60_000
    finally:
        await store.close()
        await client.delete(f"{prefix}user:a")
        await client.aclose()


async def test_the_url_picks_the_backend_and_the_clock_goes_with_it() -> None:
    clock = FakeClock()
    memory = create_token_budget("memory://", clock=clock)
    assert isinstance(memory, MemoryTokenBudget)
    await memory.spend(["k"], 10)
    clock.at(59)
    assert await memory.wait_needed([("k", 10)]) == pytest.approx(1)
    redis = create_token_budget(REDIS_URL)
    assert isinstance(redis, RedisTokenBudget)
    await redis.close()
