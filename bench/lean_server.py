"""The lean baseline for bench/ws_fanout.py: Starlette + redis.asyncio pub/sub, one subscription per room per
process, local fan-out, no auth, no history, no queue. Run: uvicorn bench.lean_server:app."""

from __future__ import annotations

import asyncio
import os

from redis.asyncio import Redis
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
rooms: dict[str, set[WebSocket]] = {}
readers: dict[str, asyncio.Task[None]] = {}
redis = Redis.from_url(REDIS_URL)


async def _reader(room: str) -> None:
    pubsub = redis.pubsub()
    await pubsub.subscribe(f"lean:{room}")
    async for message in pubsub.listen():
        if message["type"] != "message":
            continue
        text = message["data"].decode()
        for ws in list(rooms.get(room, ())):
            try:
                await ws.send_text(text)
            except Exception:
                rooms[room].discard(ws)


async def endpoint(ws: WebSocket) -> None:
    room = ws.query_params.get("room", "r")
    await ws.accept()
    rooms.setdefault(room, set()).add(ws)
    if room not in readers:
        readers[room] = asyncio.create_task(_reader(room))
    try:
        while True:
            await ws.receive_text()
    except WebSocketDisconnect:
        pass
    finally:
        rooms[room].discard(ws)


app = Starlette(routes=[WebSocketRoute("/ws", endpoint)])
