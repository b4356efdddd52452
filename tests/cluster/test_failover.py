"""A Redis Cluster master killed mid-stream (SIGKILL; its replica takes over): members on both instances keep
one stream, a member away across the failover resumes, and every stream is checked against the rows the
database committed — nothing lost silently, nothing twice. Event rooms are sequenced by the database, so a
failover costs them no history (no resync); only hub-sequenced topics on the failed shard may be told
`recovered:false` (replication is asynchronous: the last writes may not have reached the replica)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest

from channels.client import RealtimeClient
from tests.cluster.conftest import OnCluster, start_stack, stop_stack
from tests.cluster.nodes import PrivateCluster
from tests.conftest import fresh_pg_database
from tests.faults.test_durable_log import chat_rows, check_stream, committed, figures, until_text
from tests.realtime.harness import event_with, person

pytestmark = pytest.mark.slow


@pytest.fixture
async def stack(redis_cluster: PrivateCluster, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[OnCluster]:
    async with fresh_pg_database("conversme_rcf") as db_url:
        stack = start_stack(redis_cluster, db_url, tmp_path_factory.mktemp("rcf"))
        try:
            yield stack
        finally:
            stop_stack(stack)


async def test_a_master_killed_mid_stream_loses_nothing(stack: OnCluster) -> None:
    async with httpx.AsyncClient(base_url=stack.a.url, timeout=30) as on_a, \
            httpx.AsyncClient(base_url=stack.b.url, timeout=30) as on_b:
        alice, bob = await person(on_a, "alice"), await person(on_a, "bob")
        event = await event_with(on_a, alice, bob, template=False)
        topic = f"event:{event['id']}"
        async with RealtimeClient(stack.b.ws_url, bob.token) as on_b_ws, \
                RealtimeClient(stack.a.ws_url, alice.token) as on_a_ws:
            await on_b_ws.join(topic)
            await on_a_ws.join(topic)
            async with RealtimeClient(stack.a.ws_url, alice.token, reconnect=False) as away:
                joined = await away.join(topic)
            position = (joined["epoch"], joined["offset"])
            answered: list[str] = []
            refused = 0

            async def write(text: str, api: httpx.AsyncClient) -> None:
                nonlocal refused
                r = await api.post(f"/events/{event['id']}/chat", headers=alice.headers, json={"text": text})
                if r.status_code == 201:
                    answered.append(text)
                else:  # 503 while the room's slot has no master: the client retries, nothing was committed
                    assert r.status_code == 503, r.text
                    refused += 1

            for i in range(10):
                await write(f"before{i}", on_a if i % 2 else on_b)
            # The writes go on, on both instances, while the master of the room's slot dies and its replica
            # takes over.
            writing = asyncio.gather(*[write(f"during{i}", on_a if i % 2 else on_b) for i in range(20)])
            started = time.monotonic()
            victim = await asyncio.to_thread(stack.redis.kill_master_of, f"{{{topic}}}")
            failover_s = time.monotonic() - started
            await writing
            for i in range(10):
                await write(f"after{i}", on_a if i % 2 else on_b)
            sentinel = f"sentinel-{uuid.uuid4().hex[:6]}"
            await write(sentinel, on_b)
            assert answered[-1] == sentinel
            expected = await committed(stack.database_url, event["id"])
            # Every answered write is committed; the streams are exactly the committed lines, in commit order.
            assert set(answered) <= set(expected) and set(expected) == await chat_rows(stack.database_url, event["id"])
            for ws in (on_b_ws, on_a_ws):
                assert check_stream(await until_text(ws, topic, sentinel), topic) == expected
        async with RealtimeClient(stack.b.ws_url, alice.token) as back:
            reply = await back.join(topic, since=position)
            assert reply["recovered"] is True and reply["epoch"] == position[0]
            assert check_stream(await until_text(back, topic, sentinel), topic) == expected
    figures("Redis Cluster master killed mid-stream", killed_port=victim.port, failover_s=round(failover_s, 1),
            answered_201=len(answered), refused_503=refused, committed=len(expected), delivered_each=len(expected),
            resyncs=0, resumed_recovered=True)
