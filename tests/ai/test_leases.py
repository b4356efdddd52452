"""Coordination of generations across instances (memory:// and a real Redis): one lease per session, exactly
one end per stream, expired streams found, cancel signals delivered. (Token budgets: test_budgets.py.)"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest

from ai.leases import Coordination, MemoryCoordination, RedisCoordination, StreamInfo
from tests.conftest import REDIS_URL, redis_prefix
from tests.waiting import LIVENESS, eventually


def info(context: str, stream: str | None = None, instance: str = "i1") -> StreamInfo:
    return StreamInfo(stream or uuid.uuid4().hex, context, f"live:{context}", "user", instance)


Pair = tuple[Coordination, Coordination, asyncio.Queue[str]]


@pytest.fixture(params=["memory", "redis"])
async def pair(request: pytest.FixtureRequest) -> AsyncIterator[Pair]:
    """Two instances' views of the same coordination, and the cancel signals the second received."""
    received: asyncio.Queue[str] = asyncio.Queue()
    if request.param == "memory":
        one = MemoryCoordination()
        await one.start(received.put_nowait)
        yield one, one, received
        await one.close()
        return
    prefix = redis_prefix()
    a, b = RedisCoordination(REDIS_URL, prefix), RedisCoordination(REDIS_URL, prefix)
    await a.start(lambda s: None)
    await b.start(received.put_nowait)
    await asyncio.wait_for(asyncio.gather(a.wait_subscribed(), b.wait_subscribed()), LIVENESS)
    yield a, b, received
    await a.close()
    await b.close()


async def test_one_lease_per_session(pair: Pair) -> None:
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


async def test_exactly_one_claims_the_end(pair: Pair) -> None:
    a, b, _ = pair
    stream = info(uuid.uuid4().hex)
    assert await a.acquire(stream, 5)
    results = await asyncio.gather(a.claim_end(stream.stream_id), b.claim_end(stream.stream_id),
                                   a.claim_end(stream.stream_id))
    assert sorted(results) == [False, False, True]
    assert await a.refresh([stream], 5) == [stream.stream_id]  # its end was claimed: no longer the owner's


async def test_a_stream_that_stops_being_refreshed_expires(pair: Pair) -> None:
    a, b, _ = pair
    alive, dead = info(uuid.uuid4().hex), info(uuid.uuid4().hex, instance="gone")
    # `alive` first: its first registration runs out no later than `dead`'s, so only the refresh keeps it.
    assert await a.acquire(alive, 0.3) and await a.acquire(dead, 0.3)
    assert await a.refresh([alive], 60) == []

    async def dead_expired() -> list[StreamInfo] | None:
        found = await b.expired()
        return found if dead in found else None

    expired = await eventually(dead_expired)
    assert alive.stream_id not in [s.stream_id for s in expired]
    assert await b.claim_end(dead.stream_id)
    assert dead.stream_id not in [s.stream_id for s in await b.expired()]
    # Its session's lease runs out too (on Redis by the server's clock: a moment apart from the registration's).
    assert await eventually(lambda: b.acquire(info(dead.context_id), 5))


async def test_cancel_signals_reach_the_other_instance(pair: Pair) -> None:
    a, _, received = pair
    await a.send_cancel("stream-1")
    await a.send_cancel("sentinel")  # signals arrive in order: once it is in, anything else would be too
    got = []
    while (signal := await asyncio.wait_for(received.get(), LIVENESS)) != "sentinel":
        got.append(signal)
    assert got == ["stream-1"]
