"""Two instances sharing Redis: REST and push changes reach members on both with the same offsets."""

from __future__ import annotations

import asyncio

import pytest

from channels.client import RealtimeClient, ReplyError
from tests.realtime.conftest import Cluster
from tests.realtime.harness import event_with, person
from tests.waiting import notification_sentinel

# Real server processes: left out of the quick loop (./scripts/test.sh -m "not slow").
pytestmark = pytest.mark.slow


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


async def test_removed_participant_is_taken_off_the_room_on_every_instance(cluster: Cluster) -> None:
    async with cluster.api() as api:
        alice, bob = await person(api, "alice"), await person(api, "bob")
        event = await event_with(api, alice, bob, template=False)
        topic = f"event:{event['id']}"
        async with RealtimeClient(cluster.a.ws_url, bob.token) as b1, \
                RealtimeClient(cluster.b.ws_url, bob.token) as b2, \
                RealtimeClient(cluster.b.ws_url, alice.token) as a:
            for c in (b1, b2, a):
                await c.join(topic)
            for c in (b1, b2):  # bob's own topic stays joined: it carries the sentinel below
                await c.join(f"user:{bob.id}")
            r = await api.delete(f"/events/{event['id']}/participants/{bob.id}", headers=alice.headers)
            assert r.status_code == 204, r.text
            for c in (b1, b2):
                left = await c.next(op="left", topic=topic)
                assert left == {"op": "left", "topic": topic, "reason": "revoked"}
            # From now on bob hears nothing of the room and cannot act in it; alice still can.
            await api.post(f"/events/{event['id']}/chat", headers=alice.headers, json={"text": "secret"})
            assert (await a.next(event="chat.message"))["data"]["text"] == "secret"
            with pytest.raises(ReplyError) as err:
                await b1.push(topic, "chat.send", {"text": "still here?"})
            assert err.value.code == "not_joined"
            with pytest.raises(ReplyError) as err:
                await b2.join(topic)
            assert err.value.code == "not_found"
            # "secret" was published (alice has it) before bob publishes on his own topic; each instance reads
            # all its topics from one Redis subscription, in publish order, and each socket gets its frames in
            # order: had "secret" been sent to b1 or b2, it would be there before bob's sentinel.
            for before in await notification_sentinel(api, bob.headers, bob.id, b1, b2):
                assert [f for f in before if f.get("op") == "msg" and f.get("topic") == topic] == []


async def test_declining_counts_as_leaving_and_deleting_the_event_empties_the_room(cluster: Cluster) -> None:
    async with cluster.api() as api:
        alice, bob = await person(api, "alice"), await person(api, "bob")
        event = await event_with(api, alice, bob, template=False)
        topic = f"event:{event['id']}"
        async with RealtimeClient(cluster.a.ws_url, bob.token) as b, RealtimeClient(cluster.b.ws_url, alice.token) as a:
            await b.join(topic)
            await a.join(topic)
            r = await api.put(f"/events/{event['id']}/participants/{bob.id}", headers=bob.headers,
                              json={"status": "declined"})
            assert r.status_code == 200, r.text
            assert (await b.next(op="left", topic=topic))["reason"] == "revoked"
            assert (await api.delete(f"/events/{event['id']}", headers=alice.headers)).status_code == 204
            assert (await a.next(op="left", topic=topic))["reason"] == "deleted"


async def test_presence_across_instances(cluster: Cluster) -> None:
    async with cluster.api() as api:
        alice, bob = await person(api, "alice"), await person(api, "bob")
        event = await event_with(api, alice, bob, template=False)
        topic = f"event:{event['id']}"
        async with RealtimeClient(cluster.a.ws_url, alice.token) as a:
            await a.join(topic)
            async with RealtimeClient(cluster.b.ws_url, bob.token) as b:
                reply = await b.join(topic)
                assert set(reply["presence"]) == {alice.id, bob.id}
                assert reply["presence"][alice.id]["handle"] == alice.handle
                joined = await a.next(op="presence", topic=topic)
                assert joined["joins"] == {bob.id: reply["presence"][bob.id]} and joined["leaves"] == {}
            gone = await a.next(op="presence", topic=topic)
            assert gone["leaves"] == {bob.id: {}}
