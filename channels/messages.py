"""The wire messages of protocol v1: client commands parsed from frames, server frames encoded to text.

Pure: the standard library and the serializer only. Every server frame is built here, so the AsyncAPI
document can be checked against one list (`SERVER_OPS`, `CLIENT_OPS`, `ERROR_CODES`)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

import orjson

from channels import wire_json

SUBPROTOCOL = "conversme.v1"

CLIENT_OPS = ("auth", "refresh", "join", "leave", "push", "ping")
SERVER_OPS = ("reply", "msg", "presence", "left", "pong", "error")
# Typed, so that a code or reason the document does not list is a type error where it is passed.
ErrorCode = Literal[
    "bad_frame", "unknown_op", "invalid", "unauthorized", "forbidden", "not_found", "not_joined", "conflict",
    "rate_limited", "too_many_topics", "ai_unavailable", "unavailable", "internal",
]
ERROR_CODES: tuple[ErrorCode, ...] = get_args(ErrorCode)
LeftReason = Literal["revoked", "deleted"]
LEFT_REASONS: tuple[LeftReason, ...] = get_args(LeftReason)

TOPIC_RE = re.compile(r"^(event|live|user):([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$", re.I)
# `noun.verb` (step.update), or a single word where the contract names one (prompt, cancel on live topics).
EVENT_RE = re.compile(r"^[a-z][a-z_]*(\.[a-z][a-z_]*)*$")
MAX_REF = 64


class FrameError(Exception):
    """A client frame that cannot be accepted; `ref` is set when the frame named one."""

    def __init__(self, code: ErrorCode, message: str, ref: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.ref = ref


@dataclass(frozen=True)
class Since:
    epoch: str
    offset: int


@dataclass(frozen=True)
class Auth:
    ref: str | None
    token: str


@dataclass(frozen=True)
class Refresh:
    ref: str | None
    token: str


@dataclass(frozen=True)
class Join:
    ref: str | None
    topic: str
    since: Since | None = None


@dataclass(frozen=True)
class Leave:
    ref: str | None
    topic: str


@dataclass(frozen=True)
class Push:
    ref: str | None
    topic: str
    event: str
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Ping:
    ref: str | None


Command = Auth | Refresh | Join | Leave | Push | Ping


def _str(obj: dict[str, Any], key: str, ref: str | None, *, max_len: int = 4096) -> str:
    value = obj.get(key)
    if not isinstance(value, str) or not value:
        raise FrameError("invalid", f"`{key}` must be a non-empty string", ref)
    if len(value) > max_len:
        raise FrameError("invalid", f"`{key}` is too long", ref)
    return value


def _topic(obj: dict[str, Any], ref: str | None) -> str:
    topic = _str(obj, "topic", ref, max_len=100)
    if not TOPIC_RE.match(topic):
        raise FrameError("invalid", "`topic` must be event:<uuid>, live:<uuid> or user:<uuid>", ref)
    return topic.lower()


def parse(text: str) -> Command:
    """One client frame → one command, or FrameError (with the ref when one could be read)."""
    try:
        obj = orjson.loads(text)
    except orjson.JSONDecodeError:
        raise FrameError("bad_frame", "frame is not valid JSON") from None
    if not isinstance(obj, dict):
        raise FrameError("bad_frame", "frame must be a JSON object")
    raw_ref = obj.get("ref")
    if raw_ref is not None and (not isinstance(raw_ref, str) or len(raw_ref) > MAX_REF):
        raise FrameError("bad_frame", f"`ref` must be a string of at most {MAX_REF} characters")
    ref: str | None = raw_ref
    op = obj.get("op")
    if not isinstance(op, str):
        raise FrameError("bad_frame", "`op` must be a string", ref)
    if op == "ping":
        return Ping(ref)
    if op == "auth":
        return Auth(ref, _str(obj, "token", ref))
    if op == "refresh":
        return Refresh(ref, _str(obj, "token", ref))
    if op == "join":
        since = obj.get("since")
        parsed_since = None
        if since is not None:
            if not isinstance(since, dict) or not isinstance(since.get("epoch"), str) \
                    or type(since.get("offset")) is not int or since["offset"] < 0:
                raise FrameError("invalid", "`since` must be {epoch: string, offset: non-negative integer}", ref)
            parsed_since = Since(since["epoch"], since["offset"])
        return Join(ref, _topic(obj, ref), parsed_since)
    if op == "leave":
        return Leave(ref, _topic(obj, ref))
    if op == "push":
        topic = _topic(obj, ref)
        event = _str(obj, "event", ref, max_len=64)
        if not EVENT_RE.match(event):
            raise FrameError("invalid", "`event` must look like noun.verb (or a single lower-case word)", ref)
        data = obj.get("data", {})
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise FrameError("invalid", "`data` must be an object", ref)
        if (bad := wire_json.problem(data, "data")) is not None:
            raise FrameError("invalid", bad, ref)
        return Push(ref, topic, event, data)
    raise FrameError("unknown_op", f"unknown op {op!r}", ref)


def _dumps(obj: dict[str, Any]) -> str:
    return wire_json.dumps(obj).decode()


def reply_ok(ref: str, data: dict[str, Any] | None = None) -> str:
    return _dumps({"op": "reply", "ref": ref, "ok": True, "data": data if data is not None else {}})


def reply_error(ref: str, code: ErrorCode, message: str) -> str:
    return _dumps({"op": "reply", "ref": ref, "ok": False, "error": {"code": code, "message": message}})


def error(code: ErrorCode, message: str) -> str:
    return _dumps({"op": "error", "error": {"code": code, "message": message}})


def pong(ref: str | None) -> str:
    return _dumps({"op": "pong", "ref": ref})


def left(topic: str, reason: LeftReason) -> str:
    return _dumps({"op": "left", "topic": topic, "reason": reason})


def presence(topic: str, joins: dict[str, Any], leaves: dict[str, Any]) -> str:
    return _dumps({"op": "presence", "topic": topic, "joins": joins, "leaves": leaves})


def msg(topic: str, event: str, offset: int, epoch: str, ts: str, data_json: str) -> str:
    """A log entry. `data_json` is already encoded: a broadcast is encoded once, not per recipient."""
    head = _dumps({"op": "msg", "topic": topic, "event": event, "offset": offset, "epoch": epoch, "ts": ts})
    return head[:-1] + ',"data":' + data_json + "}"


def encode_data(data: Any) -> str:
    return wire_json.dumps(data).decode()
