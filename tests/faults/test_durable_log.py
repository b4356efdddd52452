"""The durable topic log through instance and Redis faults: every committed change reaches every member of its
room once, in commit order, or the member is told (`recovered:false`) — checked against the database's committed
rows. Private Redis processes (tests/faults/services.py) are killed and restarted here, never the shared one."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import httpx
import orjson
import pytest

from channels.client import RealtimeClient
from tests.conftest import fresh_pg_database
from tests.faults.services import PrivatePostgres, PrivateRedis
from tests.realtime.harness import Person, ServerProcess, event_with, migrate, person, server_env
from tests.waiting import eventually, frames_until, is_msg

pytestmark = pytest.mark.slow

Frame = dict[str, Any]


@dataclass
class Stack:
    redis: PrivateRedis
    env: dict[str, str]
    database_url: str
    a: ServerProcess
    b: ServerProcess


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[Stack]:
    async with fresh_pg_database("faults") as db_url:
        rs = PrivateRedis(tmp_path / "redis")
        env = server_env(db_url, rs.url, tmp_path / "data")
        a, b = ServerProcess(env), ServerProcess(env)
        try:  # whatever started is stopped, also when a later start fails
            rs.start()
            migrate(env)
            a.start()
            b.start()
            yield Stack(rs, env, db_url, a, b)
        finally:
            a.stop(sig=9)
            b.stop(sig=9)
            rs.stop()


async def committed(database_url: str, event_id: str) -> list[str]:
    """The room's chat lines the database committed, in commit (log) order."""
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch("SELECT frame FROM topic_log WHERE topic = $1 ORDER BY seq", f"event:{event_id}")
    finally:
        await conn.close()
    frames = [orjson.loads(r["frame"]) for r in rows]
    return [f["data"]["text"] for f in frames if f["event"] == "chat.message"]


async def chat_rows(database_url: str, event_id: str) -> set[str]:
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch("SELECT text FROM chat_messages WHERE event_id = $1", uuid.UUID(event_id))
    finally:
        await conn.close()
    return {r["text"] for r in rows}


def figures(fault: str, **values: Any) -> None:
    """The run's figures, for the record (`pytest tests/faults -s` prints them); never asserted on time."""
    print(f"\nFAULT {fault}: " + ", ".join(f"{k}={v}" for k, v in values.items()))


async def until_text(client: RealtimeClient, topic: str, text: str) -> list[Frame]:
    return await frames_until(client, lambda f: is_msg(f, topic, "chat.message") and f["data"]["text"] == text,
                              what=f"{text!r} on {topic}")


def check_stream(frames: list[Frame], topic: str) -> list[str]:
    """No resync, offsets contiguous in one epoch, no duplicate: returns the chat texts in order."""
    assert not [f for f in frames if f.get("op") == "resync"], "a client was told to resync"
    msgs = [f for f in frames if is_msg(f, topic)]
    assert len({f["epoch"] for f in msgs}) <= 1, "the epoch changed"
    offsets = [f["offset"] for f in msgs]
    assert offsets == list(range(offsets[0], offsets[0] + len(offsets))), f"gap or duplicate: {offsets}"
    return [f["data"]["text"] for f in msgs if f["event"] == "chat.message"]


async def room(stack: Stack) -> tuple[Person, Person, dict[str, Any], str]:
    async with httpx.AsyncClient(base_url=stack.b.url, timeout=30) as api:
        alice, bob = await person(api, "alice"), await person(api, "bob")
        event = await event_with(api, alice, bob, template=False)
    return alice, bob, event, f"event:{event['id']}"


async def test_lines_committed_by_an_instance_killed_right_after_reach_everyone(stack: Stack) -> None:
    """Many rounds: a burst of writes to A, A killed (-9) as soon as the first of them is answered, so some
    commit without A living to publish them. Members on B get every committed line, once, in order."""
    alice, bob, event, topic = await room(stack)
    async with httpx.AsyncClient(base_url=stack.b.url, timeout=30) as api, \
            RealtimeClient(stack.b.ws_url, bob.token) as watcher:
        await watcher.join(topic)
        frames: list[Frame] = []
        answered_total = 0
        for round_ in range(4):
            a = stack.a if round_ == 0 else ServerProcess(stack.env).start()
            async with httpx.AsyncClient(base_url=a.url, timeout=30) as on_a:
                burst = [asyncio.create_task(on_a.post(f"/events/{event['id']}/chat", headers=alice.headers,
                                                       json={"text": f"r{round_}-{i}"})) for i in range(12)]
                await asyncio.wait(burst, return_when=asyncio.FIRST_COMPLETED)
                a.stop(sig=9)
                results = await asyncio.gather(*burst, return_exceptions=True)
            answered = {f"r{round_}-{i}" for i, r in enumerate(results)
                        if isinstance(r, httpx.Response) and r.status_code == 201}
            assert answered, "no write was answered before the kill"
            answered_total += len(answered)
            # Everything answered 201 is committed (never the other way round).
            assert answered <= await chat_rows(stack.database_url, event["id"])
        sentinel = f"sentinel-{uuid.uuid4().hex[:6]}"
        r = await api.post(f"/events/{event['id']}/chat", headers=alice.headers, json={"text": sentinel})
        assert r.status_code == 201
        frames += await until_text(watcher, topic, sentinel)
        got = check_stream(frames, topic)
        # Exactly what the database committed, in its order: nothing lost, nothing twice.
        assert got == await committed(stack.database_url, event["id"])
        assert set(got) == await chat_rows(stack.database_url, event["id"])
        figures("instance killed mid-commit (4 rounds x 12 writes)", answered_201=answered_total,
                committed=len(got) - 1, delivered=len(got) - 1, duplicates=0, resyncs=0)


