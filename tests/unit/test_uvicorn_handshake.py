"""The one-pass upgrade reader (server/uvicorn_handshake.py) against the `websockets` library's own handshake:
it answers only requests websockets accepts, with the same Sec-WebSocket-Accept, path, headers and offered
subprotocols; it takes the requests real clients send (else it saves nothing); and everything else, through a
real server, gets websockets' own answer. Also: the 101 carries uvicorn's default headers as they are now."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn
from hypothesis import given, settings
from hypothesis import strategies as st
from uvicorn.server import ServerState
from websockets.http11 import Request
from websockets.server import ServerProtocol

from server.cli import WS_PROTOCOLS
from server.uvicorn_handshake import read_upgrade
from server.uvicorn_ws import LeanWebSocket
from tests.realtime.test_transport_contract import serving

KEY = base64.b64encode(b"sixteen byte key").decode()


def request(*headers: str, line: str = "GET /ws?x=1 HTTP/1.1") -> bytes:
    """A request as uvicorn hands it over: its request line and headers rebuilt as `name: value`."""
    return ("\r\n".join([line, *headers]) + "\r\n\r\n").encode("latin-1")


BASE = ("host: 127.0.0.1:8000", "connection: Upgrade", "upgrade: websocket", f"sec-websocket-key: {KEY}",
        "sec-websocket-version: 13")

# What clients send: a browser (Chrome), Node's `ws`, the Python `websockets` client.
CLIENTS = {
    "browser": request("host: app.convers.me", "connection: Upgrade", "pragma: no-cache",
                       "cache-control: no-cache", "user-agent: Mozilla/5.0 (X11; Linux x86_64) Chrome/131.0",
                       "upgrade: websocket", "origin: https://app.convers.me", "sec-websocket-version: 13",
                       "accept-encoding: gzip, deflate, br, zstd", "accept-language: en-GB,en;q=0.9",
                       "cookie: a=b; c=d", f"sec-websocket-key: {KEY}",
                       "sec-websocket-extensions: permessage-deflate; client_max_window_bits",
                       "sec-websocket-protocol: conversme.v1"),
    "node ws": request("sec-websocket-version: 13", f"sec-websocket-key: {KEY}", "connection: Upgrade",
                       "upgrade: websocket", "sec-websocket-protocol: conversme.v1", "host: 127.0.0.1:8000"),
    "python websockets": request("host: 127.0.0.1:8000", "upgrade: websocket", "connection: Upgrade",
                                 f"sec-websocket-key: {KEY}", "sec-websocket-version: 13",
                                 "sec-websocket-extensions: permessage-deflate; client_max_window_bits",
                                 "sec-websocket-protocol: conversme.v1, other", "user-agent: Python/3.11 websockets",
                                 "authorization: Bearer abc.def.ghi"),
    "keep-alive too": request("host: x", "connection: keep-alive, Upgrade", "upgrade: WebSocket",
                              f"sec-websocket-key: {KEY}", "sec-websocket-version: 13", "content-length: 0"),
}


def without(name: str) -> tuple[str, ...]:
    return tuple(h for h in BASE if not h.startswith(name + ":"))


# Requests websockets refuses (or reads differently): the reader must leave every one of them to websockets.
REFUSED = {
    "no key": request(*without("sec-websocket-key")),
    "two keys": request(*BASE, f"sec-websocket-key: {KEY}"),
    "short key": request(*without("sec-websocket-key"), "sec-websocket-key: c2hvcnQ="),
    "key not base64": request(*without("sec-websocket-key"), "sec-websocket-key: not base64 at all!!"),
    "version 8": request(*without("sec-websocket-version"), "sec-websocket-version: 8"),
    "two versions": request(*BASE, "sec-websocket-version: 13"),
    "no version": request(*without("sec-websocket-version")),
    "connection without upgrade": request(*without("connection"), "connection: keep-alive"),
    "two upgrades": request(*without("upgrade"), "upgrade: websocket, h2c"),
    "upgrade to h2c": request(*without("upgrade"), "upgrade: h2c"),
    "two origins": request(*BASE, "origin: https://a.example", "origin: https://b.example"),
    "a body": request(*BASE, "content-length: 5"),
    "chunked": request(*BASE, "transfer-encoding: chunked"),
    "bad subprotocol": request(*BASE, "sec-websocket-protocol: a b"),
    "post": request(*BASE, line="POST /ws HTTP/1.1"),
    "http/1.0": request(*BASE, line="GET /ws HTTP/1.0"),
    "bad header name": request(*BASE, "bad name: x"),
    "control character": request(*BASE, "x-thing: a\x01b"),
    "too many headers": request(*BASE, *(f"x-{i}: {i}" for i in range(130))),
    "line too long": request(*BASE, "x-long: " + "a" * 9000),
}


def websockets_answer(data: bytes) -> tuple[int, str | None, Request | None]:
    """What websockets' own parser and handshake answer: (status, Sec-WebSocket-Accept, the request)."""
    conn = ServerProtocol()
    conn.receive_data(data)
    events = conn.events_received()
    if conn.handshake_exc is not None or not events or not isinstance(events[0], Request):
        # websockets queues a 414 or 431 for a request past its limits; for anything else, 400.
        queued = b"".join(conn.data_to_send())
        return int(queued.split()[1]) if queued else 400, None, None
    response = conn.accept(events[0])
    if response.status_code != 101:
        return response.status_code, None, events[0]
    return 101, response.headers["Sec-WebSocket-Accept"], events[0]


