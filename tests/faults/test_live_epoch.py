"""Live (hub-sequenced) topics on a private Redis: the epoch is honest — a Redis restored from an older
snapshot, or restarted, is another server process, so the epoch changes and no resume is called complete over
rewound offsets — and a publish the client library retries is appended once."""

from __future__ import annotations

import secrets
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from channels import messages as m
from channels.redis_hub import RedisHub
from channels.redis_scripts import PUBLISH_ID_TTL_MS
from tests.faults.services import PrivateRedis

pytestmark = pytest.mark.slow


@pytest.fixture
async def redis_and_hub(tmp_path: Path) -> AsyncIterator[tuple[PrivateRedis, RedisHub]]:
    rs = PrivateRedis(tmp_path / "redis").start()
    hub = RedisHub(rs.url, "live-test", prefix="cm:")
    await hub.start()
    try:
        yield rs, hub
    finally:
        await hub.close()
        rs.stop()


async def test_a_rewound_redis_gives_live_topics_a_new_epoch(redis_and_hub: tuple[PrivateRedis, RedisHub]) -> None:
    rs, hub = redis_and_hub
    topic = f"live:{secrets.token_hex(4)}"
    for i in range(3):
        await hub.publish(topic, "message.created", {"i": i})
    rs.snapshot()
    for i in range(3, 6):
        await hub.publish(topic, "message.created", {"i": i})
    seen = await hub.position(topic)
    assert seen.offset == 6
    rs.restart()  # back from the snapshot: the counter says 3 again, with the epoch it had then
    now = await hub.position(topic)
    assert now.epoch != seen.epoch, "offsets 4-6 will be reused: the epoch must change"
    # A client that saw offset 6 resumes: not recoverable (never a 'complete' replay of reused offsets).
    assert await hub.history(topic, seen.epoch, 6) is None
    assert await hub.history(topic, seen.epoch, 2) is None
    # Within the new epoch, the log works as usual.
    offset = await hub.publish(topic, "message.created", {"i": 6})
    assert await hub.history(topic, now.epoch, offset - 1) is not None


async def test_a_retried_publish_is_appended_once(redis_and_hub: tuple[PrivateRedis, RedisHub]) -> None:
    """The script runs twice with one publish id (what redis-py's retry does after a timeout on a script that
    did run): one offset, one history entry."""
    _, hub = redis_and_hub
    topic = f"live:{secrets.token_hex(4)}"
    await hub.publish(topic, "message.created", {"i": 0})
    head = m.msg(topic, "ai.delta", 0, "", "", "null")
    prefix = head[: head.index('"offset":') + len('"offset":')]
    suffix = ',"ts":"2026-12-06T00:00:00.000Z","data":{"text":"x"}}'
    keys = [f"cm:o:{topic}", f"cm:e:{topic}", f"cm:s:{topic}", "cm:pid:retried-once"]
    args: list[str | int] = [f"cm:c:{topic}", prefix, suffix, secrets.token_hex(8), 1000, 600_000,
                             int(time.time() * 1000), 86_400_000, PUBLISH_ID_TTL_MS]
    first = await hub.redis.evalsha(hub._publish.sha, len(keys), *keys, *args)
    again = await hub.redis.evalsha(hub._publish.sha, len(keys), *keys, *args)
    assert first == again == 2
    pos = await hub.position(topic)
    assert pos.offset == 2
    entries = await hub.history(topic, pos.epoch, 0)
    assert entries is not None and [e.offset for e in entries] == [1, 2]