async def test_redis_down_and_an_instance_killed_loses_nothing(stack: Stack) -> None:
    """Redis dies; writes go on (201) through A; A is killed; Redis comes back empty. Members that stayed on B
    got every line (the relay reads the log); a member that was on A resumes on B with recovered:true and
    every line it missed."""
    alice, bob, event, topic = await room(stack)
    async with httpx.AsyncClient(base_url=stack.b.url, timeout=30) as api, \
            RealtimeClient(stack.b.ws_url, bob.token) as stayer, \
            RealtimeClient(stack.a.ws_url, alice.token, reconnect=False) as mover:
        await stayer.join(topic)
        joined = await mover.join(topic)
        position = (joined["epoch"], joined["offset"])
        stack.redis.kill()
        async with httpx.AsyncClient(base_url=stack.a.url, timeout=30) as on_a:
            for i in range(20):
                r = await on_a.post(f"/events/{event['id']}/chat", headers=alice.headers, json={"text": f"d{i}"})
                assert r.status_code == 201, r.text
        stack.a.stop(sig=9)
        stack.redis.restart(empty=True)
        back_at = time.monotonic()
        sentinel = f"sentinel-{uuid.uuid4().hex[:6]}"
        r = await api.post(f"/events/{event['id']}/chat", headers=alice.headers, json={"text": sentinel})
        assert r.status_code == 201
        stayed = check_stream(await until_text(stayer, topic, sentinel), topic)
        recovered_in = time.monotonic() - back_at
        assert stayed == [f"d{i}" for i in range(20)] + [sentinel]
    async with RealtimeClient(stack.b.ws_url, alice.token) as resumed:
        reply = await resumed.join(topic, since=position)
        assert reply["recovered"] is True
        back = check_stream(await until_text(resumed, topic, sentinel), topic)
        assert back == [f"d{i}" for i in range(20)] + [sentinel]
    assert stayed == await committed(stack.database_url, event["id"])
    figures("Redis down, then the writing instance killed, Redis back empty", committed=len(stayed),
            delivered_stayer=len(stayed), delivered_resumed=len(back), recovered=reply["recovered"],
            answered_503=0, sentinel_after_redis_back_s=round(recovered_in, 2))


@pytest.mark.parametrize("how", ["empty", "older_snapshot"])
async def test_redis_losing_or_rewinding_its_data_costs_no_history(stack: Stack, how: str) -> None:
    """Redis restarted empty, or from a snapshot older than the last writes: event rooms keep their offsets and
    epoch (the database holds the log), connected members miss nothing, and a member away across it resumes
    with recovered:true and exactly the lines it missed."""
    alice, bob, event, topic = await room(stack)
    async with httpx.AsyncClient(base_url=stack.b.url, timeout=30) as api, \
            RealtimeClient(stack.b.ws_url, bob.token) as stayer:
        await stayer.join(topic)
        async with RealtimeClient(stack.a.ws_url, alice.token, reconnect=False) as away:
            joined = await away.join(topic)
        position = (joined["epoch"], joined["offset"])
        for i in range(5):
            assert (await api.post(f"/events/{event['id']}/chat", headers=alice.headers,
                                   json={"text": f"before{i}"})).status_code == 201
        stack.redis.snapshot()
        for i in range(5):
            assert (await api.post(f"/events/{event['id']}/chat", headers=alice.headers,
                                   json={"text": f"late{i}"})).status_code == 201
        stack.redis.restart(empty=how == "empty")
        for i in range(5):
            assert (await api.post(f"/events/{event['id']}/chat", headers=alice.headers,
                                   json={"text": f"after{i}"})).status_code == 201
        expected = [f"before{i}" for i in range(5)] + [f"late{i}" for i in range(5)] + [f"after{i}" for i in range(5)]
        assert check_stream(await until_text(stayer, topic, "after4"), topic) == expected
    async with RealtimeClient(stack.a.ws_url, alice.token) as back:
        reply = await back.join(topic, since=position)
        assert reply["recovered"] is True and reply["epoch"] == position[0]
        assert check_stream(await until_text(back, topic, "after4"), topic) == expected
    assert expected == await committed(stack.database_url, event["id"])
    figures(f"Redis restarted ({how})", committed=len(expected), delivered_stayer=len(expected),
            delivered_resumed=len(expected), recovered=True, same_epoch=True)


