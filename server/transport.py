"""How a frame reaches a client's socket: the fan-out's fast path, and the plain ASGI `send` when there is none.

A hub delivery arrives in a plain callback (no task of its own per member). Going through ASGI's `send`
would mean a coroutine and a task switch per delivered frame, most of a fan-out's cost. So, for the servers
whose behaviour a contract test proves (tests/realtime/test_transport_contract.py, through a real server):

- `lean`:   conversme's own uvicorn protocol (server/uvicorn_ws.py, what `conversme serve` runs) writes the
            frame at once with a public method of its own, the bytes encoded once per broadcast;
- `driven`: uvicorn's `websockets-sansio` and `websockets` protocols: their `send` is run right here up to
            its first wait (it only waits while the transport is paused), and what is left is awaited later;
- `plain`:  anything else (another ASGI server, another uvicorn protocol, an ASGI middleware wrapping
            `send`): every frame is an ordinary `await send(...)` from the connection's writer task. Slower,
            never wrong.

`sink_for` picks one; it is chosen from the class that owns `send`, so an upgrade that renames or reshapes a
protocol falls back to `plain` instead of breaking delivery silently."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.types import Message, Send

from server.uvicorn_ws import LeanWebSocket

# A frame handed to the socket: None once written, else what the caller must await before anything else.
SendNowait = Callable[[str], Awaitable[None] | None]

# uvicorn protocols (and the name of the method they hand to the app as `send`) whose send completes without a
# suspension while the transport is writable: checked by the contract test for the installed version.
DRIVEN = frozenset({
    "uvicorn.protocols.websockets.websockets_sansio_impl.WebSocketsSansIOProtocol.send",
    "uvicorn.protocols.websockets.websockets_impl.WebSocketProtocol.asgi_send",
})


def kind_of(send: Send) -> str:
    """Which way frames go out through this ASGI `send`: "lean", "driven" or "plain"."""
    owner = getattr(send, "__self__", None)
    if owner is None or not inspect.iscoroutinefunction(send):
        return "plain"
    name = getattr(send, "__name__", "")
    if isinstance(owner, LeanWebSocket) and name == "send":
        return "lean"
    cls = type(owner)
    return "driven" if f"{cls.__module__}.{cls.__qualname__}.{name}" in DRIVEN else "plain"


def sink_for(send: Send, kind: str | None = None) -> SendNowait:
    """The connection's way to hand over one text frame now (see SendNowait)."""
    kind = kind or kind_of(send)
    if kind == "lean":
        owner: LeanWebSocket = send.__self__  # type: ignore[attr-defined]
        write = owner.send_text_nowait

        def lean(text: str) -> Awaitable[None] | None:
            return None if write(text) else send({"type": "websocket.send", "text": text})
        return lean
    if kind == "driven":
        return lambda text: send_now(send, {"type": "websocket.send", "text": text})
    return lambda text: send({"type": "websocket.send", "text": text})


def send_now(send: Send, message: Message) -> Awaitable[None] | None:
    """Run an ASGI send right here if it completes without waiting, and return None; otherwise return an
    awaitable that finishes it."""
    coro = send(message)
    try:
        yielded = coro.send(None)  # type: ignore[attr-defined]
    except StopIteration:
        return None
    return _finish(coro, yielded)


async def _finish(coro: Any, yielded: Any) -> None:
    while True:
        if yielded is None:
            await asyncio.sleep(0)
        else:
            await asyncio.wait([yielded])
        try:
            yielded = coro.send(None)
        except StopIteration:
            return
