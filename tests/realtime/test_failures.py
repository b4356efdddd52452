"""Failures: Redis restarted mid-stream (recover or be told `recovered:false`, never a silent gap) and a
graceful SIGTERM (clients get 1012, resume on the other instance and lose nothing)."""

from __future__ import annotations

import asyncio
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from channels.client import RealtimeClient
from tests.realtime.harness import ServerProcess, event_with, free_port, migrate, person, server_env
from tests.waiting import LIVENESS, chat_sentinel, eventually, frames_until, is_msg

# Real server processes: left out of the quick loop (./scripts/test.sh -m "not slow").
pytestmark = pytest.mark.slow


class RedisServer:
    def __init__(self, data: Path) -> None:
        self.port = free_port()
        self.data = data
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        assert binary, "redis-server is required"
        self.proc = subprocess.Popen([binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                                      "--appendonly", "no", "--dir", str(self.data)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + LIVENESS
        while True:
            try:
                if redis.Redis(port=self.port).ping():
                    return
            except redis.ConnectionError:
                pass
            assert time.monotonic() < deadline, "redis did not start"
            time.sleep(0.05)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(10)


@pytest.fixture
def private_cluster(pg_db: str, tmp_path: Path) -> Iterator[tuple[RedisServer, ServerProcess, ServerProcess]]:
    rs = RedisServer(tmp_path)
    rs.start()
    env = server_env(pg_db, rs.url, tmp_path / "data")
    migrate(env)
    a, b = ServerProcess(env).start(), ServerProcess(env).start()
    try:
        yield rs, a, b
    finally:
        a.stop()
        b.stop()
        if rs.proc and rs.proc.poll() is None:
            rs.kill()


def _check_no_silent_gap(frames: list[dict[str, Any]], sent: list[str]) -> None:
    """Within an epoch offsets are contiguous; a jump to a new epoch is announced by a resync."""
    epoch, last = None, None
    resynced = False
    texts = []
    for f in frames:
        if f["op"] == "resync":
            epoch, last, resynced = f["epoch"], f["offset"], True
            continue
        if epoch == f["epoch"] and last is not None:
            assert f["offset"] == last + 1, f"gap: {last} -> {f['offset']}"
        else:
            assert epoch is None, "epoch changed without a resync"
        epoch, last = f["epoch"], f["offset"]
        texts.append(f["data"]["text"])
    assert len(texts) == len(set(texts)), "duplicate delivery"
    if not resynced:
        assert texts == sent, "a message was lost without a resync"


async def test_redis_restart_mid_stream(private_cluster: tuple[RedisServer, ServerProcess, ServerProcess]) -> None:
    rs, a, b = private_cluster
    async with httpx.AsyncClient(base_url=a.url, timeout=30) as api:
        alice, bob = await person(api, "alice"), await person(api, "bob")
        event = await event_with(api, alice, bob, template=False)
        topic = f"event:{event['id']}"
        async with RealtimeClient(a.ws_url, alice.token) as ca, RealtimeClient(b.ws_url, bob.token) as cb:
            await ca.join(topic)
            await cb.join(topic)
            sent: list[str] = []
            for i in range(60):
                if i == 20:
                    rs.kill()  # no persistence: counters, epochs and streams are gone
                if i == 30:
                    rs.start()
                text = f"m{i}-{uuid.uuid4().hex[:4]}"
                r = await api.post(f"/events/{event['id']}/chat", headers=alice.headers, json={"text": text})
                assert r.status_code == 201, r.text  # the write itself never fails with Redis down
                sent.append(text)
                await asyncio.sleep(0.05)  # spread the writes over the outage (pacing, not waiting)
            # Event rooms are sequenced by the database, not Redis: nothing of the room's log was in the Redis that
            # died, so clients are never told to resync — the relay delivered what Redis could not, and a message
            # sent after the 60 comes after every one of them.
            r = await api.post(f"/events/{event['id']}/chat", headers=alice.headers, json={"text": "after"})
            assert r.status_code == 201
            after: list[dict[str, Any]] = []
            for client in (ca, cb):
                frames = await frames_until(
                    client, lambda f: is_msg(f, topic, "chat.message") and f["data"]["text"] == "after",
                    what="the message sent after the restart")
                after.append(frames[-1])
                got = [f for f in frames if f["op"] == "resync" or (f["op"] == "msg" and f["event"] == "chat.message")]
                assert not [f for f in got if f["op"] == "resync"], "told to resync, though the log was intact"
                _check_no_silent_gap(got, [*sent, "after"])
            fa, fb = after
            assert fa["offset"] == fb["offset"] and fa["epoch"] == fb["epoch"]


async def test_sigterm_drains_with_1012_and_clients_resume_elsewhere(
        private_cluster: tuple[RedisServer, ServerProcess, ServerProcess]) -> None:
    _, a, b = private_cluster
    async with httpx.AsyncClient(base_url=b.url, timeout=30) as api:
        alice = await person(api, "alice")
        event = await event_with(api, alice, template=False)
        topic = f"event:{event['id']}"
        # The client's URL list: a load balancer would send the reconnect to a live instance.
        urls = iter([b.ws_url] * 100)
        client = RealtimeClient(a.ws_url, alice.token)
        await client.connect()
        try:
            await client.join(topic)
            sent = []
            for i in range(5):
                text = f"before{i}"
                await api.post(f"/events/{event['id']}/chat", headers=alice.headers, json={"text": text})
                sent.append(text)
            client.url = next(urls)
            assert a.proc is not None
            a.proc.send_signal(signal.SIGTERM)
            for i in range(5):
                text = f"during{i}"
                await api.post(f"/events/{event['id']}/chat", headers=alice.headers, json={"text": text})
                sent.append(text)
            # uvicorn re-raises the signal after its graceful shutdown, so the status reports SIGTERM.
            assert a.proc.wait(LIVENESS) in (0, -signal.SIGTERM)
            assert "Traceback" not in a.log()
            # The client comes back on the other instance and resumes.
            await eventually(lambda: client.reconnects > 0, what="the client to reconnect")
            assert client.close_code == 1012
            for i in range(3):
                text = f"after{i}"
                await api.post(f"/events/{event['id']}/chat", headers=alice.headers, json={"text": text})
                sent.append(text)
            got = [await client.next(event="chat.message", timeout=LIVENESS) for _ in range(13)]
            assert [m["data"]["text"] for m in got] == sent
            assert [m["offset"] for m in got] == list(range(got[0]["offset"], got[0]["offset"] + 13))
            # Nothing more (no duplicate, no resync) before a message sent after them.
            before, sentinel = await chat_sentinel(client, topic)
            assert [f for f in before if f.get("op") in ("msg", "resync")] == []
            assert sentinel["offset"] == got[-1]["offset"] + 1
        finally:
            await client.close()