async def test_a_stalled_redis_duplicates_nothing(stack: Stack) -> None:
    """Redis paused (busy, not down) while lines are written, then resumed: every line once, in order."""
    alice, bob, event, topic = await room(stack)
    async with httpx.AsyncClient(base_url=stack.b.url, timeout=30) as api, \
            RealtimeClient(stack.a.ws_url, bob.token) as watcher:
        await watcher.join(topic)
        stack.redis.pause()
        paused_at = time.monotonic()
        try:
            for i in range(10):
                r = await api.post(f"/events/{event['id']}/chat", headers=alice.headers, json={"text": f"s{i}"})
                assert r.status_code == 201, r.text
        finally:
            stack.redis.resume()
        r = await api.post(f"/events/{event['id']}/chat", headers=alice.headers, json={"text": "done"})
        assert r.status_code == 201
        got = check_stream(await until_text(watcher, topic, "done"), topic)
        assert got == [f"s{i}" for i in range(10)] + ["done"]
        assert got == await committed(stack.database_url, event["id"])
        figures("Redis stalled (SIGSTOP) during writes", committed=len(got), delivered=len(got), duplicates=0,
                stall_to_done_s=round(time.monotonic() - paused_at, 2))


async def test_postgres_restarted_during_writes_every_answered_line_arrives_once(tmp_path: Path) -> None:
    """A private PostgreSQL restarted (as after a crash) in the middle of a stream of writes: lines answered 201
    reach every member once, in order; lines answered 503 were never committed and never arrive; no 500."""
    pg = PrivatePostgres(tmp_path)
    rs = PrivateRedis(tmp_path / "redis")
    a: ServerProcess | None = None
    b: ServerProcess | None = None
    try:  # whatever started is stopped, also when a later start fails
        pg.init().start()
        rs.start()
        db_url = pg.createdb("faults")
        env = server_env(db_url, rs.url, tmp_path / "data")
        migrate(env)
        a = ServerProcess(env).start()
        b = ServerProcess(env).start()
        stack = Stack(rs, env, db_url, a, b)
        alice, bob, event, topic = await room(stack)
        statuses: dict[str, int] = {}
        async with httpx.AsyncClient(base_url=a.url, timeout=30) as api, \
                RealtimeClient(b.ws_url, bob.token) as watcher:
            await watcher.join(topic)
            restart: asyncio.Task[None] | None = None
            restarted_at: int | None = None
            i = 0
            # Writes go on while PostgreSQL is down and coming back (the restart runs in a thread), and a few after.
            while restarted_at is None or i < restarted_at + 10:
                if i == 5:
                    restart = asyncio.create_task(asyncio.to_thread(pg.restart, "immediate"))
                if restart is not None and restart.done() and restarted_at is None:
                    restarted_at = i
                text = f"p{i}"
                r = await api.post(f"/events/{event['id']}/chat", headers=alice.headers, json={"text": text})
                assert r.status_code in (201, 503), r.text  # degrade, never 500
                if r.status_code == 503:
                    assert r.headers.get("retry-after")
                statuses[text] = r.status_code
                i += 1
                assert i < 5000, "the restart did not finish"
            assert restart is not None
            await restart
            async def after() -> bool:  # 503 until the pool has a live connection again (nothing committed)
                r = await api.post(f"/events/{event['id']}/chat", headers=alice.headers, json={"text": "after"})
                assert r.status_code in (201, 503), r.text
                return r.status_code == 201

            await eventually(after, what="a write after the restart")
            got = check_stream(await until_text(watcher, topic, "after"), topic)
        answered = [t for t, code in statuses.items() if code == 201]
        figures("PostgreSQL restarted during writes", answered_201=len(answered),
                answered_503=len(statuses) - len(answered), answered_500=0, delivered=len(got) - 1)
        assert got == [*answered, "after"]
        assert set(got) == await chat_rows(db_url, event["id"])
        assert got == await committed(db_url, event["id"])
    finally:
        for server in (a, b):
            if server is not None:
                server.stop(sig=9)
        rs.stop()
        pg.destroy()