def assert_same_reading(data: bytes) -> bool:
    """Where the reader answers, websockets accepts with the same values; True if the reader answered."""
    ours = read_upgrade(data)
    status, accept, req = websockets_answer(data)
    if ours is None:
        return False
    assert status == 101, f"read in one pass, but websockets answers {status}"
    assert req is not None
    assert ours.accept.decode() == accept
    assert ours.path == req.path
    assert ours.headers == [(k.lower().encode(), v.encode("latin-1")) for k, v in req.headers.raw_items()]
    assert ours.subprotocols == [p.strip() for v in req.headers.get_all("Sec-WebSocket-Protocol")
                                 for p in v.split(",")]
    return True


@pytest.mark.parametrize("name", sorted(CLIENTS))
def test_what_clients_send_is_read_in_one_pass_with_websockets_values(name: str) -> None:
    assert assert_same_reading(CLIENTS[name])


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_what_websockets_refuses_is_left_to_websockets(name: str) -> None:
    assert not assert_same_reading(REFUSED[name])
    assert websockets_answer(REFUSED[name])[0] != 101


def test_bytes_past_the_request_are_left_to_websockets() -> None:
    # Frames a client sent before it saw the 101: websockets' parser reads them after the request.
    assert read_upgrade(CLIENTS["node ws"] + b"\x81\x80abcd") is None
    assert read_upgrade(CLIENTS["node ws"][:-2]) is None


_header_names = st.sampled_from(["connection", "upgrade", "sec-websocket-key", "sec-websocket-version", "origin",
                                 "sec-websocket-protocol", "content-length", "transfer-encoding", "host", "x-any",
                                 "Connection", "UPGRADE", "bad name", ""])
_header_values = st.one_of(
    st.sampled_from(["Upgrade", "upgrade", "keep-alive, Upgrade", "keep-alive", "websocket", "WebSocket",
                     "websocket, h2c", KEY, "c2hvcnQ=", "13", "8", "0", "5", "chunked", "a, b", "a b", ",a", "",
                     " websocket ", "https://x.example"]),
    st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=255), max_size=30))


@settings(max_examples=400, deadline=None)
@given(st.lists(st.tuples(_header_names, _header_values), max_size=8), st.permutations(BASE))
def test_any_request_the_reader_answers_websockets_accepts_alike(extra: list[tuple[str, str]],
                                                                base: list[str]) -> None:
    headers = [*base[:len(extra) % len(base)], *(f"{n}: {v}" for n, v in extra)]
    assert_same_reading(request(*headers))


# ---- through a real server: each request gets websockets' answer ----------------------------------------

async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    assert (await receive())["type"] == "websocket.connect"
    await send({"type": "websocket.accept", "subprotocol": (scope["subprotocols"] or [None])[0]})
    while (await receive())["type"] != "websocket.disconnect":
        pass


