"""Both shipped hubs against one contract: order, offsets, history, recovery, presence, removal.
The Redis hub runs against the real Redis; two RedisHub objects stand for two server instances."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from channels.hub import Hub
from channels.memory_hub import MemoryHub
from channels.redis_hub import RedisHub
from tests.conftest import REDIS_URL, redis_prefix
from tests.waiting import eventually


class Recorder:
    def __init__(self, user_id: str = "u1") -> None:
        self.user_id = user_id
        self.msgs: list[tuple[str, int, dict[str, Any]]] = []
        self.presence: list[dict[str, Any]] = []
        self.removed: list[tuple[str, str, str]] = []
        self.resynced: list[str] = []
        self.got = asyncio.Event()

    def on_msg(self, topic: str, offset: int, frame: str) -> None:
        self.msgs.append((topic, offset, json.loads(frame)))
        self.got.set()

    def on_presence(self, topic: str, frame: str) -> None:
        self.presence.append(json.loads(frame))
        self.got.set()

    def on_removed(self, topic: str, user_id: str, reason: str) -> None:
        self.removed.append((topic, user_id, reason))
        self.got.set()

    def on_resync(self, topic: str) -> None:
        self.resynced.append(topic)
        self.got.set()


def topic() -> str:
    return f"event:{uuid.uuid4()}"


@pytest.fixture(params=["memory", "redis"])
async def hubs(request: pytest.FixtureRequest) -> AsyncIterator[tuple[Hub, Hub]]:
    """Two hubs sharing one backend: the same object for memory://, two instances for redis://."""
    if request.param == "memory":
        hub = MemoryHub()
        yield hub, hub
        return
    prefix = redis_prefix()
    a, b = RedisHub(REDIS_URL, "a", prefix=prefix), RedisHub(REDIS_URL, "b", prefix=prefix)
    await a.start()
    await b.start()
    try:
        yield a, b
    finally:
        await a.close()
        await b.close()


async def test_every_subscriber_sees_one_order_with_offsets(hubs: tuple[Hub, Hub]) -> None:
    a, b = hubs
    t = topic()
    ra, rb = Recorder(), Recorder()
    await a.subscribe(t, ra)
    await b.subscribe(t, rb)
    offsets = await asyncio.gather(*[(a if i % 2 else b).publish(t, "step.updated", {"i": i}) for i in range(40)])
    assert sorted(offsets) == list(range(1, 41))
    await eventually(lambda: len(ra.msgs) == 40 and len(rb.msgs) == 40)
    assert [o for _, o, _ in ra.msgs] == list(range(1, 41))
    assert [f["data"] for *_, f in ra.msgs] == [f["data"] for *_, f in rb.msgs]
    frame = ra.msgs[0][2]
    assert frame["op"] == "msg" and frame["topic"] == t and frame["event"] == "step.updated"
    assert frame["offset"] == 1 and isinstance(frame["epoch"], str) and frame["ts"].endswith("Z")


async def test_history_recovers_exactly_the_missed_entries(hubs: tuple[Hub, Hub]) -> None:
    a, b = hubs
    t = topic()
    for i in range(5):
        await a.publish(t, "chat.message", {"i": i})
    pos = await b.position(t)
    assert pos.offset == 5
    missed = await b.history(t, pos.epoch, 2)
    assert missed is not None and [e.offset for e in missed] == [3, 4, 5]
    assert [json.loads(e.frame)["data"]["i"] for e in missed] == [2, 3, 4]
    assert await b.history(t, pos.epoch, 5) == []
    assert await b.history(t, "another-epoch", 2) is None
    assert await b.history(t, pos.epoch, 9) is None


async def test_history_is_bounded() -> None:
    hub = MemoryHub(history_size=3)
    t = topic()
    for i in range(6):
        await hub.publish(t, "chat.message", {"i": i})
    pos = await hub.position(t)
    assert await hub.history(t, pos.epoch, 1) is None  # entries 2 and 3 are gone: never a partial gap
    assert [e.offset for e in await hub.history(t, pos.epoch, 3) or []] == [4, 5, 6]


async def test_redis_history_is_bounded_by_length() -> None:
    hub = RedisHub(REDIS_URL, "x", prefix=redis_prefix(), history_size=3)
    await hub.start()
    try:
        t = topic()
        for i in range(6):
            await hub.publish(t, "chat.message", {"i": i})
        pos = await hub.position(t)
        assert await hub.history(t, pos.epoch, 1) is None
        assert [e.offset for e in await hub.history(t, pos.epoch, 3) or []] == [4, 5, 6]
    finally:
        await hub.close()


