"""The WebSocket pump: the only code that knows there is a socket.

One reader loop feeds frames to the sans-I/O protocol and carries out its commands (server/ws_commands.py), one
short database transaction per command; each connection's outbound queue and writer are server/ws_connection.py.
This module is the socket's life: the handshake, the read loop, the goodbye, and the instance's view of them all."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from typing import Any

from starlette.types import Send
from starlette.websockets import WebSocket

from channels import messages as m
from channels.coalesce import coalesce_deltas
from channels.protocol import Close, ConnectionProtocol, Limits, State
from persistence.errors import Unauthorized
from persistence.models import User
from server.errors import unavailable, ws_code
from server.middleware import request_id_var
from server.state import AppState
from server.ws_auth import origin_allowed, to_monotonic, verify
from server.ws_commands import carry_out
from server.ws_connection import Connection

log = logging.getLogger("conversme.ws")


async def websocket_endpoint(ws: WebSocket, send: Send | None = None) -> None:
    """`/ws`. `send`: the server's own ASGI send under `ws`, for the fast path (server/transport.py)."""
    # The socket's log lines carry its connection id (its task has a context of its own): one string, not two.
    conn_id = uuid.uuid4().hex
    request_id_var.set(conn_id)
    state: AppState = ws.app.state.conversme
    settings = state.settings
    if not origin_allowed(ws, settings.allowed_origins):
        await ws.close(code=1008)
        return
    offered = ws.scope.get("subprotocols") or []
    if state.ws_limits is None:  # the same for every socket: made once, not once per connection
        state.ws_limits = Limits(auth_timeout=settings.ws_auth_timeout, heartbeat=settings.ws_heartbeat,
                                 push_burst=settings.ws_push_burst, push_rate=settings.ws_push_rate,
                                 max_topics=settings.ws_max_topics)
    limits = state.ws_limits
    header = ws.headers.get("authorization", "")
    user: User | None = None
    expires_at: float | None = None
    session_id: str | None = None
    header_error: str | None = None
    header_close = Close.UNAUTHENTICATED
    if header.lower().startswith("bearer "):
        try:
            user, expires_at, session_id = await verify(state, header[7:].strip())
        except Unauthorized as exc:
            header_error = exc.message
        except Exception as exc:
            if unavailable(exc) is None:
                raise
            # The database did not answer: 1011 (not a 500 on the upgrade) makes the client reconnect with backoff.
            header_error, header_close = "unavailable", Close.INTERNAL
    await ws.accept(subprotocol=m.SUBPROTOCOL if m.SUBPROTOCOL in offered else None)
    if isinstance(raw_headers := ws.scope.get("headers"), list):
        # Everything the socket needs from its handshake is read: an idle socket need not keep ~1 KiB of
        # headers (the scope stays referenced for the socket's life by the server's task and by `ws`).
        raw_headers.clear()
    if header_error is not None:
        await ws.close(header_close, header_error)
        return
    proto = ConnectionProtocol(limits, time.monotonic(), user_id=str(user.id) if user else None,
                               expires_at=to_monotonic(expires_at) if expires_at else None)
    conn = Connection(ws, state, proto, settings.ws_max_queue_bytes, coalesce=coalesce_deltas, send=send,
                      conn_id=conn_id)
    conn.user, conn.session_id = user, session_id
    if user is not None:
        proto.connection_id = conn.id
    state.connections.add(conn)
    state.ws_totals["opened"] += 1
    try:
        await _read_loop(conn)
    finally:
        state.connections.discard(conn)
        state.ws_totals["framesIn"] += conn.received
        state.ws_totals["framesOut"] += conn.sent
        for topic in list(conn.views):
            try:
                await state.hub.unsubscribe(topic, conn)
                await state.hub.untrack(topic, conn.id, conn.user_id)
            except Exception as exc:
                # Said, not swallowed: the member stays present elsewhere until its presence entry expires.
                log.warning("leaving %s failed (%s: %s); its presence expires instead", topic, type(exc).__name__,
                            exc)
        conn.close_code = conn.close_code or Close.NORMAL
        conn._ensure_writer()
        writer = conn.writer
        if writer is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer, timeout=5)
            writer.cancel()



async def _read_loop(conn: Connection) -> None:
    proto, lines = conn.proto, conn.state.chat_lines
    while conn.close_code is None:
        deadline = proto.next_deadline()
        timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
        try:
            # asyncio.timeout, not wait_for: no extra task per idle wait (memory per idle connection).
            async with asyncio.timeout(timeout):
                message = await conn.ws.receive()
        except TimeoutError:
            proto.tick(time.monotonic())
            conn.flush_protocol()
            continue
        if message["type"] == "websocket.disconnect":
            conn.close_code = conn.close_code or int(message.get("code") or Close.NORMAL)
            return
        conn.received += 1
        now = time.monotonic()
        if message.get("text") is not None:
            proto.receive_text(message["text"], now)
        else:
            proto.receive_bytes(message.get("bytes") or b"", now)
        for command in proto.commands():
            try:
                await carry_out(conn, command)
            except Exception as exc:
                code: m.ErrorCode = "internal"
                detail = "internal error"
                if (down := unavailable(exc)) is not None:  # the database or Redis did not answer: retry later
                    code, detail = ws_code(down), down.message
                    log.warning("websocket command failed: dependency unavailable (%s: %s)", type(exc).__name__, exc)
                else:
                    log.exception("websocket command failed")
                if isinstance(command, m.Join):  # no longer joining: the client may join again once it is back
                    proto.join_failed(command.ref, command.topic, code, detail)
                elif command.ref is not None:
                    proto.push_failed(command.ref, code, detail)
        proto.tick(time.monotonic())
        if lines is not None and proto.has_data_to_send():
            # Chat lines are answered once their group is stored (server.ws_chat_lines): answers to this frame go
            # after theirs, in the order the frames came.
            await lines.settled(conn)
        conn.flush_protocol()



def stats(state: AppState) -> dict[str, Any]:
    conns = list(state.connections)
    return {"connections": len(conns), "authenticated": sum(1 for c in conns if c.proto.state is State.OPEN),
            "queuedBytes": sum(c.queued_bytes for c in conns),
            "framesIn": state.ws_totals["framesIn"] + sum(c.received for c in conns),
            "framesOut": state.ws_totals["framesOut"] + sum(c.sent for c in conns),
            "opened": state.ws_totals["opened"], **state.hub.local_stats()}


async def drain_connections(state: AppState, code: int, reason: str, grace: float = 5.0) -> None:
    """Graceful shutdown: every socket gets what is already queued for it, then `code` (1012: reconnect and
    resume elsewhere)."""
    conns = list(state.connections)
    for conn in conns:
        conn.request_close(code, reason)
    deadline = time.monotonic() + grace
    while state.connections and time.monotonic() < deadline:  # noqa: ASYNC110 - a bounded wait at shutdown
        await asyncio.sleep(0.02)
