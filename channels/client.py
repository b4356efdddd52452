"""A Python client for protocol v1: connect, authenticate, join with resume, push, iterate messages, and
reconnect with backoff — resuming every joined topic from the last offset it saw.

    async with RealtimeClient("ws://127.0.0.1:8000/ws", token=token) as client:
        await client.join("event:…")
        await client.push("event:…", "chat.send", {"text": "hi"})
        async for frame in client:          # msg, presence, left, and {"op": "resync"} after a lost resume
            ...
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson
import websockets
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from channels.messages import SUBPROTOCOL

log = logging.getLogger("conversme.client")

# Close codes after which reconnecting would only repeat the failure.
FINAL_CODES = {1008, 1009, 4001, 4029}


class ReplyError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class Closed(Exception):
    def __init__(self, code: int | None, reason: str = "") -> None:
        super().__init__(f"connection closed ({code}) {reason}".strip())
        self.code = code
        self.reason = reason


@dataclass
class _Position:
    epoch: str | None = None
    offset: int = 0


TokenSource = str | Callable[[], Awaitable[str]]


class RealtimeClient:
    def __init__(self, url: str, token: TokenSource, *, origin: str | None = None, header_auth: bool = False,
                 reconnect: bool = True, max_backoff: float = 5.0, queue_size: int = 100_000,
                 open_timeout: float = 10.0) -> None:
        self.url = url
        self._token = token
        self.origin = origin
        self.header_auth = header_auth
        self.reconnect = reconnect
        self.max_backoff = max_backoff
        self.open_timeout = open_timeout
        self.positions: dict[str, _Position] = {}
        self.connection_id: str | None = None
        self.user_id: str | None = None
        self.close_code: int | None = None
        self.reconnects = 0
        self._refs = itertools.count(1)
        self._pending: dict[str, asyncio.Future[dict[str, Any]]] = {}
        # Join replies update positions inside the reader, before any msg that follows them is handled.
        self._on_reply: dict[str, Callable[[dict[str, Any]], None]] = {}
        self._inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue(queue_size)
        self._ws: ClientConnection | None = None
        self._reader: asyncio.Task[None] | None = None
        self._closing = False
        self._connected = asyncio.Event()
        self._resume_task: asyncio.Task[None] | None = None

    async def _get_token(self) -> str:
        return self._token if isinstance(self._token, str) else await self._token()

    # ---- lifecycle ----------------------------------------------------------------------------------

    async def __aenter__(self) -> RealtimeClient:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def connect(self) -> None:
        await self._open()
        self._reader = asyncio.create_task(self._run())

    async def _open(self) -> None:
        token = await self._get_token()
        headers = {"Authorization": f"Bearer {token}"} if self.header_auth else None
        self._ws = await connect(self.url, subprotocols=[websockets.Subprotocol(SUBPROTOCOL)],
                                 additional_headers=headers, origin=websockets.Origin(self.origin) if self.origin
                                 else None, open_timeout=self.open_timeout, max_size=16 * 1024 * 1024,
                                 ping_interval=None)
        ref = self._ref()
        await self._ws.send(orjson.dumps({"op": "auth", "ref": ref, "token": token}).decode())
        while True:
            frame = orjson.loads(await asyncio.wait_for(self._ws.recv(), self.open_timeout))
            if frame.get("op") == "reply" and frame.get("ref") == ref:
                break
        if not frame.get("ok"):
            raise ReplyError(frame["error"]["code"], frame["error"]["message"])
        self.user_id = frame["data"]["userId"]
        self.connection_id = frame["data"]["connectionId"]
        self._connected.set()

    async def close(self) -> None:
        self._closing = True
        if self._ws is not None:
            await self._ws.close()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reader
        self._fail_pending(Closed(1000, "closed by client"))

    def _ref(self) -> str:
        return str(next(self._refs))

    # ---- reading ------------------------------------------------------------------------------------

    async def _run(self) -> None:
        backoff = 0.1
        while True:
            assert self._ws is not None
            try:
                async for raw in self._ws:
                    self._dispatch(orjson.loads(raw))
                code = self._ws.close_code
            except ConnectionClosed as exc:
                code = exc.rcvd.code if exc.rcvd else None
            self._connected.clear()
            self.close_code = code
            self._fail_pending(Closed(code))
            # An expired token (4001) is worth a reconnect only when we can fetch a fresh one.
            final = code in FINAL_CODES and not (code == 4001 and callable(self._token))
            if self._closing or not self.reconnect or final:
                await self._inbox.put({"op": "closed", "code": code})
                return
            while not self._closing:
                await asyncio.sleep(backoff * (0.5 + random.random()))
                backoff = min(backoff * 2, self.max_backoff)
                try:
                    await self._open()
                    self.reconnects += 1
                    backoff = 0.1
                    # Replies to the rejoins are read by this loop, so the rejoins run beside it.
                    self._resume_task = asyncio.create_task(self._resume_all())
                    break
                except Exception as exc:  # the server may still be down: try again
                    log.info("reconnect failed: %s", exc)

    def _dispatch(self, frame: dict[str, Any]) -> None:
        op = frame.get("op")
        if op in ("reply", "pong"):
            hook = self._on_reply.pop(str(frame.get("ref")), None)
            if hook is not None and frame.get("ok"):
                hook(frame.get("data") or {})
            future = self._pending.pop(str(frame.get("ref")), None)
            if future is not None and not future.done():
                future.set_result(frame)
            return
        if op == "msg":
            pos = self.positions.get(frame["topic"])
            if pos is not None:
                if pos.epoch == frame["epoch"] and frame["offset"] <= pos.offset:
                    return  # already seen
                pos.epoch, pos.offset = frame["epoch"], frame["offset"]
        elif op == "left":
            self.positions.pop(frame["topic"], None)
        self._inbox.put_nowait(frame)

    def _fail_pending(self, exc: Exception) -> None:
        for future in self._pending.values():
            if not future.done():
                future.set_exception(exc)
        self._pending.clear()

    async def _resume_all(self) -> None:
        for topic, pos in list(self.positions.items()):
            data = await self.join(topic, (pos.epoch, pos.offset) if pos.epoch else None)
            if not data.get("recovered"):
                self._inbox.put_nowait({"op": "resync", "topic": topic, "epoch": data["epoch"],
                                        "offset": data["offset"]})

    # ---- requests -----------------------------------------------------------------------------------

    async def _request(self, frame: dict[str, Any], timeout: float = 10.0,
                       on_reply: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
        if self._ws is None:
            raise Closed(None, "not connected")
        ref = self._ref()
        if on_reply is not None:
            self._on_reply[ref] = on_reply
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[ref] = future
        await self._ws.send(orjson.dumps({**frame, "ref": ref}).decode())
        reply = await asyncio.wait_for(future, timeout)
        if reply.get("op") == "pong":
            return {}
        if not reply.get("ok"):
            raise ReplyError(reply["error"]["code"], reply["error"]["message"])
        data: dict[str, Any] = reply.get("data") or {}
        return data

    async def wait_connected(self, timeout: float = 30.0) -> None:
        await asyncio.wait_for(self._connected.wait(), timeout)

    async def join(self, topic: str, since: tuple[str, int] | None = None) -> dict[str, Any]:
        frame: dict[str, Any] = {"op": "join", "topic": topic}
        if since is not None:
            frame["since"] = {"epoch": since[0], "offset": since[1]}

        def joined(data: dict[str, Any]) -> None:
            pos = self.positions.setdefault(topic, _Position())
            if data.get("recovered") and since is not None:
                pos.epoch, pos.offset = since  # the missed messages follow and move it forward
            else:
                pos.epoch, pos.offset = data["epoch"], data["offset"]

        return await self._request(frame, on_reply=joined)

    async def leave(self, topic: str) -> None:
        await self._request({"op": "leave", "topic": topic})
        self.positions.pop(topic, None)

    async def push(self, topic: str, event: str, data: dict[str, Any] | None = None) -> dict[str, Any]:
        return await self._request({"op": "push", "topic": topic, "event": event, "data": data or {}})

    async def refresh(self, token: str) -> dict[str, Any]:
        self._token = token
        return await self._request({"op": "refresh", "token": token})

    async def ping(self) -> None:
        await self._request({"op": "ping"})

    async def send_raw(self, text: str) -> None:
        assert self._ws is not None
        await self._ws.send(text)

    # ---- iterating ----------------------------------------------------------------------------------

    async def next(self, timeout: float = 10.0, *, op: str | None = "msg", topic: str | None = None,
                   event: str | None = None) -> dict[str, Any]:
        """The next frame matching the filters (others are dropped)."""
        async with asyncio.timeout(timeout):
            while True:
                frame = await self._inbox.get()
                if frame.get("op") == "closed" and op != "closed":
                    raise Closed(frame.get("code"))
                if (op is None or frame.get("op") == op) and (topic is None or frame.get("topic") == topic) \
                        and (event is None or frame.get("event") == event):
                    return frame

    def pending_frames(self) -> list[dict[str, Any]]:
        out = []
        while not self._inbox.empty():
            out.append(self._inbox.get_nowait())
        return out

    def __aiter__(self) -> AsyncIterator[dict[str, Any]]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[dict[str, Any]]:
        while True:
            frame = await self._inbox.get()
            if frame.get("op") == "closed":
                return
            yield frame
