"""The handshake side of conversme's uvicorn WebSocket protocol (server/uvicorn_ws.py): what every socket of one
server shares (read once from uvicorn's config), the upgrade request read in one pass, the 101 that answers it,
and the ASGI scope it becomes.

uvicorn hands the protocol the upgrade request it already parsed, rebuilt as bytes in one canonical form. Read
by the `websockets` library's sans-I/O parser and handshake (a generator per line, a `Headers` multidict, the
RFC's checks one header at a time, a `Date` formatted per response), that was ~80 µs of the ~1.7 ms of server
CPU a connect + auth + join costs on the benchmark machine. `read_upgrade` makes the same checks in one pass
over the bytes, and answers only a request that websockets would accept as it stands; anything else (a
missing or malformed header, a body, a line past websockets' limits) returns None and goes through websockets,
which refuses it exactly as before (tests/unit/test_uvicorn_handshake.py holds the two to the same answers)."""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import unquote

# websockets' limits: a request near them is left to websockets, which answers 414 or 431.
MAX_HEADERS = 128
MAX_LINE = 8192
# RFC 9110's token and field value, as websockets checks them; the request line websockets accepts, with a
# printable path.
_TOKEN_CHARS = rb"[-!#$%&\'*+.^_`|~0-9a-zA-Z]"
_TOKEN = re.compile(_TOKEN_CHARS + rb"+")
_REQUEST = re.compile(rb"GET ([\x21-\x7e]+) HTTP/1\.1\r\n((?:" + _TOKEN_CHARS + rb"+:[\x09\x20-\x7e\x80-\xff]*\r\n){0,"
                      + str(MAX_HEADERS).encode() + rb"})\r\n")
_READ = frozenset((b"connection", b"upgrade", b"sec-websocket-key", b"sec-websocket-version", b"origin",
                   b"sec-websocket-protocol", b"transfer-encoding", b"content-length"))
_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


class Shared:
    """What every socket of one server has in common: kept once, not once per connection."""

    __slots__ = ("app", "app_state", "asgi", "close_timeout", "connections", "loop", "max_size", "ping_interval",
                 "ping_timeout", "root_path", "server_state", "tasks")

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
        # Not its `default_headers`: uvicorn replaces that list every second, with the new `Date`.
        self.server_state = server_state
        self.max_size: int | None = config.ws_max_size
        self.ping_interval: float | None = config.ws_ping_interval
        self.ping_timeout: float | None = config.ws_ping_timeout
        self.close_timeout = 10.0
        self.loop = loop

    @property
    def default_headers(self) -> list[tuple[bytes, bytes]]:
        return self.server_state.default_headers  # type: ignore[no-any-return]


class Upgrade:
    """An upgrade request websockets would accept: what the scope and the 101 need of it."""

    __slots__ = ("accept", "headers", "path", "subprotocols")

    def __init__(self, path: str, headers: list[tuple[bytes, bytes]], subprotocols: list[str], accept: bytes) -> None:
        self.path = path
        self.headers = headers  # (lower-case name, value) as received
        self.subprotocols = subprotocols
        self.accept = accept  # the Sec-WebSocket-Accept value


def read_upgrade(data: bytes) -> Upgrade | None:
    """The upgrade request that is the whole of `data`, if websockets would accept it as it stands (RFC 6455
    4.2.1, as `websockets.server.ServerProtocol.process_request` checks it); None for anything else."""
    if len(data) > MAX_LINE:
        return None  # no line can be past websockets' limit in less (a cookie jar that large takes its path)
    request = _REQUEST.fullmatch(data)  # the request line, then up to MAX_HEADERS lines of token: value
    if request is None:
        return None  # not one whole request, or more than one (frames sent before the 101), or not valid
    headers: list[tuple[bytes, bytes]] = []
    subprotocols: list[str] = []
    upgrade: list[bytes] = []
    keys: list[bytes] = []
    versions: list[bytes] = []
    connection_upgrade = False
    origins = 0
    for line in request[2].split(b"\r\n")[:-1]:
        name, _, value = line.partition(b":")
        name = name.lower()
        value = value.strip(b" \t")
        headers.append((name, value))
        if name not in _READ:
            continue
        if name == b"connection":
            for option in value.split(b","):
                option = option.strip(b" \t")
                if not _TOKEN.fullmatch(option):
                    return None
                connection_upgrade = connection_upgrade or option.lower() == b"upgrade"
        elif name == b"upgrade":
            upgrade.append(value)
        elif name == b"sec-websocket-key":
            keys.append(value)
        elif name == b"sec-websocket-version":
            versions.append(value)
        elif name == b"origin":
            origins += 1
        elif name == b"sec-websocket-protocol":
            for offered in value.split(b","):
                offered = offered.strip(b" \t")
                if not _TOKEN.fullmatch(offered):
                    return None
                subprotocols.append(offered.decode("ascii"))
        elif name == b"transfer-encoding" or value != b"0":  # content-length
            return None  # a body: websockets refuses it
    if (not connection_upgrade or len(upgrade) != 1 or upgrade[0].lower() != b"websocket" or len(keys) != 1
            or versions != [b"13"] or origins > 1):
        return None
    try:
        if len(base64.b64decode(keys[0], validate=True)) != 16:
            return None
    except binascii.Error:
        return None
    accept = base64.b64encode(hashlib.sha1(keys[0] + _GUID).digest())
    return Upgrade(request[1].decode("ascii"), headers, subprotocols, accept)


def switching_protocols(accept: bytes, headers: Iterable[tuple[bytes, bytes]], subprotocol: str | None) -> bytes:
    """The 101 that opens the socket: websockets' own headers (no extension is negotiated: permessage-deflate is
    off), then `headers` (uvicorn's defaults, the app's), then the subprotocol the app chose."""
    out = [b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           b"Sec-WebSocket-Accept: ", accept, b"\r\n"]
    for name, value in headers:
        out += (name.lower(), b": ", value, b"\r\n")
    if subprotocol:
        out += (b"Sec-WebSocket-Protocol: ", subprotocol.encode(), b"\r\n")
    out.append(b"\r\n")
    return b"".join(out)


def asgi_scope(shared: Shared, transport: asyncio.Transport, path: str, headers: list[tuple[bytes, bytes]],
               subprotocols: list[str]) -> dict[str, Any]:
    """The ASGI scope of an upgrade request for `path`, with `headers` (lower-case names), on `transport`."""
    raw_path, _, query = path.partition("?")
    server = transport.get_extra_info("sockname")
    client = transport.get_extra_info("peername")
    ssl = transport.get_extra_info("sslcontext") is not None
    return {
        "type": "websocket", "asgi": shared.asgi, "http_version": "1.1", "scheme": "wss" if ssl else "ws",
        "server": tuple(server[:2]) if isinstance(server, tuple) else None,
        "client": tuple(client[:2]) if isinstance(client, tuple) else None,
        "root_path": shared.root_path, "path": shared.root_path + unquote(raw_path),
        "raw_path": (shared.root_path + raw_path).encode("ascii"), "query_string": query.encode("ascii"),
        "headers": headers, "subprotocols": subprotocols, "state": shared.app_state.copy(),
    }
