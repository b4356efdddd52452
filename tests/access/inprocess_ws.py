"""A WebSocket client that talks to the app in this process: the ASGI `websocket` scope driven by two queues.

The app's lifespan (engine, hub) lives on the test's event loop, so the socket must too: Starlette's TestClient
would run the app in a thread with a loop of its own."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import orjson
from starlette.types import ASGIApp, Message

from tests.waiting import LIVENESS


class Closed(Exception):
    def __init__(self, code: int) -> None:
        super().__init__(f"closed with {code}")
        self.code = code


class InProcessSocket:
    def __init__(self) -> None:
        self.inbound: asyncio.Queue[Message] = asyncio.Queue()   # what the app receives
        self.outbound: asyncio.Queue[Message] = asyncio.Queue()  # what the app sent

    async def send(self, frame: dict[str, Any] | str) -> None:
        text = frame if isinstance(frame, str) else orjson.dumps(frame).decode()
        await self.inbound.put({"type": "websocket.receive", "text": text})

    async def recv(self) -> dict[str, Any]:
        """The next frame the server sent; `Closed` once it closed the socket."""
        message = await asyncio.wait_for(self.outbound.get(), LIVENESS)
        if message["type"] == "websocket.close":
            raise Closed(int(message.get("code", 1000)))
        assert message["type"] == "websocket.send", message
        frame: dict[str, Any] = orjson.loads(message["text"])
        return frame

    async def reply(self, ref: str) -> dict[str, Any]:
        """The reply to the frame `ref` (other frames before it, such as presence, are skipped)."""
        while True:
            frame = await self.recv()
            if frame.get("op") == "reply" and frame.get("ref") == ref:
                return frame

    async def close_code(self) -> int:
        """Read until the server closes; its close code."""
        try:
            while True:
                await self.recv()
        except Closed as closed:
            return closed.code


@contextlib.asynccontextmanager
async def websocket(app: ASGIApp, headers: dict[str, str] | None = None) -> AsyncIterator[InProcessSocket]:
    """`GET /ws` upgraded, accepted (or closed: the first `recv` says so); disconnects on leaving."""
    sock = InProcessSocket()
    scope = {
        "type": "websocket", "asgi": {"version": "3.0", "spec_version": "2.3"}, "http_version": "1.1",
        "scheme": "ws", "server": ("test", 80), "client": ("127.0.0.1", 50000), "root_path": "",
        "path": "/ws", "raw_path": b"/ws", "query_string": b"", "subprotocols": ["conversme.v1"],
        "headers": [(b"host", b"test"), *((k.lower().encode(), v.encode()) for k, v in (headers or {}).items())],
    }
    connected = False

    async def receive() -> Message:
        nonlocal connected
        if not connected:
            connected = True
            return {"type": "websocket.connect"}
        return await sock.inbound.get()

    async def send(message: Message) -> None:
        if message["type"] == "websocket.accept":
            return
        await sock.outbound.put(message)

    async def serve() -> None:
        await app(scope, receive, send)

    task = asyncio.get_running_loop().create_task(serve())
    try:
        yield sock
    finally:
        await sock.inbound.put({"type": "websocket.disconnect", "code": 1000})
        await asyncio.wait_for(task, LIVENESS)
