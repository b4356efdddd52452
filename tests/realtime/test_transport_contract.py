"""The fast path's contract (server/transport.py), per supported server: through a real uvicorn on a real socket,
frames handed over the way a connection hands them (at once where the transport allows, else awaited, in
order) arrive whole and in order, past the transport's pause (more bytes than its write buffer holds), a
frame the client sends reaches the app, the app's close code and reason arrive, and a server shutdown ends an
open socket with 1012. Also the plain-`send` fallback, for a `send` the transport does not know."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
import uvicorn
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from server import transport
from server.cli import WS_PROTOCOLS
from tests.realtime.harness import free_port

# Small frames, then frames large enough that the transport's write buffer (64 KiB) fills and pauses it.
FRAMES = [f"small {i}" for i in range(300)] + [f"large {i} " + "x" * 20_000 for i in range(60)]
CLOSE_CODE, CLOSE_REASON = 4321, "done here"


def app(kinds: list[str], wrap_send: bool = False, held: asyncio.Event | None = None) -> Any:
    async def asgi(scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert scope["type"] == "websocket"
        if wrap_send:  # an ASGI middleware that wraps `send`: the transport cannot know it
            inner = send

            async def send(message: dict[str, Any]) -> None:
                await inner(message)
        assert (await receive())["type"] == "websocket.connect"
        await send({"type": "websocket.accept", "subprotocol": (scope["subprotocols"] or [None])[0]})
        kinds.append(transport.kind_of(send))
        hello = await receive()
        if scope["path"] == "/idle":  # stays open until the server shuts down
            assert held is not None
            held.set()
            await receive()
            return
        nowait = transport.sink_for(send)
        for text in [f"echo {hello.get('text')}", *FRAMES]:
            pending = nowait(text)
            if pending is not None:  # as server/ws_connection.py's Connection: finish this one before the next
                await pending
        await send({"type": "websocket.close", "code": CLOSE_CODE, "reason": CLOSE_REASON})
        while (await receive())["type"] != "websocket.disconnect":
            pass
    return asgi


@contextlib.asynccontextmanager
async def serving(ws: str, asgi: Any) -> AsyncIterator[tuple[int, uvicorn.Server]]:
    port = free_port()
    config = uvicorn.Config(asgi, host="127.0.0.1", port=port, ws=ws, ws_per_message_deflate=False,
                            ws_ping_interval=20, ws_ping_timeout=20, lifespan="off", log_level="warning")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        assert not task.done(), "the server did not start"
        await asyncio.sleep(0.01)
    try:
        yield port, server
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 30)


SERVERS = [(WS_PROTOCOLS["lean"], "lean"), ("websockets-sansio", "driven"), ("websockets", "driven")]


@pytest.mark.parametrize(("ws", "kind", "wrap"), [(ws, kind, False) for ws, kind in SERVERS]
                         + [("websockets-sansio", "plain", True), (WS_PROTOCOLS["lean"], "plain", True)])
async def test_frames_arrive_in_order_then_the_close_code(ws: str, kind: str, wrap: bool) -> None:
    kinds: list[str] = []
    async with (serving(ws, app(kinds, wrap)) as (port, _),
                connect(f"ws://127.0.0.1:{port}/ws", subprotocols=["conversme.v1"],  # type: ignore[list-item]
                        max_size=None) as client):
        assert client.subprotocol == "conversme.v1"
        await client.send("hello")
        got: list[str | bytes] = []
        with pytest.raises(ConnectionClosed):
            while True:
                got.append(await asyncio.wait_for(client.recv(), 30))
        assert client.close_code == CLOSE_CODE
        assert client.close_reason == CLOSE_REASON
    assert kinds == [kind]
    assert got == ["echo hello", *FRAMES]


@pytest.mark.parametrize("ws", [ws for ws, _ in SERVERS])
async def test_server_shutdown_closes_an_open_socket_with_1012(ws: str) -> None:
    held = asyncio.Event()
    async with serving(ws, app([], held=held)) as (port, server):
        client = await connect(f"ws://127.0.0.1:{port}/idle")
        await client.send("hello")
        await asyncio.wait_for(held.wait(), 30)  # accepted and past `hello`: the app holds the socket
        server.should_exit = True
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(client.recv(), 30)
        assert client.close_code == 1012
