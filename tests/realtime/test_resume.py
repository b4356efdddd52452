"""Resume after a reconnect: exactly the missed messages, or `recovered:false` — never a partial gap."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from channels.client import RealtimeClient
from tests.realtime.conftest import Cluster
from tests.realtime.harness import ServerProcess, event_with, person
from tests.waiting import LIVENESS, chat_sentinel, notification_sentinel

# Real server processes: left out of the quick loop (./scripts/test.sh -m "not slow").
pytestmark = pytest.mark.slow


async def _chat(api: httpx.AsyncClient, headers: dict[str, str], event_id: str, n: int, tag: str) -> None:
    for i in range(n):
        r = await api.post(f"/events/{event_id}/chat", headers=headers, json={"text": f"{tag}{i}"})
        assert r.status_code == 201, r.text


async def test_client_cut_off_mid_stream_resumes_with_exactly_the_missed_messages(cluster: Cluster) -> None:
    async with cluster.api() as api:
        alice, bob = await person(api, "alice"), await person(api, "bob")
        event = await event_with(api, alice, bob, template=False)
        topic = f"event:{event['id']}"
        async with RealtimeClient(cluster.b.ws_url, bob.token) as c:
            await c.join(topic)
            await _chat(api, alice.headers, event["id"], 3, "before")
            seen = [await c.next(event="chat.message") for _ in range(3)]
        epoch, last = seen[-1]["epoch"], seen[-1]["offset"]
        await _chat(api, alice.headers, event["id"], 5, "away")  # published while bob is disconnected
        async with RealtimeClient(cluster.a.ws_url, bob.token) as c:  # back, on the other instance
            reply = await c.join(topic, since=(epoch, last))
            assert reply["recovered"] is True and reply["epoch"] == epoch
            await _chat(api, alice.headers, event["id"], 2, "after")
            got = [await c.next(event="chat.message") for _ in range(7)]
            assert [m["data"]["text"] for m in got] == [f"away{i}" for i in range(5)] + ["after0", "after1"]
            assert [m["offset"] for m in got] == list(range(last + 1, last + 8))
            # No duplicates: nothing more on the topic before a message bob sends after them.
            before, sentinel = await chat_sentinel(c, topic)
            assert [f for f in before if f.get("op") == "msg"] == []
            assert sentinel["offset"] == last + 8


async def test_wrong_epoch_or_future_offset_is_not_recovered(cluster: Cluster) -> None:
    async with cluster.api() as api:
        alice = await person(api)
        event = await event_with(api, alice, template=False)
        await _chat(api, alice.headers, event["id"], 2, "x")
    topic = f"event:{event['id']}"
    async with RealtimeClient(cluster.a.ws_url, alice.token) as c:
        head = (await c.join(topic))["offset"]
        await c.leave(topic)
        reply = await c.join(topic, since=("not-the-epoch", 1))
        assert reply["recovered"] is False and reply["offset"] == head
        await c.leave(topic)
        reply = await c.join(topic, since=(reply["epoch"], 99))
        assert reply["recovered"] is False
        # Nothing replayed: a replay follows its join reply, so it would come before a message sent after it.
        before, sentinel = await chat_sentinel(c, topic)
        assert [f for f in before if f.get("op") == "msg"] == []
        assert sentinel["offset"] == head + 1


async def test_away_too_long_is_not_recovered(embedded: ServerProcess) -> None:
    """The history keeps the last 1,000 messages: a client that missed more must reload over REST."""
    async with httpx.AsyncClient(base_url=embedded.url, timeout=30) as api:
        alice = await person(api)
        event = await event_with(api, alice, template=False)
        topic = f"event:{event['id']}"
        async with RealtimeClient(embedded.ws_url, alice.token) as c:
            reply = await c.join(topic)
        epoch, last = reply["epoch"], reply["offset"]
        await asyncio.gather(*[_chat(api, alice.headers, event["id"], 101, f"w{w}-") for w in range(10)])
        async with RealtimeClient(embedded.ws_url, alice.token) as c:
            reply = await c.join(topic, since=(epoch, last))
            assert reply["recovered"] is False and reply["offset"] == last + 1010
            reply2 = await c.join(f"user:{alice.id}")
            assert reply2["recovered"] is False
            # Nothing replayed on either topic: a replay follows its join reply on this socket, so it would
            # come before a message published on the user's topic after that reply.
            [before] = await notification_sentinel(api, alice.headers, alice.id, c)
            assert [f for f in before if f.get("op") == "msg"] == []
            # ... and one that missed only the last few recovers on the embedded hub as well.
            await c.leave(topic)
            reply = await c.join(topic, since=(epoch, last + 1005))
            assert reply["recovered"] is True
            got = [await c.next(event="chat.message") for _ in range(5)]
            assert [m["offset"] for m in got] == list(range(last + 1006, last + 1011))


async def test_client_reconnects_by_itself_and_resumes(cluster: Cluster) -> None:
    """The packaged client reconnects with backoff and resumes every topic when its socket dies."""
    async with cluster.api() as api:
        alice = await person(api)
        event = await event_with(api, alice, template=False)
        topic = f"event:{event['id']}"
        async with RealtimeClient(cluster.a.ws_url, alice.token) as c:
            await c.join(topic)
            await _chat(api, alice.headers, event["id"], 2, "a")
            first = [await c.next(event="chat.message") for _ in range(2)]
            assert c._ws is not None
            c._ws.transport.abort()  # the network drops the connection
            await _chat(api, alice.headers, event["id"], 3, "b")
            rest = [await c.next(event="chat.message", timeout=LIVENESS) for _ in range(3)]
            assert c.reconnects == 1
            assert [m["offset"] for m in first + rest] == list(range(first[0]["offset"], first[0]["offset"] + 5))
