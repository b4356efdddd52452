"""A client that stops reading is closed with 4008 while the others receive everything."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator

import httpx
import orjson
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from channels.client import RealtimeClient
from tests.realtime.harness import ServerProcess, event_with, person, run_embedded

# Real server processes: left out of the quick loop (./scripts/test.sh -m "not slow").
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def small_queue_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with run_embedded(tmp_path_factory.mktemp("slow"), WS_MAX_QUEUE_BYTES=str(64 * 1024)) as server:
        yield server


async def test_slow_consumer_is_cut_off_and_the_others_get_everything(small_queue_server: ServerProcess) -> None:
    server = small_queue_server
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as api:
        alice, bob = await person(api, "alice"), await person(api, "bob")
        event = await event_with(api, alice, bob, template=False)
        topic = f"event:{event['id']}"
        # Bob's socket has a tiny receive buffer and Bob never reads: the server's queue for him fills up.
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect, so the window stays small
        sock.connect(("127.0.0.1", server.port))
        async with connect(server.ws_url, sock=sock, max_queue=1) as slow, \
                RealtimeClient(server.ws_url, alice.token) as fast:
            await slow.send(orjson.dumps({"op": "auth", "ref": "1", "token": bob.token}).decode())
            await slow.recv()
            await slow.send(orjson.dumps({"op": "join", "ref": "2", "topic": topic}).decode())
            await slow.recv()
            await fast.join(topic)
            text = "x" * 19_000
            sem = asyncio.Semaphore(4)

            async def send(i: int) -> None:
                async with sem:
                    r = await api.put(f"/events/{event['id']}", headers=alice.headers,
                                      json={"description": f"{i}{text}"})
                    assert r.status_code == 200

            # ~8 MB of event.updated frames: beyond the 64 KiB queue plus what the kernel buffers (~4 MB here).
            total = 400
            await asyncio.gather(*[send(i) for i in range(total)])
            got = [await fast.next(event="event.updated", timeout=30) for _ in range(total)]
            offsets = [m["offset"] for m in got]
            assert offsets == list(range(offsets[0], offsets[0] + total))
            code = None
            try:
                async with asyncio.timeout(30):
                    while True:
                        await slow.recv()
            except ConnectionClosed as exc:
                code = exc.rcvd.code if exc.rcvd else None
            assert code == 4008
