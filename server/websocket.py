"""The WebSocket pump: the only code that knows there is a socket.

One reader loop feeds frames to the sans-I/O protocol and carries out its commands, one short database
transaction per command; one writer task owns `send`, draining a bounded outbound queue, so two tasks
never write at once. Hub deliveries land in that queue already encoded (once per broadcast)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

from starlette.types import Send
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from channels import messages as m
from channels.coalesce import coalesce_deltas, compact_backlog
from channels.hub import Hub
from channels.protocol import Close, ConnectionProtocol, Limits, State
from handlers import realtime
from handlers.accounts.sessions import authenticate
from handlers.accounts.users import brief
from handlers.context import Context, Outcome
from handlers.schema import to_wire
from handlers.unit_of_work import unit_of_work
from persistence.errors import DomainError, Forbidden, NotFound, Unauthorized
from persistence.models import User
from server import transport
from server.errors import translate, unavailable, ws_code
from server.middleware import request_id_var
from server.state import AppState

log = logging.getLogger("conversme.ws")


class _TopicView:
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
        self.views: dict[str, _TopicView] = {}
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


def origin_allowed(ws: WebSocket, allowed: tuple[str, ...]) -> bool:
    origin = ws.headers.get("origin")
    if origin is None:
        return True  # not a browser: CSWSH needs a browser
    origin = origin.rstrip("/")
    if origin in allowed:
        return True
    host = ws.headers.get("host", "")
    return urlsplit(origin).netloc == host and bool(host)  # same-origin pages (the console)


async def _verify(state: AppState, token: str) -> tuple[User, float, str | None]:
    now = state.clock()
    claims = state.tokens.decode_access(token, now)
    expires_at = claims.expires_at.timestamp()
    if claims.session_id is not None and state.connect_checks is not None:
        # The common case answered from the instance's memory, or in one statement with every socket that
        # authenticates at the same moment; anything else (a refusal) goes the one-at-a-time way below.
        cache = state.auth_cache
        user = cache.user(claims.session_id, claims.user_id, now) if cache is not None else None
        if user is None:
            found = await state.connect_checks.sessions.get((claims.user_id, claims.session_id))
            if found is not None and found[1] > now:
                user = found[0]
                if cache is not None:
                    cache.remember(claims.session_id, user, found[1])
        if user is not None and not (user.is_guest and user.guest_expires_at is not None
                                     and user.guest_expires_at <= now):
            return user, expires_at, str(claims.session_id)
    async with state.sessionmaker() as db, db.begin():
        user = await authenticate(db, claims, now, state.auth_cache)
    return user, expires_at, str(claims.session_id) if claims.session_id else None


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
            user, expires_at, session_id = await _verify(state, header[7:].strip())
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
                               expires_at=_mono(expires_at) if expires_at else None)
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
            with contextlib.suppress(Exception):
                await state.hub.unsubscribe(topic, conn)
                await state.hub.untrack(topic, conn.id, conn.user_id)
        conn.close_code = conn.close_code or Close.NORMAL
        conn._ensure_writer()
        writer = conn.writer
        if writer is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer, timeout=5)
            writer.cancel()


def _mono(wall: float) -> float:
    """A wall-clock expiry in the protocol's monotonic time."""
    return time.monotonic() + (wall - time.time())


async def _read_loop(conn: Connection) -> None:
    proto = conn.proto
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
                await _carry_out(conn, command)
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
        conn.flush_protocol()


async def _carry_out(conn: Connection, command: m.Command) -> None:
    proto, state = conn.proto, conn.state
    if isinstance(command, m.Auth | m.Refresh):
        try:
            user, expires_at, session_id = await _verify(state, command.token)
        except Unauthorized as exc:
            if isinstance(command, m.Auth):
                proto.auth_failed(command.ref, exc.message)
            else:
                proto.refresh_failed(command.ref, exc.message)
            return
        if isinstance(command, m.Auth):
            proto.auth_ok(command.ref, str(user.id), conn.id, _mono(expires_at))
            conn.user_id, conn.user, conn.session_id = str(user.id), user, session_id
        elif str(user.id) != conn.user_id:
            proto.refresh_failed(command.ref, "token is for another user")
        else:
            conn.user, conn.session_id = user, session_id
            await _recheck_topics(conn)
            proto.refresh_ok(command.ref, _mono(expires_at), unix_expires_at=expires_at)
    elif isinstance(command, m.Join):
        await _join(conn, command)
    elif isinstance(command, m.Leave):
        conn.views.pop(command.topic, None)
        await state.hub.unsubscribe(command.topic, conn)
        await state.hub.untrack(command.topic, conn.id, conn.user_id)
    elif isinstance(command, m.Push):
        await _push(conn, command)


