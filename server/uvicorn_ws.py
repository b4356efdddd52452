"""conversme's WebSocket protocol for uvicorn (`conversme serve` runs it as `ws=server.uvicorn_ws:LeanWebSocket`).

uvicorn's own `websockets-sansio` protocol keeps, for each open socket, an `asyncio.Queue` and an `Event`
(five deques), the handshake's request and response with their headers, a copy of the scope, and a `__dict__`
of ~35 fields: ~14 KiB of the ~26 KiB an idle joined connection held (bench/ws_conn_profile.py). This one
speaks the same ASGI WebSocket events on the same sans-I/O core (the `websockets` library's `ServerProtocol`:
frame parsing, masking, close and ping handling, and the handshake of any request the one-pass reader in
server/uvicorn_handshake.py leaves to it), with `__slots__`, an inbox that exists only while frames wait for
the app, no write `Event` until a write has to wait, and nothing of the handshake kept.

It also gives the fan-out its fast path (server/transport.py): `send_text_nowait` writes a text frame at once,
from the hub's callback, without a coroutine, and reuses the frame's bytes when the next member gets the same
message (server frames are not masked, so every member's bytes are the same).

What it leaves out: permessage-deflate (the reused bytes depend on it being off; `conversme serve` turns it
off) and the `websocket.http.response` extension (the app answers a refused socket with a close: 403).
The contract test (tests/realtime/test_transport_contract.py) runs it, and uvicorn's own protocols, through
a real server. The handshake's shared state and scope are server/uvicorn_handshake.py; the frame bytes
server/uvicorn_frames.py."""

from __future__ import annotations

import asyncio
import logging
import os
from collections import deque
from typing import Any, cast

from websockets.exceptions import InvalidState
from websockets.frames import Frame, Opcode
from websockets.http11 import Request
from websockets.protocol import State
from websockets.server import ServerProtocol

from server.uvicorn_frames import ClientGone, Parts, text_frame
from server.uvicorn_handshake import Shared, asgi_scope, read_upgrade, switching_protocols

log = logging.getLogger("uvicorn.error")

_shared: dict[int, Shared] = {}


