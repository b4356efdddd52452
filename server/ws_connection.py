"""One client socket's outbound side: a hub Listener whose frames are written at once while the socket is
writable, queued (bounded, coalesced, a slow consumer cut off) while it is paused, and drained by one writer task,
so two tasks never write at once. Hub deliveries arrive already encoded (once per broadcast)."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.types import Send
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from channels import messages as m
from channels.hub import Hub
from channels.protocol import Close, ConnectionProtocol
from persistence.models import User
from server import transport
from server.state import AppState


class TopicView:
    __slots__ = ("buffer", "last", "ready")

    def __init__(self) -> None:
        self.ready = False
        self.last = 0
        self.buffer: list[tuple[int, str]] = []


# The queue of every connection whose socket is writable: frames are written at once, so almost every
# connection's queue is empty, and an empty deque still costs ~0.7 KiB. A connection gets a deque of its own
# only while its socket is paused (enqueue), and gives it back once drained (_write). Never appended to.
_NO_QUEUE: deque[str] = deque()


class Connection:
    """One client socket: its protocol state, its topics and its outbound queue. A hub `Listener`."""

    # Thousands of these live at once: slots instead of a __dict__ each.
    __slots__ = ("_coalesce", "busy", "close_code", "close_reason", "hub", "id", "inflight", "max_queue_bytes",
                 "proto", "queue", "queued_bytes", "received", "send", "send_nowait", "sent", "session_id", "state",
                 "user", "user_id", "views", "writer", "ws")

    def __init__(self, ws: WebSocket, state: AppState, proto: ConnectionProtocol, max_queue_bytes: int,
                 coalesce: Callable[[deque[str]], int] | None = None, send: Send | None = None,
                 conn_id: str | None = None) -> None:
        self.ws = ws
        self.state = state
        self.hub: Hub = state.hub
        self.proto = proto
        self.id = conn_id or uuid.uuid4().hex
        self.user_id = proto.user_id or ""
        self.session_id: str | None = None  # the sign-in session of the token; the socket ends with it
        self.user: User | None = None
        self.views: dict[str, TopicView] = {}
        self.queue = _NO_QUEUE
        self.queued_bytes = 0
        self.busy = False  # the writer task owns sending until it has drained the queue
        self.inflight: Awaitable[None] | None = None
        # Frames go out through the server's ASGI send (not Starlette's per-call state checks), at once where
        # server/transport.py knows how; Starlette's public `send` when the raw one was not handed to us.
        self.send: Send = send or ws.send
        self.send_nowait = transport.sink_for(self.send)
        self.max_queue_bytes = max_queue_bytes
        # Started only while there is something to wait for (a paused socket, a queue, a close): an idle
        # connection holds no task of its own.
        self.writer: asyncio.Task[None] | None = None
        self.close_code: int | None = None
        self.close_reason = ""
        self.sent = 0
        self.received = 0
        self._coalesce = coalesce

    # ---- outbound ------------------------------------------------------------------------------------

    def enqueue(self, text: str) -> None:
        if self.close_code is not None:
            return
        if not self.busy and not self.queue:
            # The common case: the socket is writable, so write now, without waking the writer task
            # (one task switch saved per delivered frame, which is most of the cost of a fan-out).
            try:
                pending = self.send_nowait(text)
            except Exception:
                self.request_close(Close.NORMAL, "peer gone")
                return
            self.sent += 1
            if pending is not None:  # the transport is paused: the writer finishes this send first
                self.busy = True
                self.inflight = pending
                self._ensure_writer()
            return
        size = len(text)
        if self.queued_bytes + size > self.max_queue_bytes:
            if self._coalesce is not None:
                self.queued_bytes -= self._coalesce(self.queue)
            if self.queued_bytes + size > self.max_queue_bytes:
                # A slow consumer is cut off so that everyone else keeps receiving.
                self.queue.clear()
                self.queued_bytes = 0
                self.request_close(Close.SLOW_CONSUMER, "slow consumer")
                return
        if self.queue is _NO_QUEUE:
            self.queue = deque()
        self.queue.append(text)
        self.queued_bytes += size
        self.busy = True
        self._ensure_writer()

    def flush_protocol(self) -> None:
        for text in self.proto.data_to_send():
            self.enqueue(text)
        if self.proto.close_code is not None and self.close_code is None:
            self.request_close(self.proto.close_code, self.proto.close_reason)

    def request_close(self, code: int, reason: str = "") -> None:
        if self.close_code is None:
            self.close_code = code
            self.close_reason = reason
            self._ensure_writer()

    def _ensure_writer(self) -> None:
        if self.writer is None or self.writer.done():
            self.writer = asyncio.get_running_loop().create_task(self._write())

    async def _write(self) -> None:
        """The single writer while it runs: finish a paused send, drain the queue in order, and close the
        socket once a close was requested (after what was queued, so a drain with 1012 loses nothing)."""
        try:
            if self.inflight is not None:
                await self.inflight
                self.inflight = None
            while self.queue:
                text = self.queue.popleft()
                self.queued_bytes -= len(text)
                await self.send({"type": "websocket.send", "text": text})
                self.sent += 1
            self.queue = _NO_QUEUE
            self.busy = False
            if self.close_code is None:
                return
        except (WebSocketDisconnect, RuntimeError, OSError):  # uvicorn raises ClientDisconnected (an OSError)
            self.close_code = self.close_code or Close.NORMAL
        with contextlib.suppress(Exception):
            if self.ws.application_state == WebSocketState.CONNECTED:
                await self.ws.close(self.close_code or Close.NORMAL, self.close_reason[:120])

    # ---- hub listener --------------------------------------------------------------------------------

    def on_msg(self, topic: str, offset: int, frame: str) -> None:
        view = self.views.get(topic)
        if view is None:
            return
        if not view.ready:
            view.buffer.append((offset, frame))
        elif offset > view.last:
            view.last = offset
            self.enqueue(frame)

    def on_presence(self, topic: str, frame: str) -> None:
        view = self.views.get(topic)
        if view is not None and view.ready:
            self.enqueue(frame)

    def on_removed(self, topic: str, user_id: str, reason: m.LeftReason) -> None:
        if user_id in (self.user_id, "*") and topic in self.views:
            self.proto.removed(topic, reason)
            self.flush_protocol()
            del self.views[topic]
            self._spawn(self._drop(topic))

    def on_resync(self, topic: str) -> None:
        # The hub could not prove this topic's log has no gap: the client reconnects and resumes.
        self.request_close(Close.RESTART, "resync")

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self.state.background.add(task)
        task.add_done_callback(self.state.background.discard)

    async def _drop(self, topic: str) -> None:
        with contextlib.suppress(Exception):
            await self.hub.unsubscribe(topic, self)
            await self.hub.untrack(topic, self.id, self.user_id)
