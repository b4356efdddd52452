"""Hub-sequenced (live AI) topics across a failover: a topic on the shard whose master died gets a new epoch (its
last writes may not have reached the replica), so a client asking for its history is told to resync
(`recovered:false`); a topic on a shard that kept its master keeps its epoch and history."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest

from channels.redis_hub import RedisHub
from tests.cluster.nodes import PrivateCluster
from tests.conftest import redis_prefix
from tests.waiting import eventually

pytestmark = pytest.mark.slow


@pytest.fixture
async def hub(redis_cluster: PrivateCluster) -> AsyncIterator[RedisHub]:
    hub = RedisHub(redis_cluster.url, uuid.uuid4().hex[:8], prefix=redis_prefix())
    await hub.start()
    try:
        yield hub
    finally:
        await hub.close()


async def test_only_the_failed_shards_live_topics_lose_their_history(redis_cluster: PrivateCluster,
                                                                     hub: RedisHub) -> None:
    lost = f"live:{uuid.uuid4()}"
    kept = f"live:{uuid.uuid4()}"
    while redis_cluster.master_for(f"{{{kept}}}").port == redis_cluster.master_for(f"{{{lost}}}").port:
        kept = f"live:{uuid.uuid4()}"
    for i in range(3):
        await hub.publish(lost, "delta", {"i": i})
        await hub.publish(kept, "delta", {"i": i})
    before_lost, before_kept = await hub.position(lost), await hub.position(kept)
    assert len(await hub.history(lost, before_lost.epoch, 0) or []) == 3
    await asyncio.to_thread(redis_cluster.kill_master_of, f"{{{lost}}}")

    async def lost_moved_on() -> bool:
        try:
            return (await hub.position(lost)).epoch != before_lost.epoch
        except Exception:  # the client is still learning the new slot map
            return False
    await eventually(lost_moved_on, what="the failed shard's topic to answer with a new epoch")
    assert await hub.history(lost, before_lost.epoch, 0) is None  # → the client resyncs (recovered:false)
    assert await hub.position(kept) == before_kept
    kept_history = await hub.history(kept, before_kept.epoch, 0)
    assert kept_history is not None and [e.offset for e in kept_history] == [1, 2, 3]
    # Publishing goes on on both: the failed shard's topic from its new epoch.
    assert await hub.publish(kept, "delta", {"i": 3}) == 4
    assert await hub.publish(lost, "delta", {"i": 3}) >= 1
