"""The handshake side of conversme's uvicorn WebSocket protocol (server/uvicorn_ws.py): what every socket of one
server shares (read once from uvicorn's config), and the ASGI scope an accepted upgrade request becomes."""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import unquote

from websockets.datastructures import Headers


class Shared:
    """What every socket of one server has in common: kept once, not once per connection."""

    __slots__ = ("app", "app_state", "asgi", "close_timeout", "connections", "default_headers", "loop",
                 "max_size", "ping_interval", "ping_timeout", "root_path", "tasks")

    def __init__(self, config: Any, server_state: Any, app_state: dict[str, Any],
                 loop: asyncio.AbstractEventLoop) -> None:
        if not config.loaded:
            config.load()
        self.app = config.loaded_app
        self.app_state = app_state
        self.asgi = {"version": config.asgi_version, "spec_version": "2.4"}
        self.root_path: str = config.root_path
        self.connections: set[Any] = server_state.connections
        self.tasks: set[asyncio.Task[None]] = server_state.tasks
        self.default_headers: list[tuple[bytes, bytes]] = server_state.default_headers
        self.max_size: int | None = config.ws_max_size
        self.ping_interval: float | None = config.ws_ping_interval
        self.ping_timeout: float | None = config.ws_ping_timeout
        self.close_timeout = 10.0
        self.loop = loop


def asgi_scope(shared: Shared, transport: asyncio.Transport, path: str, headers: Headers) -> dict[str, Any]:
    """The ASGI scope of an upgrade request for `path`, with `headers`, on `transport`."""
    raw_path, _, query = path.partition("?")
    subprotocols = [p.strip() for value in headers.get_all("Sec-WebSocket-Protocol") for p in value.split(",")]
    server = transport.get_extra_info("sockname")
    client = transport.get_extra_info("peername")
    ssl = transport.get_extra_info("sslcontext") is not None
    return {
        "type": "websocket", "asgi": shared.asgi, "http_version": "1.1", "scheme": "wss" if ssl else "ws",
        "server": tuple(server[:2]) if isinstance(server, tuple) else None,
        "client": tuple(client[:2]) if isinstance(client, tuple) else None,
        "root_path": shared.root_path, "path": shared.root_path + unquote(raw_path),
        "raw_path": (shared.root_path + raw_path).encode("ascii"), "query_string": query.encode("ascii"),
        "headers": [(k.lower().encode("ascii"), v.encode("latin-1")) for k, v in headers.raw_items()],
        "subprotocols": subprotocols, "state": shared.app_state.copy(),
    }
