"""Hypothesis-driven frames against the sans-I/O protocol (channels/protocol.py): arbitrary text and bytes,
arbitrary JSON, valid frames and mutated ones, alone and in long sequences with the I/O layer's answers in
between. No exception may escape, and every frame gets what docs/realtime.md says: its reply or error code,
exactly one answer per readable `ref`, or the documented close code (4001, 1008, 1009, 4029).

In the quick loop (pure Python, a few seconds). Bigger by hand: FUZZ_FRAMES=20000 .venv/bin/pytest
tests/fuzz/test_protocol.py"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from channels import messages as m
from channels.protocol import Close, ConnectionProtocol, Limits, State
from tests.fuzz.frames import Accepted, Refused, expect_parse, hostile_text, mutated, too_big, topics, valid_frames

FRAMES = int(os.environ.get("FUZZ_FRAMES", "400"))
FUZZ = settings(max_examples=FRAMES, derandomize=True, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
SEQUENCES = settings(FUZZ, max_examples=max(20, FRAMES // 4))
LIMITS = Limits(max_topics=3, push_burst=4, push_rate=2.0, abuse_after=6)
DOCUMENTED_CLOSES = {Close.POLICY, Close.TOO_BIG, Close.UNAUTHENTICATED, Close.RATE_LIMITED}
# Text frames come off the wire as UTF-8, but the protocol takes any str: lone surrogates too.
any_text = st.text(st.characters(exclude_categories=()), max_size=60) | st.builds(
    lambda a, b: a + "\ud800" + b, st.text(max_size=20), st.text(max_size=20))
# Near the 64 KiB limit, in characters of one to four UTF-8 bytes (and lone surrogates, which have none).
long_text = st.builds(lambda n, c, frame: frame.replace("PAD", c * n), st.integers(min_value=16_000, max_value=66_000),
                      st.sampled_from(["a", "é", "€", "😀", "\ud800"]),
                      st.sampled_from(["PAD", '{"op":"ping","ref":"r","pad":"PAD"}']))
frames_of_any_kind = hostile_text() | any_text | long_text


def authed(user: str = "u1") -> ConnectionProtocol:
    p = ConnectionProtocol(LIMITS, now=0.0)
    p.receive_text('{"op":"auth","ref":"a","token":"t"}', now=0.0)
    [cmd] = p.commands()
    p.auth_ok(cmd.ref, user, "c1", expires_at=1e9)
    p.data_to_send()
    return p


def sent(p: ConnectionProtocol) -> list[dict[str, Any]]:
    out = []
    for text in p.data_to_send():
        frame = orjson.loads(text)
        assert isinstance(frame, dict) and frame["op"] in m.SERVER_OPS, text
        if "error" in frame:
            assert frame["error"]["code"] in m.ERROR_CODES and isinstance(frame["error"]["message"], str), text
        out.append(frame)
    return out


def answer(code: str, ref: str | None) -> dict[str, Any]:
    """The frame that carries a refusal: a reply when the frame had a readable ref, else an `error`."""
    if ref is None:
        return {"op": "error", "code": code}
    return {"op": "reply", "ref": ref, "ok": False, "code": code}


def shape(frame: dict[str, Any]) -> dict[str, Any]:
    if frame["op"] == "error":
        return {"op": "error", "code": frame["error"]["code"]}
    if frame["op"] == "reply" and not frame["ok"]:
        return {"op": "reply", "ref": frame["ref"], "ok": False, "code": frame["error"]["code"]}
    return frame


# ---- one frame on a fresh connection --------------------------------------------------------------------

@FUZZ
@given(frames_of_any_kind)
def test_any_text_on_an_open_connection_gets_its_documented_answer(text: str) -> None:
    p = authed()
    p.receive_text(text, now=1.0)
    expected = expect_parse(text)
    if too_big(text, LIMITS):
        assert p.close_code == Close.TOO_BIG and p.data_to_send() == [] and p.commands() == []
        return
    assert p.close_code is None
    if isinstance(expected, Refused):
        assert p.commands() == []
        assert [shape(f) for f in sent(p)] == [answer(expected.code, expected.ref)], text
        return
    commands = p.commands()
    out = [shape(f) for f in sent(p)]
    if expected.op == "ping":
        assert commands == [] and out == [{"op": "pong", "ref": expected.ref}]
    elif expected.op in ("leave", "push"):  # nothing joined yet
        assert commands == [] and out == [answer("not_joined", expected.ref)]
    else:  # auth, refresh, join: the I/O layer answers them
        assert [type(c).__name__.lower() for c in commands] == [expected.op] and out == []
        assert commands[0].ref == expected.ref


@FUZZ
@given(frames_of_any_kind)
def test_anything_but_a_valid_auth_first_closes_4001(text: str) -> None:
    p = ConnectionProtocol(LIMITS, now=0.0)
    p.receive_text(text, now=0.0)
    expected = expect_parse(text)
    assert p.data_to_send() == []
    if too_big(text, LIMITS):
        assert p.close_code == Close.TOO_BIG
    elif isinstance(expected, Accepted) and expected.op == "auth":
        [cmd] = p.commands()
        assert isinstance(cmd, m.Auth) and cmd.token == expected.frame["token"] and p.close_code is None
    else:
        assert p.close_code == Close.UNAUTHENTICATED and p.commands() == []


@FUZZ
@given(st.binary(max_size=100), st.booleans())
def test_binary_frames_are_bad_frames_or_4001_before_auth(data: bytes, open_: bool) -> None:
    p = authed() if open_ else ConnectionProtocol(LIMITS, now=0.0)
    p.receive_bytes(data, now=0.0)
    if open_:
        assert [shape(f) for f in sent(p)] == [answer("bad_frame", None)] and p.close_code is None
    else:
        assert p.close_code == Close.UNAUTHENTICATED and p.data_to_send() == []


# ---- sequences, with the I/O layer answering between frames ----------------------------------------------

@dataclass
class Model:
    """The contract's view of one connection: what it has joined, its malformed-frame streak, its push budget."""

    limits: Limits
    authed: bool
    joined: set[str] = field(default_factory=set)
    bad_in_a_row: int = 0
    tokens: float = 0.0
    tokens_at: float = 0.0
    limited_in_a_row: int = 0
    closed: int | None = None

    def take_token(self, now: float) -> bool:
        self.tokens = min(float(self.limits.push_burst),
                          self.tokens + max(0.0, now - self.tokens_at) * self.limits.push_rate)
        self.tokens_at = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


