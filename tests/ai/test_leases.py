"""Coordination of generations across instances (memory:// and a real Redis): one lease per session, exactly
one end per stream, expired streams found, cancel signals delivered; and token budgets per minute."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest

from channels.budgets import MemoryTokenBudget, RedisTokenBudget, TokenBudget
from channels.leases import Coordination, MemoryCoordination, RedisCoordination, StreamInfo
from tests.conftest import REDIS_URL


def info(context: str, stream: str | None = None, instance: str = "i1") -> StreamInfo:
    return StreamInfo(stream or uuid.uuid4().hex, context, f"live:{context}", "user", instance)


@pytest.fixture(params=["memory", "redis"])
async def pair(request: pytest.FixtureRequest) -> AsyncIterator[tuple[Coordination, Coordination, list[str]]]:
    """Two instances' views of the same coordination, and the cancel signals each received."""
    received: list[str] = []
    if request.param == "memory":
        one = MemoryCoordination()
        await one.start(received.append)
        yield one, one, received
        await one.close()
        return
    prefix = f"test:{uuid.uuid4().hex[:8]}:"
    a, b = RedisCoordination(REDIS_URL, prefix), RedisCoordination(REDIS_URL, prefix)
    await a.start(lambda s: None)
    await b.start(received.append)
    await asyncio.sleep(0.1)  # both subscribed
    yield a, b, received
    await a.close()
    await b.close()


async def test_one_lease_per_session(pair: tuple[Coordination, Coordination, list[str]]) -> None:
    a, b, _ = pair
    context = uuid.uuid4().hex
    first, second = info(context), info(context, instance="i2")
    assert await a.acquire(first, 5) is True
    assert await b.acquire(second, 5) is False
    assert await b.holder(context) == first.stream_id
    assert await a.acquire(info(uuid.uuid4().hex), 5) is True  # another session is independent
    await b.release(second)  # not the holder: nothing happens
    assert await a.holder(context) == first.stream_id
    await a.release(first)
    assert await b.acquire(second, 5) is True


async def test_exactly_one_claims_the_end(pair: tuple[Coordination, Coordination, list[str]]) -> None:
    a, b, _ = pair
    stream = info(uuid.uuid4().hex)
    assert await a.acquire(stream, 5)
    results = await asyncio.gather(a.claim_end(stream.stream_id), b.claim_end(stream.stream_id),
                                   a.claim_end(stream.stream_id))
    assert sorted(results) == [False, False, True]
    assert await a.refresh([stream], 5) == [stream.stream_id]  # its end was claimed: no longer the owner's


async def test_a_stream_that_stops_being_refreshed_expires(pair: tuple[Coordination, Coordination, list[str]]) -> None:
    a, b, _ = pair
    alive, dead = info(uuid.uuid4().hex), info(uuid.uuid4().hex, instance="gone")
    assert await a.acquire(alive, 0.3) and await a.acquire(dead, 0.3)
    for _ in range(3):
        await asyncio.sleep(0.15)
        assert await a.refresh([alive], 0.3) == []
    expired = [s.stream_id for s in await b.expired()]
    assert dead.stream_id in expired and alive.stream_id not in expired
    assert next(s for s in await b.expired() if s.stream_id == dead.stream_id) == dead
    assert await b.claim_end(dead.stream_id)
    assert dead.stream_id not in [s.stream_id for s in await b.expired()]
    assert await b.acquire(info(dead.context_id), 5)  # its session's lease is gone too


async def test_cancel_signals_reach_the_other_instance(pair: tuple[Coordination, Coordination, list[str]]) -> None:
    a, _, received = pair
    await a.send_cancel("stream-1")
    for _ in range(50):
        if received:
            break
        await asyncio.sleep(0.02)
    assert received == ["stream-1"]


@pytest.fixture(params=["memory", "redis"])
async def budget(request: pytest.FixtureRequest) -> AsyncIterator[TokenBudget]:
    store: TokenBudget = MemoryTokenBudget() if request.param == "memory" else RedisTokenBudget(
        REDIS_URL, f"test:{uuid.uuid4().hex[:8]}:")
    yield store
    await store.close()


async def test_token_budgets_per_minute(budget: TokenBudget) -> None:
    assert await budget.wait_needed([("user:a", 100), ("session:s", 1000)]) is None
    await budget.spend(["user:a", "session:s"], 120)
    wait = await budget.wait_needed([("user:a", 100), ("session:s", 1000)])
    assert wait is not None and 1 <= wait <= 60
    assert await budget.wait_needed([("user:b", 100), ("session:s", 1000)]) is None
    assert await budget.wait_needed([("user:a", 0)]) is None  # 0: no budget
