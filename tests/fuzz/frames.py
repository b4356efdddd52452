"""Hostile WebSocket frames for the fuzz tests, and what the protocol contract says each one gets.

`expect_parse` is the reference: written from docs/realtime.md (the envelope, every op, the error codes), not
from channels/messages.py, so the fuzz compares the code with the contract rather than with itself."""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from typing import Any

import orjson
from hypothesis import strategies as st

from channels.protocol import Limits

OPS = ("auth", "refresh", "join", "leave", "push", "ping")
TOPIC = re.compile(r"^(event|live|user):[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.I)
EVENT = re.compile(r"^[a-z][a-z_]*(\.[a-z][a-z_]*)*$")
MAX_REF = 64


@dataclass(frozen=True)
class Refused:
    """A frame the protocol refuses whatever the connection's state: `code`, as a reply when `ref` is set."""

    code: str
    ref: str | None


@dataclass(frozen=True)
class Accepted:
    op: str
    ref: str | None
    frame: dict[str, Any]


def _nonempty_str(value: Any, max_len: int, pattern: re.Pattern[str] | None = None) -> bool:
    return isinstance(value, str) and 0 < len(value) <= max_len and (pattern is None or bool(pattern.match(value)))


def _unstorable(value: Any) -> bool:
    """The wire rule (docs/realtime.md): no U+0000 anywhere (the database cannot store it), and every number
    within ±(2^53-1) (what a JavaScript client holds exactly)."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, bool) or value is None:
        return False
    if isinstance(value, int | float):
        return not abs(value) <= 2**53 - 1
    if isinstance(value, dict):
        return any(_unstorable(k) or _unstorable(v) for k, v in value.items())
    return isinstance(value, list) and any(_unstorable(v) for v in value)


def expect_parse(text: str) -> Refused | Accepted:
    """What one text frame is, by the contract: refused with a code, or accepted as an op."""
    try:
        obj = orjson.loads(text)  # the server's JSON: what it cannot read is not JSON to it
    except orjson.JSONDecodeError:
        return Refused("bad_frame", None)
    if not isinstance(obj, dict):
        return Refused("bad_frame", None)
    ref = obj.get("ref")
    if ref is not None and not (isinstance(ref, str) and len(ref) <= MAX_REF):
        return Refused("bad_frame", None)  # an unreadable ref cannot be answered by ref
    op = obj.get("op")
    if not isinstance(op, str):
        return Refused("bad_frame", ref)
    if op not in OPS:
        return Refused("unknown_op", ref)
    ok = True
    if op in ("auth", "refresh"):
        ok = _nonempty_str(obj.get("token"), 4096)
    elif op in ("join", "leave", "push"):
        ok = _nonempty_str(obj.get("topic"), 100, TOPIC)
        if ok and op == "join" and obj.get("since") is not None:
            since = obj["since"]
            ok = isinstance(since, dict) and isinstance(since.get("epoch"), str) \
                and type(since.get("offset")) is int and since["offset"] >= 0
        if ok and op == "push":
            data = obj.get("data")
            ok = _nonempty_str(obj.get("event"), 64, EVENT) and (data is None or isinstance(data, dict)) \
                and not _unstorable(data)
    if not ok:
        return Refused("invalid", ref)
    return Accepted(op, ref, obj)


def too_big(text: str, limits: Limits) -> bool:
    return len(text.encode("utf-8", "surrogatepass")) > limits.max_frame_bytes


# ---- strategies -------------------------------------------------------------------------------------------

def topics(kinds: tuple[str, ...] = ("event", "live", "user")) -> st.SearchStrategy[str]:
    return st.builds(lambda kind, u, upper: f"{kind}:{u}".upper() if upper else f"{kind}:{u}",
                     st.sampled_from(kinds), st.uuids(), st.booleans())


json_scalars = (st.none() | st.booleans() | st.integers(min_value=-(2**64), max_value=2**64)
                | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20))
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=10), inner, max_size=4), max_leaves=12)
refs = st.none() | st.text(max_size=MAX_REF + 2) | json_scalars
events = st.sampled_from(["step.update", "substep.update", "event.status", "chat.send", "prompt", "cancel",
                          "ai.prompt", "operation.apply"]) | st.from_regex(r"[a-z][a-z_]{0,8}(\.[a-z_]{1,8})?",
                                                                           fullmatch=True)


def valid_frames(topic: st.SearchStrategy[str] | None = None,
                 data: st.SearchStrategy[Any] | None = None) -> st.SearchStrategy[dict[str, Any]]:
    """Frames the contract accepts, each op with or without a ref."""
    topic = topic if topic is not None else topics()
    data = data if data is not None else st.dictionaries(st.text(max_size=10), json_values, max_size=4)
    ref = st.none() | st.text(min_size=0, max_size=MAX_REF)
    since = st.none() | st.fixed_dictionaries({"epoch": st.text(max_size=20),
                                               "offset": st.integers(min_value=0, max_value=2**64 - 1)})
    token = st.text(min_size=1, max_size=40)

    def frame(**fields: Any) -> dict[str, Any]:
        return {k: v for k, v in fields.items() if v is not None or k == "ref"}

    return st.one_of(
        st.builds(lambda r: frame(op="ping", ref=r), ref),
        st.builds(lambda r, t: frame(op="auth", ref=r, token=t), ref, token),
        st.builds(lambda r, t: frame(op="refresh", ref=r, token=t), ref, token),
        st.builds(lambda r, t, s: frame(op="join", ref=r, topic=t, since=s), ref, topic, since),
        st.builds(lambda r, t: frame(op="leave", ref=r, topic=t), ref, topic),
        st.builds(lambda r, t, e, d: frame(op="push", ref=r, topic=t, event=e, data=d), ref, topic, events, data),
    )


@st.composite
def mutated(draw: st.DrawFn, base: st.SearchStrategy[dict[str, Any]] | None = None) -> str:
    """A valid frame with one to three mutations: a key dropped, a value of another type, a key added, the op
    renamed, then perhaps the text itself cut, spliced or padded."""
    frame = dict(draw(base if base is not None else valid_frames()))
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        how = draw(st.sampled_from(["drop", "retype", "add", "op", "nest"]))
        keys = sorted(frame)
        if how == "drop" and keys:
            frame.pop(draw(st.sampled_from(keys)))
        elif how == "retype" and keys:
            frame[draw(st.sampled_from(keys))] = draw(json_values)
        elif how == "add":
            frame[draw(st.sampled_from(["ref", "op", "topic", "event", "data", "since", "token"])
                       | st.text(max_size=8))] = draw(json_values)
        elif how == "op":
            frame["op"] = draw(st.sampled_from([o.upper() for o in OPS] + [f" {o}" for o in OPS]) | st.text(max_size=8))
        elif how == "nest":
            frame = {"op": frame.get("op"), "data": frame} if draw(st.booleans()) else {"frame": frame}
    text = json.dumps(frame, ensure_ascii=draw(st.booleans()))
    cut = draw(st.sampled_from(["none", "none", "truncate", "splice", "wrap"]))
    if cut == "truncate" and text:
        text = text[: draw(st.integers(min_value=0, max_value=len(text) - 1))]
    elif cut == "splice":
        at = draw(st.integers(min_value=0, max_value=len(text)))
        text = text[:at] + draw(st.text(min_size=1, max_size=4)) + text[at:]
    elif cut == "wrap":
        text = draw(st.sampled_from(["[{}]", " {} ", "{}\n", '{{"x":{}}}', "{}{}"])).format(text, text)
    return text


def hostile_text() -> st.SearchStrategy[str]:
    """Any text a client can send in a frame: arbitrary text, arbitrary JSON, valid and mutated frames, and the
    deep, long and odd cases."""
    return st.one_of(
        st.text(max_size=200),
        json_values.map(lambda v: json.dumps(v)),
        valid_frames().map(json.dumps),
        mutated(),
        st.integers(min_value=1, max_value=5000).map(lambda n: "[" * n),  # deep nesting past orjson's limit
        st.sampled_from(["", " ", "null", "{}", "[]", '""', "NaN", "Infinity", "1e400", "\ufeff{}",
                         '{"op":"ping","ref":"\\ud800"}', '{"op":"ping","ref":1e400}', '{"op":"ping"}{}']),
    )


def sample_uuid() -> str:
    return str(uuid.uuid4())