class LeanWebSocket(asyncio.Protocol):
    """One WebSocket connection, as uvicorn builds its protocols: `(config, server_state, app_state)`, then
    `connection_made` and the upgrade request's bytes through `data_received`."""

    __slots__ = ("_accept_key", "_close_timer", "_drained", "_inbox", "_ping_payload", "_ping_timer", "_pong_timer",
                 "_waiter", "accepted", "close_sent", "conn", "disconnected", "paused", "read_paused", "shared",
                 "transport")

    def __init__(self, config: Any, server_state: Any, app_state: dict[str, Any],
                 _loop: asyncio.AbstractEventLoop | None = None) -> None:
        loop = _loop or asyncio.get_event_loop()
        key = id(server_state)
        shared = _shared.get(key)
        if shared is None or shared.connections is not server_state.connections or shared.loop is not loop:
            shared = _shared[key] = Shared(config, server_state, app_state, loop)
        self.shared = shared
        self.transport: asyncio.Transport = cast(asyncio.Transport, None)
        # Made by the upgrade request's bytes (the first `data_received`), in the state that request leaves it in.
        self.conn: ServerProtocol | None = None
        # The Sec-WebSocket-Accept of a request the app has not yet accepted or refused.
        self._accept_key: bytes | None = None
        self._inbox: deque[dict[str, Any]] | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._drained: asyncio.Future[None] | None = None
        self._close_timer: asyncio.TimerHandle | None = None
        self._ping_timer: asyncio.TimerHandle | None = None
        self._pong_timer: asyncio.TimerHandle | None = None
        self._ping_payload: bytes | None = None
        self.accepted = False  # the handshake is answered (101, or refused)
        self.close_sent = False
        self.disconnected = False
        self.paused = False  # writing: the transport's buffer is over its high-water mark
        self.read_paused = False

    # ---- asyncio.Protocol ----------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.shared.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_keepalive()
        self._deliver({"type": "websocket.disconnect",
                       "code": 1005 if self.accepted and self._accept_key is None else 1006})
        self.shared.connections.discard(self)
        _parts.pop(self, None)
        self.accepted = True
        self.disconnected = True
        self._wake_writer()  # a paused transport that is lost never resumes
        if self._close_timer is not None:
            self._close_timer.cancel()
            self._close_timer = None
        if exc is None:
            self.transport.close()

    def eof_received(self) -> None:
        pass

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False
        self._wake_writer()

    def data_received(self, data: bytes) -> None:
        conn = self.conn
        if conn is None:
            conn = self._upgrade(data)
            if conn is None:
                return
        conn.receive_data(data)
        if conn.parser_exc is not None:
            self._parser_failed()
            return
        if conn.handshake_exc is not None and self._accept_key is None and not self.accepted:
            self._bad_handshake()
            return
        for event in conn.events_received():
            if isinstance(event, Request):
                self._connect(event)
            elif isinstance(event, Frame):
                self._frame(event)

    def shutdown(self) -> None:
        """uvicorn's shutdown (after `conversme serve` has drained every socket with 1012)."""
        self._stop_keepalive()
        if self.close_sent:
            if self._close_timer is not None:
                self._close_timer.cancel()
                self._close_timer = None
        elif self.accepted and self._accept_key is None:
            self._deliver({"type": "websocket.disconnect", "code": 1012})
            self._ws().send_close(1012)
            self._flush()
        else:
            self._reject(500)
        self.transport.close()

    # ---- handshake -----------------------------------------------------------------------------------

    def _ws(self) -> ServerProtocol:
        conn = self.conn
        if conn is None:
            raise RuntimeError("no upgrade request yet")
        return conn

    def _upgrade(self, data: bytes) -> ServerProtocol | None:
        """The upgrade request (uvicorn hands it over whole): read in one pass when websockets would accept it
        as it stands (server/uvicorn_handshake.py), else by websockets' parser, returned to read `data`."""
        shared = self.shared
        upgrade = read_upgrade(data)
        if upgrade is None:
            self.conn = ServerProtocol(max_size=shared.max_size, logger=log)
            return self.conn
        # Open already: the next bytes are frames. Until the app accepts, `_accept_key` holds the 101 back.
        self.conn = ServerProtocol(max_size=shared.max_size, logger=log, state=State.OPEN)
        self._open(upgrade.path, upgrade.headers, upgrade.subprotocols, upgrade.accept)
        return None

    def _connect(self, request: Request) -> None:
        """An upgrade request websockets' parser read: answered by websockets' handshake."""
        conn = self._ws()
        response = conn.accept(request)
        if response.status_code != 101:
            self.accepted = self.close_sent = True
            conn.send_response(response)
            self._flush()
            self.transport.close()
            return
        conn.state = State.OPEN  # as in the fast path: the 101 is written by `_accept`
        headers = request.headers
        subprotocols = [p.strip() for value in headers.get_all("Sec-WebSocket-Protocol") for p in value.split(",")]
        self._open(request.path, [(k.lower().encode("ascii"), v.encode("latin-1")) for k, v in headers.raw_items()],
                   subprotocols, response.headers["Sec-WebSocket-Accept"].encode("ascii"))
        # websockets' parser keeps the request for the socket's life (a local of its generator): its headers
        # are in the scope now, so they need not stay there too.
        headers.clear()

    def _open(self, path: str, headers: list[tuple[bytes, bytes]], subprotocols: list[str], accept: bytes) -> None:
        """Hand the app its `websocket.connect`; the 101 waits for its `websocket.accept`."""
        shared = self.shared
        self._accept_key = accept
        scope = asgi_scope(shared, self.transport, path, headers, subprotocols)
        self._deliver({"type": "websocket.connect"})
        task = shared.loop.create_task(self._run(scope))
        shared.tasks.add(task)
        task.add_done_callback(shared.tasks.discard)

    async def _run(self, scope: dict[str, Any]) -> None:
        try:
            await self.shared.app(scope, self.receive, self.send)
        except ClientGone:
            pass
        except BaseException:
            log.exception("Exception in ASGI application\n")
            self._reject(500)
        else:
            if not self.accepted:
                log.error("ASGI callable returned without completing handshake.")
                self._reject(500)
        if self._close_timer is None:
            self.transport.close()

    def _reject(self, status: int) -> None:
        if self.accepted or self.disconnected:
            return
        self.accepted = self.close_sent = True
        self._accept_key = None
        self._ws().send_response(self._ws().reject(status, "Internal Server Error" if status == 500 else ""))
        self._flush()

    def _bad_handshake(self) -> None:
        # websockets queued a 414/431 for a request over its limits, and only an EOF for anything else.
        self.accepted = self.close_sent = True
        output = b"".join(self._ws().data_to_send())
        if not output:
            output = self._ws().reject(400, "Failed to open a WebSocket connection: invalid request.\n").serialize()
        self.transport.write(output)
        self.transport.close()

    # ---- frames in -----------------------------------------------------------------------------------

    def _frame(self, frame: Frame) -> None:
        op = frame.opcode
        if op is Opcode.TEXT or op is Opcode.BINARY:
            if not frame.fin:  # a fragmented message: websockets' limits apply, the app gets it whole
                self._fragments(frame)
                return
            self._message(op, bytes(frame.data))
        elif op is Opcode.CONT:
            self._fragments(frame)
        elif op is Opcode.PING:
            self._flush()  # websockets queued the pong
        elif op is Opcode.PONG:
            self._pong(bytes(frame.data))
        elif op is Opcode.CLOSE:
            self._peer_closed()

    def _fragments(self, frame: Frame) -> None:
        # Rare (browsers send whole messages): kept in the inbox's slot for parts until the last one.
        parts = _parts.get(self)
        if parts is None or frame.opcode is not Opcode.CONT:
            parts = Parts(frame.opcode)
            _parts[self] = parts
        parts.data.append(bytes(frame.data))
        if frame.fin:
            _parts.pop(self, None)
            self._message(parts.opcode, b"".join(parts.data))

    def _message(self, op: Opcode, data: bytes) -> None:
        if self.close_sent:
            return  # past `websocket.close`: keep reading until the peer's close, drop what comes before
        if op is Opcode.TEXT:
            try:
                message: dict[str, Any] = {"type": "websocket.receive", "text": data.decode()}
            except UnicodeDecodeError:
                self._ws().fail(1007, "invalid UTF-8")
                self._parser_failed()
                return
        else:
            message = {"type": "websocket.receive", "bytes": data}
        if not self._deliver(message) and not self.read_paused:
            # The app has not taken the last message yet: read no more until it has (backpressure).
            self.read_paused = True
            self.transport.pause_reading()

    def _peer_closed(self) -> None:
        if self.close_sent:  # the peer echoed our close: the closing handshake is complete
            if self._close_timer is not None:
                self._close_timer.cancel()
                self._close_timer = None
                self.transport.close()
            return
        if not self.transport.is_closing():
            rcvd = self._ws().close_rcvd
            self._deliver({"type": "websocket.disconnect", "code": rcvd.code if rcvd else 1005,
                           "reason": rcvd.reason if rcvd else ""})
            self._flush()
            self.transport.close()

    def _parser_failed(self) -> None:
        sent = self._ws().close_sent
        self._deliver({"type": "websocket.disconnect", "code": sent.code if sent else 1002,
                       "reason": sent.reason if sent else ""})
        self._flush()
        self.close_sent = True
        self.transport.close()

    def _deliver(self, message: dict[str, Any]) -> bool:
        """Queue a message for the app's `receive`; False if the app was not already waiting for one. The
        message stays in the inbox until `receive` takes it, so a `receive` cancelled (a timeout) just as it
        arrives does not lose it."""
        if self._inbox is None:
            self._inbox = deque()
        self._inbox.append(message)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            self._waiter = None
            waiter.set_result(None)
            return True
        return False

    async def receive(self) -> dict[str, Any]:
        while not self._inbox:
            waiter: asyncio.Future[None] = self.shared.loop.create_future()
            self._waiter = waiter
            try:
                await waiter
            finally:
                self._waiter = None
        inbox = self._inbox
        message = inbox.popleft()
        if not inbox:
            self._inbox = None
            if self.read_paused:
                self.read_paused = False
                self.transport.resume_reading()
        return message

    # ---- frames out ----------------------------------------------------------------------------------

    def send_text_nowait(self, text: str) -> bool:
        """Write a text frame now, if the socket is open and writable; False if the caller has to wait
        (`send` then waits for the transport to drain). Raises ClientGone once the socket is closing."""
        if self.close_sent or self.disconnected or not self.accepted or self._accept_key is not None:
            raise ClientGone("the WebSocket is closed")
        if self.paused:
            return False
        self.transport.write(text_frame(text))
        return True

    async def send(self, message: dict[str, Any]) -> None:
        while self.paused and not self.disconnected:
            if self._drained is None or self._drained.done():
                self._drained = self.shared.loop.create_future()
            await self._drained
        if self.disconnected:
            raise ClientGone("the WebSocket is closed")
        kind = message["type"]
        if not self.accepted:
            if kind == "websocket.accept":
                self._accept(message)
            elif kind == "websocket.close":
                self._deliver({"type": "websocket.disconnect", "code": 1006})
                self._ws().send_response(self._ws().reject(403, ""))
                self.accepted = self.close_sent = True
                self._accept_key = None
                self._flush()
                self.transport.close()
            else:
                raise RuntimeError(f"Expected ASGI message 'websocket.accept' or 'websocket.close', "
                                   f"but got {kind!r}.")
        elif not self.close_sent:
            try:
                if kind == "websocket.send":
                    if (data := message.get("bytes")) is not None:
                        self._ws().send_binary(data)
                        self._flush()
                    elif (text := message.get("text")) is not None:
                        self.transport.write(text_frame(text))
                elif kind == "websocket.close":
                    self._close(int(message.get("code", 1000)), message.get("reason") or "")
                else:
                    raise RuntimeError(f"Expected ASGI message 'websocket.send' or 'websocket.close', "
                                       f"but got {kind!r}.")
            except InvalidState as exc:
                raise ClientGone("the WebSocket is closed") from exc
        else:
            raise RuntimeError(f"Unexpected ASGI message {kind!r}, after sending 'websocket.close'.")

    def _accept(self, message: dict[str, Any]) -> None:
        accept = self._accept_key
        assert accept is not None
        if self.transport.is_closing():
            return
        self.accepted = True
        self._accept_key = None  # nothing of the handshake is kept past here
        self.transport.write(switching_protocols(accept, (*self.shared.default_headers, *message.get("headers", ())),
                                                 message.get("subprotocol")))
        self._flush()  # a pong to a ping sent before the 101
        if self.shared.ping_interval:
            self._schedule_ping()

    def _close(self, code: int, reason: str) -> None:
        if self.transport.is_closing():
            return
        self._deliver({"type": "websocket.disconnect", "code": code, "reason": reason})
        self._ws().send_close(code, reason)
        self._flush()
        self.close_sent = True
        if self.read_paused:
            self.read_paused = False
            self.transport.resume_reading()
        self._close_timer = self.shared.loop.call_later(self.shared.close_timeout, self.transport.close)

    def _flush(self) -> None:
        if self._accept_key is not None:
            return  # the 101 is not written yet: what websockets queued (a pong) follows it, from `_accept`
        output = self._ws().data_to_send()
        if output:
            self.transport.write(b"".join(output))

    def _wake_writer(self) -> None:
        if self._drained is not None and not self._drained.done():
            self._drained.set_result(None)
        self._drained = None

    # ---- keepalive -----------------------------------------------------------------------------------

    def _schedule_ping(self) -> None:
        interval = self.shared.ping_interval
        assert interval is not None
        self._ping_timer = self.shared.loop.call_later(interval, self._ping)

    def _ping(self) -> None:
        self._ping_timer = None
        if self.close_sent or self.transport.is_closing():
            return
        self._ping_payload = os.urandom(4)
        self._ws().send_ping(self._ping_payload)
        self._flush()
        if self.shared.ping_timeout is not None:
            self._pong_timer = self.shared.loop.call_later(self.shared.ping_timeout, self._ping_timed_out)
        else:
            self._schedule_ping()

    def _pong(self, data: bytes) -> None:
        if self._ping_payload is None or data != self._ping_payload:
            return  # unsolicited, or for an earlier ping
        self._ping_payload = None
        if self._pong_timer is not None:
            self._pong_timer.cancel()
            self._pong_timer = None
            self._schedule_ping()

    def _ping_timed_out(self) -> None:
        self._pong_timer = None
        self._ping_payload = None
        if self.close_sent or self.transport.is_closing():
            return
        self._ws().fail(1011, "keepalive ping timeout")
        self._flush()
        self.close_sent = True
        self.transport.close()

    def _stop_keepalive(self) -> None:
        for timer in (self._ping_timer, self._pong_timer):
            if timer is not None:
                timer.cancel()
        self._ping_timer = self._pong_timer = None
        self._ping_payload = None


# The parts of a fragmented message, by socket: almost never used, so not a slot on every connection.
_parts: dict[LeanWebSocket, Parts] = {}