async def _in_transaction(conn: Connection, work: Callable[[Context], Any]) -> Any:
    """One short unit of work for one command (a join's access check, a push): nothing held between commands."""
    state = conn.state
    assert conn.user is not None
    guard = state.generations.reservations() if state.generations is not None else None
    async with unit_of_work(state.sessionmaker, state.clock(), state.announce, guard) as unit:
        # The user verified at auth/refresh, attached without a query: one round trip less per command.
        user = await unit.db.merge(conn.user, load=False)
        ctx = Context(db=unit.db, user=user, now=unit.now, limits=state.limits)
        value = await work(ctx)
        return unit.add(value) if isinstance(value, Outcome) else value


async def _join(conn: Connection, command: m.Join) -> None:
    proto, hub, topic = conn.proto, conn.state.hub, command.topic
    try:
        await _authorize_join(conn, topic)
    except DomainError as exc:
        proto.join_failed(command.ref, topic, ws_code(exc), exc.message)
        return
    view = conn.views[topic] = _TopicView()
    try:
        await hub.subscribe(topic, conn)
        recovered = False
        backlog: list[tuple[int, str]] = []
        if command.since is not None:
            entries = await hub.history(topic, command.since.epoch, command.since.offset)
            if entries is not None:
                recovered = True
                backlog = [(e.offset, e.frame) for e in entries]
        position = await hub.position(topic)
        last = max([position.offset, *(o for o, _ in backlog)]) if recovered else position.offset
        assert conn.user is not None
        await hub.track(topic, conn.id, conn.user_id, to_wire(brief(conn.user)))
        present = await hub.presence(topic)
    except Exception:
        conn.views.pop(topic, None)
        with contextlib.suppress(Exception):
            await hub.unsubscribe(topic, conn)
        raise
    proto.join_ok(command.ref, topic, {"epoch": position.epoch, "offset": last, "recovered": recovered,
                                       "presence": present})
    conn.flush_protocol()
    # Missed entries first, then whatever arrived while we were joining: in order, no gap, no duplicate.
    sent = command.since.offset if recovered and command.since is not None else last
    missed = [(o, f) for o, f in dict(sorted(backlog + view.buffer)).items() if o > sent]
    if recovered and topic.startswith("live:"):
        missed = compact_backlog(missed)  # a finished AI stream as one frame, an unfinished one as one delta
    for offset, frame in missed:
        conn.enqueue(frame)
        sent = offset
    view.buffer.clear()
    view.last = sent
    view.ready = True


async def _authorize_join(conn: Connection, topic: str) -> None:
    """realtime.authorize_join, without a transaction of its own for the two common kinds: a user topic needs
    no database at all, an event room's membership is asked together with every other socket joining now."""
    kind, ident = realtime.parse_topic(topic)
    assert conn.user is not None
    checks = conn.state.connect_checks
    if kind == "user":
        if ident != conn.user.id:
            raise Forbidden("a user topic is for its user only")
    elif kind == "event" and checks is not None:
        if not await checks.members.get((ident, conn.user.id)):
            raise NotFound("event", ident)
    else:
        await _in_transaction(conn, lambda ctx: realtime.authorize_join(ctx, topic))


async def _recheck_topics(conn: Connection) -> None:
    for topic in list(conn.views):
        async def check(ctx: Context, topic: str = topic) -> None:
            await realtime.authorize_join(ctx, topic)
        try:
            await _in_transaction(conn, check)
        except DomainError:
            conn.on_removed(topic, conn.user_id, "revoked")


async def _push(conn: Connection, command: m.Push) -> None:
    proto, state = conn.proto, conn.state
    try:
        # The unit of work commits, then announces (a stream reserved by a failed transaction is freed).
        value = await _in_transaction(
            conn, lambda ctx: realtime.run_push(ctx, command.topic, command.event, command.data, state.generations))
    except DomainError as exc:
        proto.push_failed(command.ref, ws_code(exc), exc.message)
        return
    except Exception as exc:
        mapped = translate(exc)  # as over REST: a broken constraint is a conflict, an outage `unavailable`
        if mapped is None:
            raise
        proto.push_failed(command.ref, ws_code(mapped), mapped.message)
        return
    # Committed and announced: answer the pusher.
    proto.push_ok(command.ref, realtime.reply_data(value))
    if state.generations is not None:  # a prompt's stream starts (or a cancel is sent) only after the commit
        await state.generations.after_commit(value)


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