@dataclass
class Step:
    text: str | None  # None: a binary frame
    dt: float
    io_ok: bool  # how the I/O layer answers the command this frame becomes, if any


def _io(p: ConnectionProtocol, command: m.Command, ok: bool) -> None:
    """What server/websocket.py reports back for each command."""
    if isinstance(command, m.Auth):
        p.auth_ok(command.ref, "u1", "c1", 1e9) if ok else p.auth_failed(command.ref, "invalid token")
    elif isinstance(command, m.Refresh):
        p.refresh_ok(command.ref, 1e9) if ok else p.refresh_failed(command.ref, "invalid token")
    elif isinstance(command, m.Join):
        if ok:
            p.join_ok(command.ref, command.topic, {"epoch": "e", "offset": 0, "recovered": False, "presence": {}})
        else:
            p.join_failed(command.ref, command.topic, "not_found", "no such topic")
    elif isinstance(command, m.Push):
        p.push_ok(command.ref, {}) if ok else p.push_failed(command.ref, "invalid", "bad data")


def _auth_reply(ref: str | None, limits: Limits) -> list[dict[str, Any]]:
    if ref is None:
        return []
    return [{"op": "reply", "ref": ref, "ok": True,
             "data": {"userId": "u1", "connectionId": "c1", "heartbeat": limits.heartbeat}}]