async def status_of(port: int, data: bytes) -> tuple[int, dict[str, str]]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
    finally:
        writer.close()
    status_line, *lines = head.strip().split("\r\n")
    return int(status_line.split()[1]), {k.lower(): v.strip() for k, v in (ln.split(":", 1) for ln in lines)}


UPGRADED = {**CLIENTS, **{k: v for k, v in REFUSED.items() if k not in {
    # uvicorn answers these itself (no upgrade, or httptools refuses them), before any WebSocket protocol runs.
    "connection without upgrade", "two upgrades", "upgrade to h2c", "post", "bad header name", "control character",
    "a body", "chunked", "http/1.0", "line too long"}}}


async def test_a_real_server_answers_each_request_as_websockets_does() -> None:
    async with serving(WS_PROTOCOLS["lean"], app) as (port, _):
        for name, data in UPGRADED.items():
            expected, accept, req = websockets_answer(data)
            status, headers = await status_of(port, data)
            assert status == expected, name
            if expected == 101:
                assert req is not None
                assert headers["sec-websocket-accept"] == accept, name
                assert headers["upgrade"] == "websocket" and headers["connection"] == "Upgrade", name
                offered = [p.strip() for v in req.headers.get_all("Sec-WebSocket-Protocol") for p in v.split(",")]
                assert headers.get("sec-websocket-protocol") == (offered[0] if offered else None), name


# ---- uvicorn's default headers, as they are when the 101 goes out ---------------------------------------

class Transport(asyncio.Transport):
    """The socket's side, kept in memory: what the protocol wrote."""

    def __init__(self) -> None:
        super().__init__()
        self.written = bytearray()
        self.wrote = asyncio.Event()
        self.closing = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written += data
        self.wrote.set()

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"sockname": ("127.0.0.1", 8000), "peername": ("127.0.0.1", 50000)}.get(name, default)

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


@pytest.fixture
def config() -> Iterator[uvicorn.Config]:
    yield uvicorn.Config(app, ws=WS_PROTOCOLS["lean"], ws_per_message_deflate=False, lifespan="off")


async def opened(config: uvicorn.Config, state: ServerState, early: bytes = b"") -> bytes:
    proto = LeanWebSocket(config, state, {})
    transport = Transport()
    proto.connection_made(transport)
    proto.data_received(CLIENTS["node ws"])
    if early:  # before the app has accepted
        proto.data_received(early)
    while b"\r\n\r\n" not in transport.written:
        transport.wrote.clear()
        await transport.wrote.wait()
    proto.connection_lost(None)
    return bytes(transport.written)


async def test_the_101_carries_uvicorns_default_headers_of_the_moment(config: uvicorn.Config) -> None:
    state = ServerState()
    state.default_headers = [(b"date", b"Mon, 07 Dec 2026 03:00:00 GMT"), (b"x-instance", b"a")]
    first = await opened(config, state)
    # uvicorn's main loop replaces the list every second, with the new date.
    state.default_headers = [(b"date", b"Mon, 07 Dec 2026 03:00:01 GMT"), (b"x-instance", b"a")]
    second = await opened(config, state)
    assert first.startswith(b"HTTP/1.1 101 Switching Protocols\r\n")
    assert b"\r\ndate: Mon, 07 Dec 2026 03:00:00 GMT\r\nx-instance: a\r\n" in first
    assert b"\r\ndate: Mon, 07 Dec 2026 03:00:01 GMT\r\nx-instance: a\r\n" in second
    assert first.count(b"date:") == 1 and b"Date:" not in first  # websockets' own Date is not sent too


async def test_a_ping_sent_before_the_101_is_answered_after_it(config: uvicorn.Config) -> None:
    # A client that does not wait for the 101: its ping reaches websockets' frame parser while the app has not
    # accepted yet. The pong must not go out before the 101 (the client would read it as the response).
    ping = bytes((0x89, 0x84)) + b"mask" + bytes(a ^ b for a, b in zip(b"ping", b"mask", strict=True))
    state = ServerState()
    written = await opened(config, state, early=ping)
    head, _, rest = written.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101 Switching Protocols")
    assert rest.startswith(bytes((0x8A, 0x04)) + b"ping")
