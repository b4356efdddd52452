"""The websockets-library baseline for bench/ws_fanout.py and bench/ws_storm.py: the same shape as
bench/lean_server.py (redis.asyncio pub/sub, one subscription per room per process, local fan-out, no auth, no
history, no queue), served by `websockets` itself instead of uvicorn + Starlette.

    python -m bench.websockets_server --port N      (room from the query string: /ws?room=R, channel lean:R)
"""

from __future__ import annotations

import argparse
import asyncio
import os
from urllib.parse import parse_qs, urlsplit

from redis.asyncio import Redis
from websockets.asyncio.server import ServerConnection, broadcast, serve

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
rooms: dict[str, set[ServerConnection]] = {}
readers: dict[str, asyncio.Task[None]] = {}
redis = Redis.from_url(REDIS_URL)


async def _reader(room: str) -> None:
    pubsub = redis.pubsub()
    await pubsub.subscribe(f"lean:{room}")
    async for message in pubsub.listen():
        if message["type"] == "message":
            # websockets' own fan-out: writes without awaiting each socket (a slow one is skipped, not waited on).
            broadcast(rooms.get(room, ()), message["data"].decode())


async def handler(ws: ServerConnection) -> None:
    assert ws.request is not None
    room = parse_qs(urlsplit(ws.request.path).query).get("room", ["r"])[0]
    rooms.setdefault(room, set()).add(ws)
    if room not in readers:
        readers[room] = asyncio.create_task(_reader(room))
    try:
        async for _ in ws:
            pass
    finally:
        rooms[room].discard(ws)


async def main(port: int) -> None:
    async with serve(handler, "127.0.0.1", port, compression=None, backlog=16384) as server:
        await server.serve_forever()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, required=True)
    asyncio.run(main(parser.parse_args().port))
