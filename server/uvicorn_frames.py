"""The wire side of conversme's uvicorn WebSocket protocol (server/uvicorn_ws.py): a text frame's bytes, encoded
once per broadcast rather than once per member, the parts of a fragmented message, and the error a write to a
closed socket raises."""

from __future__ import annotations

import struct

from websockets.frames import Opcode

_OPEN_TEXT = 0x81  # FIN + text opcode; server frames carry no mask
_last_text: str | None = None
_last_frame = b""


def text_frame(text: str) -> bytes:
    """The wire bytes of an unmasked text frame. A broadcast hands every member the same str object, so the
    last one is remembered: encoded once per message, not once per member."""
    global _last_text, _last_frame
    if text is _last_text:
        return _last_frame
    payload = text.encode()
    n = len(payload)
    if n < 126:
        head = bytes((_OPEN_TEXT, n))
    elif n < 65536:
        head = struct.pack("!BBH", _OPEN_TEXT, 126, n)
    else:
        head = struct.pack("!BBQ", _OPEN_TEXT, 127, n)
    _last_text, _last_frame = text, head + payload
    return _last_frame


class ClientGone(OSError):
    """Sent to a socket that is closed or closing (uvicorn's `ClientDisconnected` is an OSError too)."""


class Parts:
    __slots__ = ("data", "opcode")

    def __init__(self, opcode: Opcode) -> None:
        self.opcode = opcode
        self.data: list[bytes] = []