async def test_presence_joins_and_leaves_per_user(hubs: tuple[Hub, Hub]) -> None:
    a, b = hubs
    t = topic()
    watcher = Recorder("w")
    await b.subscribe(t, watcher)
    assert await a.track(t, "c1", "u1", {"name": "Ann"}) == {"u1": {"name": "Ann"}}  # who is present, itself too
    assert await a.track(t, "c2", "u1", {"name": "Ann"}) == {"u1": {"name": "Ann"}}  # a second tab: no second join
    await eventually(lambda: len(watcher.presence) >= 1)
    assert await b.presence(t) == {"u1": {"name": "Ann"}}
    await a.untrack(t, "c1", "u1")
    # A sentinel on the same topic after it: presence and messages share the topic's channel, in order, so
    # had the untrack announced a leave, the watcher would have it before the sentinel.
    await a.publish(t, "chat.message", {"sentinel": True})
    await eventually(lambda: len(watcher.msgs) == 1)
    assert len(watcher.presence) == 1 and await b.presence(t) == {"u1": {"name": "Ann"}}
    await a.untrack(t, "c2", "u1")
    await eventually(lambda: len(watcher.presence) == 2)
    assert watcher.presence[0]["joins"] == {"u1": {"name": "Ann"}}
    assert watcher.presence[1]["leaves"] == {"u1": {}}
    assert await b.presence(t) == {}


async def test_remove_user_reaches_every_instance(hubs: tuple[Hub, Hub]) -> None:
    a, b = hubs
    t = topic()
    ra, rb = Recorder(), Recorder()
    await a.subscribe(t, ra)
    await b.subscribe(t, rb)
    await a.remove_user(t, "u9", "revoked")
    await eventually(lambda: ra.removed and rb.removed)
    assert ra.removed == rb.removed == [(t, "u9", "revoked")]


async def test_unsubscribed_listener_hears_nothing(hubs: tuple[Hub, Hub]) -> None:
    a, b = hubs
    t = topic()
    r = Recorder()
    await b.subscribe(t, r)
    await b.unsubscribe(t, r)
    await a.publish(t, "chat.message", {})
    # A sentinel on another topic the listener does hear, published after: one hub reads every topic from one
    # subscription in publish order, so the first message would have come before it.
    other = topic()
    await b.subscribe(other, r)
    await a.publish(other, "chat.message", {"sentinel": True})
    await eventually(lambda: r.msgs)
    assert [(t_, f["data"]) for t_, _, f in r.msgs] == [(other, {"sentinel": True})]


async def test_redis_data_loss_makes_listeners_resync_not_skip() -> None:
    prefix = redis_prefix()
    a, b = RedisHub(REDIS_URL, "a", prefix=prefix), RedisHub(REDIS_URL, "b", prefix=prefix)
    await a.start()
    await b.start()
    try:
        t = topic()
        r = Recorder()
        await b.subscribe(t, r)
        await a.publish(t, "chat.message", {"i": 1})
        await eventually(lambda: len(r.msgs) == 1)
        # What a Redis restart without persistence does to a topic: counter, epoch and stream are gone.
        await a.redis.delete(*a._layout.keys(t))
        await a.publish(t, "chat.message", {"i": 2})
        await eventually(lambda: r.resynced == [t])
        assert len(r.msgs) == 1
    finally:
        await a.close()
        await b.close()


async def test_redis_gap_is_filled_from_the_stream() -> None:
    prefix = redis_prefix()
    a, b = RedisHub(REDIS_URL, "a", prefix=prefix), RedisHub(REDIS_URL, "b", prefix=prefix)
    await a.start()
    await b.start()
    try:
        t = topic()
        r = Recorder()
        await b.subscribe(t, r)
        await a.publish(t, "chat.message", {"i": 1})
        await eventually(lambda: len(r.msgs) == 1)
        # Entry 2 is logged but its pub/sub message is lost (as in a dropped subscriber connection).
        await a.redis.eval(
            "redis.call('INCR', KEYS[1]); redis.call('XADD', KEYS[3], '0-2', 'f', ARGV[1], 't', ARGV[2])", 3,
            *a._layout.keys(t), json.dumps({"op": "msg", "topic": t, "offset": 2}), int(1e13))
        await a.publish(t, "chat.message", {"i": 3})
        await eventually(lambda: len(r.msgs) == 3)
        assert [o for _, o, _ in r.msgs] == [1, 2, 3] and r.resynced == []
    finally:
        await a.close()
        await b.close()


async def test_a_crashed_instances_presence_expires_on_its_own() -> None:
    prefix = redis_prefix()
    crashed = RedisHub(REDIS_URL, "crashed", prefix=prefix, presence_ttl=1.0)
    alive = RedisHub(REDIS_URL, "alive", prefix=prefix, presence_ttl=1.0)
    await crashed.start()
    await alive.start()
    try:
        t = topic()
        watcher = Recorder("w")
        await alive.subscribe(t, watcher)
        await crashed.track(t, "c1", "u1", {"name": "Ann"})
        await eventually(lambda: len(watcher.presence) == 1)
        # The instance dies: no untrack, no refresh (its tasks and connections just stop).
        for task in crashed._tasks:
            task.cancel()
        crashed._presence._mine.clear()
        await eventually(lambda: len(watcher.presence) == 2)
        assert watcher.presence[1]["leaves"] == {"u1": {}}
        assert await alive.presence(t) == {}
    finally:
        await crashed.close()
        await alive.close()
