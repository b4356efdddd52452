"""Everything that shares state through Redis, on a real Redis Cluster (`redis+cluster://`): two instances with
members on both, one order for steps and chat, presence, a login limit counted across instances, a reminder job
through the queue and a worker, AI leases and cancels."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from ai.budgets import RedisTokenBudget
from ai.leases import RedisCoordination, StreamInfo
from channels.client import RealtimeClient
from tests.cluster.conftest import OnCluster
from tests.realtime.harness import event_with, person
from tests.waiting import LIVENESS, eventually, frames_until

pytestmark = pytest.mark.slow


async def test_members_on_two_instances_get_one_order_and_presence(on_cluster: OnCluster) -> None:
    async with httpx.AsyncClient(base_url=on_cluster.a.url, timeout=30) as api:
        alice, bob = await person(api, "alice"), await person(api, "bob")
        event = await event_with(api, alice, bob)
        topic = f"event:{event['id']}"
        steps = (await api.get(f"/processes/{event['processId']}/steps", headers=alice.headers)).json()
        async with RealtimeClient(on_cluster.a.ws_url, alice.token) as ca:
            ja = await ca.join(topic)
            async with RealtimeClient(on_cluster.b.ws_url, bob.token) as cb:
                jb = await cb.join(topic)
                assert ja["epoch"] == jb["epoch"]
                assert set(jb["presence"]) == {alice.id, bob.id}
                # (alice's own join may come first: her presence frame and the reply travel separately)
                joined = await frames_until(ca, lambda f: f.get("op") == "presence" and bob.id in f["joins"],
                                            what="bob's join")
                assert joined[-1]["leaves"] == {}
                r = await api.put(f"/processes/steps/{steps[0]['id']}", headers=alice.headers,
                                  json={"completed": True})
                assert r.status_code == 200, r.text
                ma, mb = await ca.next(event="step.updated"), await cb.next(event="step.updated")
                assert ma == mb and ma["data"]["completed"] is True
                await asyncio.gather(*[
                    (ca if i % 2 else cb).push(topic, "chat.send", {"text": f"m{i}"}) for i in range(16)])
                got_a = [await ca.next(event="chat.message") for _ in range(16)]
                got_b = [await cb.next(event="chat.message") for _ in range(16)]
                assert [(m["offset"], m["data"]["text"]) for m in got_a] == \
                    [(m["offset"], m["data"]["text"]) for m in got_b]
                offsets = [m["offset"] for m in got_a]
                assert offsets == list(range(ma["offset"] + 1, ma["offset"] + 17))
            gone = await ca.next(op="presence", topic=topic)
            assert gone["leaves"] == {bob.id: {}}


async def test_login_limit_is_counted_across_instances(on_cluster: OnCluster) -> None:
    async with httpx.AsyncClient(base_url=on_cluster.a.url, timeout=30) as a, \
            httpx.AsyncClient(base_url=on_cluster.b.url, timeout=30) as b:
        user = await person(a, "limited")
        statuses = []
        for client in (a, b, a, b, a):
            r = await client.post("/auth/token", data={"username": user.email, "password": "wrong password"})
            statuses.append(r.status_code)
        # The fourth attempt overall is refused, on whichever instance it arrives.
        assert statuses[:3] == [401, 401, 401] and statuses[3:] == [429, 429], statuses


async def test_a_reminder_goes_through_the_queue_and_a_worker(on_cluster: OnCluster) -> None:
    async with httpx.AsyncClient(base_url=on_cluster.a.url, timeout=30) as api:
        owner, guest = await person(api, "host"), await person(api, "guest")
        async with RealtimeClient(on_cluster.b.ws_url, guest.token) as ws:
            await ws.join(f"user:{guest.id}")
            # Starting in under 15 minutes (the default notice): the reminder is due at once.
            start = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=14)
            r = await api.post("/events", headers=owner.headers, json={
                "title": "Review", "startTime": start.isoformat().replace("+00:00", "Z"),
                "endTime": (start + timedelta(minutes=30)).isoformat().replace("+00:00", "Z"),
                "participantIds": [guest.id]})
            assert r.status_code == 201, r.text
            event = r.json()
            r = await api.put(f"/events/{event['id']}/participants/{guest.id}", headers=guest.headers,
                              json={"status": "confirmed"})
            assert r.status_code == 200, r.text
            reminder = await ws.next(LIVENESS, event="reminder", topic=f"user:{guest.id}")
            assert reminder["data"]["eventId"] == event["id"]


def _info(context: str, instance: str) -> StreamInfo:
    return StreamInfo(uuid.uuid4().hex, context, f"live:{context}", "user", instance)


async def test_ai_leases_and_cancels_across_instances(on_cluster: OnCluster) -> None:
    prefix = on_cluster.env["REDIS_PREFIX"]
    received: asyncio.Queue[str] = asyncio.Queue()
    one, two = RedisCoordination(on_cluster.redis.url, prefix + "ai:"), RedisCoordination(on_cluster.redis.url,
                                                                                          prefix + "ai:")
    await one.start(lambda s: None)
    await two.start(received.put_nowait)
    try:
        await asyncio.wait_for(asyncio.gather(one.wait_subscribed(), two.wait_subscribed()), LIVENESS)
        context = uuid.uuid4().hex
        first, second = _info(context, "i1"), _info(context, "i2")
        assert await one.acquire(first, 0.5) is True
        assert await two.acquire(second, 5) is False
        assert await one.refresh([first], 0.5) == []
        assert await two.claim_end(first.stream_id) is True
        assert await one.claim_end(first.stream_id) is False
        assert await one.refresh([first], 0.5) == [first.stream_id]  # its end was claimed elsewhere
        await one.send_cancel(first.stream_id)
        assert await asyncio.wait_for(received.get(), LIVENESS) == first.stream_id

        async def lease_free() -> bool:
            return await two.acquire(second, 5)
        await eventually(lease_free, what="the first lease to expire")
        assert await one.holder(context) == second.stream_id
    finally:
        await one.close()
        await two.close()


async def test_keys_of_one_topic_share_a_slot(on_cluster: OnCluster) -> None:
    """The hub's keys of a room (offsets, epoch, stream, presence) all sit in the room's slot."""
    async with httpx.AsyncClient(base_url=on_cluster.a.url, timeout=30) as api:
        alice = await person(api, "alice")
        event = await event_with(api, alice, template=False)
        async with RealtimeClient(on_cluster.a.ws_url, alice.token) as ca:
            await ca.join(f"event:{event['id']}")
            node = on_cluster.redis.master_for(f"{{event:{event['id']}}}")
            with node.client() as c:
                keys: list[Any] = c.keys(f"{on_cluster.env['REDIS_PREFIX']}*{{event:{event['id']}}}*")
            assert {k.split("{")[0].removeprefix(on_cluster.env["REDIS_PREFIX"]) for k in keys} >= {"pz:", "ph:"}


async def test_ready_and_metrics_see_the_cluster(on_cluster: OnCluster) -> None:
    async with httpx.AsyncClient(base_url=on_cluster.b.url, timeout=30) as api:
        r = await api.get("/ready")
        assert r.status_code == 200, r.text
        metrics = (await api.get("/metrics")).text
        assert "conversme_redis_up 1.0" in metrics


async def test_token_budgets_of_a_user_and_a_session_on_two_instances(on_cluster: OnCluster) -> None:
    """The user's and the session's keys live in different slots: a spend counts in both, seen by another
    instance's budget."""
    prefix = on_cluster.env["REDIS_PREFIX"] + "ai:tokens:"
    one, two = RedisTokenBudget(on_cluster.redis.url, prefix), RedisTokenBudget(on_cluster.redis.url, prefix)
    try:
        user, session = f"user:{uuid.uuid4()}", f"live:{uuid.uuid4()}"
        assert await two.wait_needed([(user, 100), (session, 100)]) is None
        await one.spend([user, session], 60)
        await one.spend([user], 50)
        wait = await two.wait_needed([(user, 100), (session, 100)])
        assert wait is not None and 0 < wait <= 60  # the user is over (110), the session is not (60)
        assert await two.wait_needed([(session, 100)]) is None
    finally:
        await one.close()
        await two.close()
