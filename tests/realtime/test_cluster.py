"""Two instances sharing Redis: REST and push changes reach members on both with the same offsets."""

from __future__ import annotations

import asyncio

from channels.client import RealtimeClient
from tests.realtime.conftest import Cluster
from tests.realtime.harness import event_with, person


async def test_rest_and_push_changes_reach_both_instances_in_one_order(cluster: Cluster) -> None:
    async with cluster.api() as api:
        alice, bob = await person(api, "alice"), await person(api, "bob")
        event = await event_with(api, alice, bob)
        topic = f"event:{event['id']}"
        steps = (await api.get(f"/processes/{event['processId']}/steps", headers=alice.headers)).json()
        async with RealtimeClient(cluster.a.ws_url, alice.token) as ca, \
                RealtimeClient(cluster.b.ws_url, bob.token) as cb:
            ja, jb = await ca.join(topic), await cb.join(topic)
            assert ja["epoch"] == jb["epoch"] and ja["offset"] == jb["offset"]
            # A REST change on instance A ...
            r = await api.put(f"/processes/steps/{steps[0]['id']}", headers=alice.headers, json={"completed": True})
            assert r.status_code == 200, r.text
            ma = await ca.next(event="step.updated")
            mb = await cb.next(event="step.updated")
            assert ma == mb and ma["data"]["completed"] is True and ma["data"]["subSteps"][0]["completed"] is True
            # ... and a push on instance B.
            reply = await cb.push(topic, "step.update", {"stepId": steps[1]["id"], "completed": True})
            assert reply["id"] == steps[1]["id"] and reply["completed"] is True
            pa, pb = await ca.next(event="step.updated"), await cb.next(event="step.updated")
            assert pa == pb and pa["offset"] == ma["offset"] + 1
            # Many concurrent writers on both instances: one order everywhere.
            await asyncio.gather(*[
                (ca if i % 2 else cb).push(topic, "chat.send", {"text": f"m{i}"}) for i in range(16)])
            got_a = [await ca.next(event="chat.message") for _ in range(16)]
            got_b = [await cb.next(event="chat.message") for _ in range(16)]
            assert [m["offset"] for m in got_a] == [m["offset"] for m in got_b]
            assert [m["data"]["text"] for m in got_a] == [m["data"]["text"] for m in got_b]
            offsets = [m["offset"] for m in got_a]
            assert offsets == list(range(offsets[0], offsets[0] + 16))
