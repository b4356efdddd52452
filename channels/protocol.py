"""The sans-I/O connection protocol: frames in, commands and frames out, a close code when it must end.

No sockets, no clock, no awaits. The I/O layer (server/websocket.py) feeds frames with `receive_text`,
carries out the `commands()` that need the outside world (verifying a token, authorizing a join, running a
push) and reports each result back (`auth_ok`, `join_ok`, ...). Every frame that carries a `ref` gets exactly
one reply; every limit breach becomes a reply or a close code, never an exception."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any

from channels import messages as m


class State(Enum):
    AWAITING_AUTH = "awaiting_auth"
    OPEN = "open"
    CLOSED = "closed"


class Close:
    NORMAL = 1000
    POLICY = 1008
    TOO_BIG = 1009
    INTERNAL = 1011
    RESTART = 1012
    UNAUTHENTICATED = 4001
    SLOW_CONSUMER = 4008
    RATE_LIMITED = 4029


@dataclass(frozen=True)
class Limits:
    max_frame_bytes: int = 64 * 1024
    max_topics: int = 100
    push_burst: int = 20
    push_rate: float = 10.0
    abuse_after: int = 50  # rate-limited pushes in a row before the connection is closed 4029
    max_bad_frames: int = 10
    auth_timeout: float = 10.0
    heartbeat: int = 25


class ConnectionProtocol:
    # One per socket, thousands at once: slots instead of a __dict__ each.
    __slots__ = ("_bad_in_a_row", "_commands", "_limited_in_a_row", "_opened_at", "_out", "_tokens", "_tokens_at",
                 "close_code", "close_reason", "connection_id", "expires_at", "joined", "limits", "pending", "state",
                 "user_id")

    def __init__(self, limits: Limits, now: float, *, user_id: str | None = None,
                 expires_at: float | None = None) -> None:
        self.limits = limits
        self.state = State.OPEN if user_id else State.AWAITING_AUTH
        self.user_id = user_id
        self.expires_at = expires_at
        self.connection_id: str | None = None
        self.close_code: int | None = None
        self.close_reason = ""
        self.joined: set[str] = set()
        self.pending: set[str] = set()
        self._opened_at = now
        self._out: list[str] = []
        self._commands: list[m.Command] = []
        self._bad_in_a_row = 0
        self._tokens = float(limits.push_burst)
        self._tokens_at = now
        self._limited_in_a_row = 0

    # ---- input -------------------------------------------------------------------------------------

    def receive_text(self, text: str, now: float) -> None:
        if self.state is State.CLOSED:
            return
        # surrogatepass: a str may hold lone surrogates (the wire is UTF-8, a caller may not be); measuring never raises
        if len(text) * 4 > self.limits.max_frame_bytes \
                and len(text.encode("utf-8", "surrogatepass")) > self.limits.max_frame_bytes:
            self._close(Close.TOO_BIG, "frame too big")
            return
        try:
            command = m.parse(text)
        except m.FrameError as exc:
            if self.state is State.AWAITING_AUTH:
                self._close(Close.UNAUTHENTICATED, "authenticate first")
                return
            self._bad_frame(exc)
            return
        self._bad_in_a_row = 0
        if self.state is State.AWAITING_AUTH and not isinstance(command, m.Auth):
            self._close(Close.UNAUTHENTICATED, "authenticate first")
            return
        self._dispatch(command, now)

    def receive_bytes(self, data: bytes, now: float) -> None:
        if self.state is State.CLOSED:
            return
        if self.state is State.AWAITING_AUTH:
            self._close(Close.UNAUTHENTICATED, "authenticate first")
            return
        self._bad_frame(m.FrameError("bad_frame", "binary frames are not supported"))

    def _dispatch(self, command: m.Command, now: float) -> None:
        if isinstance(command, m.Ping):
            self._out.append(m.pong(command.ref))
        elif isinstance(command, m.Auth | m.Refresh):
            self._commands.append(command)
        elif isinstance(command, m.Join):
            if command.topic in self.joined or command.topic in self.pending:
                self._reply_error(command.ref, "conflict", f"already joined {command.topic}")
            elif len(self.joined) + len(self.pending) >= self.limits.max_topics:
                self._reply_error(command.ref, "too_many_topics",
                                  f"at most {self.limits.max_topics} topics per connection")
            else:
                self.pending.add(command.topic)
                self._commands.append(command)
        elif isinstance(command, m.Leave):
            if command.topic not in self.joined:
                self._reply_error(command.ref, "not_joined", f"not joined to {command.topic}")
            else:
                self.joined.discard(command.topic)
                self._commands.append(command)
                self._reply_ok(command.ref, {})
        elif isinstance(command, m.Push):
            if command.topic not in self.joined:
                self._reply_error(command.ref, "not_joined", f"join {command.topic} before pushing to it")
            elif not self._take_push_token(now):
                self._limited_in_a_row += 1
                if self._limited_in_a_row > self.limits.abuse_after:
                    self._close(Close.RATE_LIMITED, "too many pushes")
                else:
                    self._reply_error(command.ref, "rate_limited", "too many pushes; slow down")
            else:
                self._limited_in_a_row = 0
                self._commands.append(command)

    def _take_push_token(self, now: float) -> bool:
        elapsed = max(0.0, now - self._tokens_at)
        self._tokens = min(float(self.limits.push_burst), self._tokens + elapsed * self.limits.push_rate)
        self._tokens_at = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False

    def _bad_frame(self, exc: m.FrameError) -> None:
        self._bad_in_a_row += 1
        if self._bad_in_a_row > self.limits.max_bad_frames:
            self._close(Close.POLICY, "too many malformed frames")
            return
        if exc.ref is not None:
            self._reply_error(exc.ref, exc.code, exc.message)
        else:
            self._out.append(m.error(exc.code, exc.message))

    # ---- results from the I/O layer -----------------------------------------------------------------

    def auth_ok(self, ref: str | None, user_id: str, connection_id: str, expires_at: float) -> None:
        if self.user_id is not None and user_id != self.user_id:
            self._close(Close.UNAUTHENTICATED, "token is for another user")
            return
        self.state = State.OPEN
        self.user_id = user_id
        self.connection_id = connection_id
        self.expires_at = expires_at
        self._reply_ok(ref, {"userId": user_id, "connectionId": connection_id, "heartbeat": self.limits.heartbeat})

    def auth_failed(self, ref: str | None, message: str) -> None:
        if self.state is State.AWAITING_AUTH:
            self._close(Close.UNAUTHENTICATED, message)
        else:
            self._reply_error(ref, "unauthorized", message)

    def refresh_ok(self, ref: str | None, expires_at: float, unix_expires_at: float | None = None) -> None:
        """`expires_at` is on the caller's clock (the deadline for `tick`); the reply tells the client the
        token's Unix expiry when given (a monotonic time means nothing to a client)."""
        self.expires_at = expires_at
        self._reply_ok(ref, {"expiresAt": int(unix_expires_at if unix_expires_at is not None else expires_at)})

    def refresh_failed(self, ref: str | None, message: str) -> None:
        self._reply_error(ref, "unauthorized", message)

    def join_ok(self, ref: str | None, topic: str, data: dict[str, Any]) -> None:
        self.pending.discard(topic)
        self.joined.add(topic)
        self._reply_ok(ref, data)

    def join_failed(self, ref: str | None, topic: str, code: m.ErrorCode, message: str) -> None:
        self.pending.discard(topic)
        self._reply_error(ref, code, message)

    def push_ok(self, ref: str | None, data: dict[str, Any]) -> None:
        self._reply_ok(ref, data)

    def push_failed(self, ref: str | None, code: m.ErrorCode, message: str) -> None:
        self._reply_error(ref, code, message)

    def removed(self, topic: str, reason: m.LeftReason) -> None:
        """The server took this connection off `topic` (participant removed, event deleted)."""
        if topic in self.joined or topic in self.pending:
            self.joined.discard(topic)
            self.pending.discard(topic)
            self._out.append(m.left(topic, reason))

    def tick(self, now: float) -> None:
        if self.state is State.AWAITING_AUTH and now - self._opened_at >= self.limits.auth_timeout:
            self._close(Close.UNAUTHENTICATED, "authentication timed out")
        elif self.state is State.OPEN and self.expires_at is not None and now >= self.expires_at:
            self._close(Close.UNAUTHENTICATED, "token expired")

    def next_deadline(self) -> float | None:
        if self.state is State.AWAITING_AUTH:
            return self._opened_at + self.limits.auth_timeout
        if self.state is State.OPEN:
            return self.expires_at
        return None

    def close(self, code: int, reason: str = "") -> None:
        self._close(code, reason)

    # ---- output -------------------------------------------------------------------------------------

    def commands(self) -> list[m.Command]:
        out, self._commands = self._commands, []
        return out

    def has_data_to_send(self) -> bool:
        return bool(self._out)

    def data_to_send(self) -> list[str]:
        out, self._out = self._out, []
        return out

    def _reply_ok(self, ref: str | None, data: dict[str, Any]) -> None:
        if ref is not None:
            self._out.append(m.reply_ok(ref, data))

    def _reply_error(self, ref: str | None, code: m.ErrorCode, message: str) -> None:
        self._out.append(m.reply_error(ref, code, message) if ref is not None else m.error(code, message))

    def _close(self, code: int, reason: str) -> None:
        if self.state is not State.CLOSED:
            self.state = State.CLOSED
            self.close_code = code
            self.close_reason = reason
            self._commands.clear()
