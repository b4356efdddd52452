"""What a connection storm leans on: one round trip for everything asked at once (channels.batching), presence
writes of many joins as one frame, and resumes answered from what the hub already delivered."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator

import pytest

from channels.batching import Batcher
from channels.redis_hub import RedisHub
from tests.conftest import REDIS_URL, redis_prefix
from tests.unit.test_hub import Recorder
from tests.waiting import eventually


async def test_questions_asked_together_share_one_call() -> None:
    calls: list[list[int]] = []

    async def run(keys: list[int]) -> dict[int, str]:
        calls.append(keys)
        return {k: f"v{k}" for k in keys if k != 3}

    batcher: Batcher[int, str] = Batcher(run)
    answers = await asyncio.gather(*[batcher.get(k) for k in (1, 2, 2, 3, 4)])
    assert answers == ["v1", "v2", "v2", None, "v4"]
    assert calls == [[1, 2, 3, 4]]  # one call, each key once
    assert await batcher.get(5) == "v5"  # alone: answered at once, in a call of its own
    assert calls[-1] == [5] and batcher.batches == 2


async def test_what_is_asked_during_a_call_goes_in_the_next_one() -> None:
    release = asyncio.Event()
    calls: list[list[int]] = []

    async def run(keys: list[int]) -> dict[int, int]:
        calls.append(keys)
        if len(calls) == 1:
            await release.wait()
        return {k: k for k in keys}

    batcher: Batcher[int, int] = Batcher(run)
    first = asyncio.ensure_future(batcher.get(1))
    await eventually(lambda: calls)
    later = [asyncio.ensure_future(batcher.get(k)) for k in (2, 3)]
    release.set()
    assert await first == 1 and [await f for f in later] == [2, 3]
    assert calls == [[1], [2, 3]]


async def test_a_failed_call_fails_every_caller_of_its_batch_and_the_next_batch_runs() -> None:
    failing = True

    async def run(keys: list[int]) -> dict[int, int]:
        if failing:
            raise ConnectionError("database away")
        return {k: k for k in keys}

    batcher: Batcher[int, int] = Batcher(run)
    results = await asyncio.gather(batcher.get(1), batcher.get(2), return_exceptions=True)
    assert all(isinstance(r, ConnectionError) for r in results)
    failing = False
    assert await batcher.get(1) == 1


@pytest.fixture
async def two_hubs() -> AsyncIterator[tuple[RedisHub, RedisHub]]:
    prefix = redis_prefix()
    a, b = RedisHub(REDIS_URL, "a", prefix=prefix), RedisHub(REDIS_URL, "b", prefix=prefix)
    await a.start()
    await b.start()
    try:
        yield a, b
    finally:
        await a.close()
        await b.close()


async def test_many_joins_at_once_are_announced_together_and_once_per_user(
        two_hubs: tuple[RedisHub, RedisHub]) -> None:
    a, b = two_hubs
    t = f"event:{uuid.uuid4()}"
    watcher = Recorder("w")
    await b.subscribe(t, watcher)
    await a.track(t, "c0", "u0", {"name": "U0"})
    await eventually(lambda: watcher.presence)
    users = [f"u{i}" for i in range(10)]
    # u0 is there already and opens a second tab; the others arrive, two of them with two tabs each.
    tracked = [(u, f"c{i}-{tab}") for i, u in enumerate(users) for tab in ((1, 2) if i in (0, 4, 7) else (1,))]
    seen = await asyncio.gather(*[a.track(t, conn, u, {"name": u.upper()}) for u, conn in tracked])
    # Each track answers who is present once it is: itself and everyone before it, with their metas.
    assert all(present.get(u) == {"name": u.upper()} and present["u0"] == {"name": "U0"}
               for (u, _), present in zip(tracked, seen, strict=True))
    assert seen[-1] == {u: {"name": u.upper()} for u in users}
    await a.publish(t, "chat.message", {"sentinel": True})  # presence and messages share one ordered channel
    await eventually(lambda: watcher.msgs)
    announced = [user for frame in watcher.presence for user in frame["joins"]]
    assert sorted(announced) == sorted(users)  # everyone once; u0's second tab is no second join
    assert len(watcher.presence) < len(users)  # batched: fewer frames than joins
    assert all(frame["leaves"] == {} and frame["topic"] == t for frame in watcher.presence)
    present = await asyncio.gather(b.presence(t), b.presence(f"event:{uuid.uuid4()}"))
    assert present[0] == {u: {"name": u.upper()} for u in users} and present[1] == {}


async def test_a_resume_within_what_the_hub_delivered_needs_no_round_trip(
        two_hubs: tuple[RedisHub, RedisHub]) -> None:
    a, b = two_hubs
    t = f"live:{uuid.uuid4()}"
    r = Recorder()
    await a.subscribe(t, r)
    for i in range(6):
        await b.publish(t, "ai.delta", {"i": i})
    await eventually(lambda: len(r.msgs) == 6)
    epoch = r.msgs[0][2]["epoch"]
    before = a.history_from_memory
    from_memory = await a.history(t, epoch, 2)
    assert a.history_from_memory == before + 1
    from_redis = await b.history(t, epoch, 2)  # b subscribed to nothing: read from the stream
    assert from_memory == from_redis and [e.offset for e in from_memory or []] == [3, 4, 5, 6]
    assert [json.loads(e.frame)["data"]["i"] for e in from_memory or []] == [2, 3, 4, 5]
    assert await a.history(t, epoch, 6) == []
    assert await a.history(t, "another-epoch", 2) is None  # not ours: asked of the log, which refuses it


async def test_many_leaves_at_once_are_all_taken_off_and_announced(two_hubs: tuple[RedisHub, RedisHub]) -> None:
    """Hundreds of sockets dropping together (a proxy restart): each leaves, and each user's last connection to go
    is announced once. One call per leave had run past the Redis client's pool (100 connections): most failed
    and stayed present to everyone else."""
    a, b = two_hubs
    t = f"event:{uuid.uuid4()}"
    watcher = Recorder("w")
    await b.subscribe(t, watcher)
    conns = [(f"u{i}", f"c{i}-{tab}") for i in range(300) for tab in ((1, 2) if i % 7 == 0 else (1,))]
    await asyncio.gather(*[a.track(t, conn, user, {"n": user}) for user, conn in conns])
    assert len(await b.presence(t)) == 300
    await asyncio.gather(*[a.untrack(t, conn, user) for user, conn in conns])
    assert await b.presence(t) == {}
    await a.publish(t, "chat.message", {"sentinel": True})  # after every leave on the topic's ordered channel
    await eventually(lambda: watcher.msgs)
    left = [user for frame in watcher.presence for user in frame["leaves"]]
    assert sorted(left) == sorted(f"u{i}" for i in range(300))  # each user once, when its last tab went