def _predict(model: Model, step: Step, now: float) -> tuple[list[dict[str, Any]], int | None]:
    """The frames and close code the contract gives for one step, updating the model."""
    limits = model.limits
    if step.text is None:
        if not model.authed:
            return [], Close.UNAUTHENTICATED
        parsed: Refused | Accepted = Refused("bad_frame", None)
    elif too_big(step.text, limits):
        return [], Close.TOO_BIG
    else:
        parsed = expect_parse(step.text)
    if not model.authed:
        if isinstance(parsed, Accepted) and parsed.op == "auth":
            if not step.io_ok:
                return [], Close.UNAUTHENTICATED
            model.authed = True
            return _auth_reply(parsed.ref, limits), None
        return [], Close.UNAUTHENTICATED
    if isinstance(parsed, Refused):
        model.bad_in_a_row += 1
        if model.bad_in_a_row > limits.max_bad_frames:
            return [], Close.POLICY
        return [answer(parsed.code, parsed.ref)], None
    model.bad_in_a_row = 0
    ref, frame = parsed.ref, parsed.frame
    ok_reply = [] if ref is None else [{"op": "reply", "ref": ref, "ok": True}]
    if parsed.op == "ping":
        return [{"op": "pong", "ref": ref}], None
    if parsed.op == "auth":
        if not step.io_ok:
            return [answer("unauthorized", ref)], None
        return _auth_reply(ref, limits), None
    if parsed.op == "refresh":
        return (ok_reply if step.io_ok else [answer("unauthorized", ref)]), None
    topic = frame["topic"].lower()
    if parsed.op == "join":
        if topic in model.joined:
            return [answer("conflict", ref)], None
        if len(model.joined) >= limits.max_topics:
            return [answer("too_many_topics", ref)], None
        if step.io_ok:
            model.joined.add(topic)
            return ok_reply, None
        return [answer("not_found", ref)], None
    if parsed.op == "leave":
        if topic not in model.joined:
            return [answer("not_joined", ref)], None
        model.joined.discard(topic)
        return ok_reply, None
    # push
    if topic not in model.joined:
        return [answer("not_joined", ref)], None
    if not model.take_token(now):
        model.limited_in_a_row += 1
        if model.limited_in_a_row > limits.abuse_after:
            return [], Close.RATE_LIMITED
        return [answer("rate_limited", ref)], None
    model.limited_in_a_row = 0
    return (ok_reply if step.io_ok else [answer("invalid", ref)]), None


def _comparable(frame: dict[str, Any]) -> dict[str, Any]:
    frame = shape(frame)
    if frame["op"] == "reply" and frame["ok"]:
        return {"op": "reply", "ref": frame["ref"], "ok": True,
                **({"data": frame["data"]} if "userId" in frame.get("data", {}) else {})}
    return frame


# A handful of topics so that joins, leaves and pushes meet each other.
TOPIC_POOL = st.sampled_from([f"event:{i:08x}-0000-4000-8000-000000000000" for i in range(5)]
                             + ["live:00000000-0000-4000-8000-00000000000a"])
pool_frames = valid_frames(topic=TOPIC_POOL | topics(), data=st.just({"stepId": "x"}) | st.none())
steps = st.builds(
    Step,
    st.one_of(pool_frames.map(json.dumps), mutated(pool_frames), frames_of_any_kind, st.none()),
    st.sampled_from([0.0, 0.0, 0.05, 0.5, 3.0]),
    st.booleans(),
)


@SEQUENCES
@given(st.lists(steps, min_size=1, max_size=60), st.booleans())
def test_frame_sequences_follow_the_contract(sequence: list[Step], header_authenticated: bool) -> None:
    """Each step: the frames the contract predicts (a reply per readable ref, the documented codes), and the close
    codes at the documented thresholds; nothing at all once closed."""
    if header_authenticated:
        p = ConnectionProtocol(LIMITS, now=0.0, user_id="u1", expires_at=1e9)
    else:
        p = ConnectionProtocol(LIMITS, now=0.0)
    model = Model(LIMITS, authed=header_authenticated, tokens=float(LIMITS.push_burst))
    now = 0.0
    for step in sequence:
        now += step.dt
        if step.text is None:
            p.receive_bytes(b"\x00\xff", now)
        else:
            p.receive_text(step.text, now)
        for command in p.commands():
            _io(p, command, step.io_ok)
        got = [_comparable(f) for f in sent(p)]
        if model.closed is not None:
            assert got == [] and p.close_code == model.closed and p.commands() == []
            continue
        expected, close = _predict(model, step, now)
        if close is not None:
            model.closed = close
        assert got == expected, (step, model)
        assert p.close_code == close, (step, model)
        assert close is None or close in DOCUMENTED_CLOSES
        assert (p.state is State.CLOSED) == (close is not None)
        assert p.joined == model.joined and p.pending == set()
