"""The sans-I/O protocol, tested by feeding it strings."""

from __future__ import annotations

import json
from typing import Any

import pytest

from channels import messages as m
from channels.protocol import Close, ConnectionProtocol, Limits, State

T = "event:0b7e3c1a-1d2e-4f5a-8b9c-0d1e2f3a4b5c"
T2 = "live:1b7e3c1a-1d2e-4f5a-8b9c-0d1e2f3a4b5c"


def frames(p: ConnectionProtocol) -> list[dict[str, Any]]:
    return [json.loads(t) for t in p.data_to_send()]


def authed(limits: Limits | None = None) -> ConnectionProtocol:
    p = ConnectionProtocol(limits or Limits(), now=0.0)
    p.receive_text('{"op":"auth","ref":"1","token":"t"}', now=0.0)
    [cmd] = p.commands()
    assert isinstance(cmd, m.Auth) and cmd.token == "t"
    p.auth_ok(cmd.ref, "u1", "c1", expires_at=1000.0)
    assert frames(p) == [{"op": "reply", "ref": "1", "ok": True,
                          "data": {"userId": "u1", "connectionId": "c1", "heartbeat": 25}}]
    return p


def joined(topic: str = T) -> ConnectionProtocol:
    p = authed()
    p.receive_text(json.dumps({"op": "join", "ref": "j", "topic": topic}), now=0.0)
    [cmd] = p.commands()
    p.join_ok(cmd.ref, topic, {"epoch": "e", "offset": 0, "recovered": False, "presence": {}})
    frames(p)
    return p


@pytest.mark.parametrize("first", [
    json.dumps({"op": "join", "ref": "1", "topic": T}), '{"op":"ping","ref":"1"}', "not json", "[]", '{"op":"auth"}',
])
def test_anything_but_auth_first_closes_4001(first: str) -> None:
    p = ConnectionProtocol(Limits(), now=0.0)
    p.receive_text(first, now=0.0)
    assert p.close_code == Close.UNAUTHENTICATED and p.state is State.CLOSED and p.commands() == []


def test_binary_frame_before_auth_closes_4001() -> None:
    p = ConnectionProtocol(Limits(), now=0.0)
    p.receive_bytes(b"\x00", now=0.0)
    assert p.close_code == Close.UNAUTHENTICATED


def test_bad_token_closes_4001() -> None:
    p = ConnectionProtocol(Limits(), now=0.0)
    p.receive_text('{"op":"auth","ref":"1","token":"bad"}', now=0.0)
    [cmd] = p.commands()
    p.auth_failed(cmd.ref, "invalid token")
    assert p.close_code == Close.UNAUTHENTICATED


def test_auth_timeout_closes_4001() -> None:
    p = ConnectionProtocol(Limits(auth_timeout=10), now=0.0)
    assert p.next_deadline() == 10
    p.tick(9.9)
    assert p.close_code is None
    p.tick(10.0)
    assert p.close_code == Close.UNAUTHENTICATED


def test_token_expiry_without_refresh_closes_4001_and_refresh_extends() -> None:
    p = authed()
    p.receive_text('{"op":"refresh","ref":"r","token":"t2"}', now=5.0)
    [cmd] = p.commands()
    assert isinstance(cmd, m.Refresh)
    p.refresh_ok(cmd.ref, expires_at=2000.0)
    assert frames(p) == [{"op": "reply", "ref": "r", "ok": True, "data": {"expiresAt": 2000}}]
    p.tick(1500.0)
    assert p.close_code is None
    p.tick(2000.0)
    assert p.close_code == Close.UNAUTHENTICATED


def test_failed_refresh_replies_unauthorized_and_keeps_connection() -> None:
    p = authed()
    p.receive_text('{"op":"refresh","ref":"r","token":"t2"}', now=5.0)
    p.refresh_failed(p.commands()[0].ref, "invalid token")
    assert frames(p)[0]["error"]["code"] == "unauthorized" and p.close_code is None


def test_header_authenticated_connection_is_open_and_still_answers_auth() -> None:
    p = ConnectionProtocol(Limits(), now=0.0, user_id="u1", expires_at=100.0)
    p.receive_text('{"op":"ping","ref":"p"}', now=0.0)
    assert frames(p) == [{"op": "pong", "ref": "p"}]
    p.receive_text('{"op":"auth","ref":"a","token":"t"}', now=0.0)
    p.auth_ok(p.commands()[0].ref, "u1", "c1", 200.0)
    assert frames(p)[0]["ok"] is True
    p.receive_text('{"op":"auth","ref":"b","token":"t"}', now=0.0)
    p.auth_ok(p.commands()[0].ref, "someone-else", "c1", 200.0)
    assert p.close_code == Close.UNAUTHENTICATED


def test_join_and_leave() -> None:
    p = authed()
    p.receive_text(json.dumps({"op": "join", "ref": "2", "topic": T, "since": {"epoch": "e", "offset": 41}}), 0)
    [cmd] = p.commands()
    assert cmd == m.Join("2", T, m.Since("e", 41))
    p.join_ok("2", T, {"epoch": "e", "offset": 41, "recovered": True, "presence": {}})
    assert frames(p)[0]["data"]["recovered"] is True and T in p.joined
    p.receive_text(json.dumps({"op": "leave", "ref": "3", "topic": T}), 0)
    assert p.commands() == [m.Leave("3", T)]
    assert frames(p) == [{"op": "reply", "ref": "3", "ok": True, "data": {}}] and T not in p.joined


def test_join_twice_is_conflict_and_failed_join_frees_the_slot() -> None:
    p = joined()
    p.receive_text(json.dumps({"op": "join", "ref": "x", "topic": T}), 0)
    assert frames(p)[0]["error"]["code"] == "conflict"
    p.receive_text(json.dumps({"op": "join", "ref": "y", "topic": T2}), 0)
    p.join_failed("y", T2, "not_found", "no such session")
    assert frames(p)[0]["error"] == {"code": "not_found", "message": "no such session"}
    assert T2 not in p.pending and T2 not in p.joined


def test_leave_or_push_without_join_is_not_joined() -> None:
    p = authed()
    p.receive_text(json.dumps({"op": "leave", "ref": "1", "topic": T}), 0)
    p.receive_text(json.dumps({"op": "push", "ref": "2", "topic": T, "event": "step.update", "data": {}}), 0)
    assert [f["error"]["code"] for f in frames(p)] == ["not_joined", "not_joined"]
    assert p.commands() == []


def test_topic_limit() -> None:
    p = authed(Limits(max_topics=2))
    for i in range(3):
        topic = f"event:0b7e3c1a-1d2e-4f5a-8b9c-0d1e2f3a4b5{i}"
        p.receive_text(json.dumps({"op": "join", "ref": str(i), "topic": topic}), 0)
    assert len(p.commands()) == 2
    assert frames(p)[0]["error"]["code"] == "too_many_topics"


def test_push_is_a_command_and_rate_limited_beyond_the_burst() -> None:
    p = joined()
    for i in range(25):
        p.receive_text(json.dumps({"op": "push", "ref": str(i), "topic": T, "event": "step.update",
                                   "data": {"stepId": "x"}}), now=0.0)
    cmds = p.commands()
    assert len(cmds) == 20 and cmds[0] == m.Push("0", T, "step.update", {"stepId": "x"})
    assert [f["error"]["code"] for f in frames(p)] == ["rate_limited"] * 5
    p.receive_text(json.dumps({"op": "push", "ref": "later", "topic": T, "event": "chat.send"}), now=0.2)
    assert len(p.commands()) == 1  # 0.2 s at 10/s refilled two tokens


def test_sustained_push_abuse_closes_4029() -> None:
    p = joined()
    for i in range(80):
        p.receive_text(json.dumps({"op": "push", "ref": str(i), "topic": T, "event": "chat.send"}), now=0.0)
    assert p.close_code == Close.RATE_LIMITED


def _f(**kw: Any) -> str:
    return json.dumps(kw)


@pytest.mark.parametrize(("frame", "code", "replied"), [
    ("{nope", "bad_frame", False), ("[1,2]", "bad_frame", False), ('"str"', "bad_frame", False),
    ("42", "bad_frame", False), ('{"op":"ping","ref":5}', "bad_frame", False),
    (_f(ref="1"), "bad_frame", True), (_f(op=7, ref="1"), "bad_frame", True),
    (_f(op="dance", ref="1"), "unknown_op", True), (_f(op="join", ref="1"), "invalid", True),
    (_f(op="join", ref="1", topic="room:1"), "invalid", True),
    (_f(op="join", ref="1", topic="event:nope"), "invalid", True),
    (_f(op="join", ref="1", topic=T, since={"epoch": "e", "offset": -1}), "invalid", True),
    (_f(op="join", ref="1", topic=T, since={"epoch": "e", "offset": "4"}), "invalid", True),
    (_f(op="push", ref="1", topic=T, event="Bad Event"), "invalid", True),
    (_f(op="push", ref="1", topic=T, event="a.b", data=[1]), "invalid", True),
    (_f(op="refresh", ref="1", token=""), "invalid", True),
])
def test_garbage_gets_an_error_never_a_crash(frame: str, code: str, replied: bool) -> None:
    p = authed()
    p.receive_text(frame, now=0.0)
    [out] = frames(p)
    assert out["error"]["code"] == code
    if replied:
        assert out["op"] == "reply" and out["ref"] == "1" and out["ok"] is False
    else:
        assert out["op"] == "error"
    assert p.close_code is None and p.commands() == []


def test_error_without_ref_is_an_error_frame() -> None:
    p = authed()
    p.receive_text("{nope", now=0.0)
    assert frames(p) == [{"op": "error", "error": {"code": "bad_frame", "message": "frame is not valid JSON"}}]


def test_more_than_ten_malformed_frames_in_a_row_close_1008() -> None:
    p = authed()
    for _ in range(10):
        p.receive_text("garbage", now=0.0)
    assert p.close_code is None
    p.receive_text('{"op":"ping","ref":"ok"}', now=0.0)  # a good frame resets the count
    for _ in range(11):
        p.receive_text("garbage", now=0.0)
    assert p.close_code == Close.POLICY


def test_frame_over_64_kib_closes_1009() -> None:
    p = authed()
    p.receive_text(json.dumps({"op": "ping", "ref": "x" * 10, "pad": "y" * 70_000}), now=0.0)
    assert p.close_code == Close.TOO_BIG


def test_server_removal_sends_left() -> None:
    p = joined()
    p.removed(T, "revoked")
    assert frames(p) == [{"op": "left", "topic": T, "reason": "revoked"}] and T not in p.joined
    p.removed(T, "revoked")
    assert frames(p) == []


def test_msg_frame_embeds_pre_encoded_data() -> None:
    text = m.msg(T, "step.updated", 42, "ep", "2026-01-01T00:00:00Z", m.encode_data({"id": "s", "completed": True}))
    assert json.loads(text) == {"op": "msg", "topic": T, "event": "step.updated", "offset": 42, "epoch": "ep",
                                "ts": "2026-01-01T00:00:00Z", "data": {"id": "s", "completed": True}}


def test_nothing_happens_after_close() -> None:
    p = authed()
    p.close(Close.RESTART, "restarting")
    p.receive_text('{"op":"ping","ref":"1"}', now=0.0)
    assert p.data_to_send() == [] and p.close_code == Close.RESTART


@pytest.mark.parametrize("data", ['{"n": 1e20}', '{"n": [9007199254740992]}', '{"text": "a\\u0000b"}',
                                  '{"k\\u0000": 1}'])
def test_push_data_no_client_can_hold_or_store_is_invalid(data: str) -> None:
    p = joined()
    p.receive_text(f'{{"op":"push","ref":"1","topic":"{T}","event":"chat.send","data":{data}}}', now=0.0)
    assert p.commands() == []
    [frame] = frames(p)
    assert frame["ref"] == "1" and frame["error"]["code"] == "invalid", frame
    assert p.close_code is None


def test_frames_write_stored_numbers_past_64_bits_exactly() -> None:
    data = m.encode_data({"n": 10**20, "x": float("nan"), "ok": [1, "a"]})
    assert data == '{"n":100000000000000000000,"x":null,"ok":[1,"a"]}'


def test_nothing_happens_after_close_for_binary_frames_either() -> None:
    """Found by tests/fuzz/test_protocol.py: a second binary frame after a 4001 close got a `bad_frame` error."""
    p = ConnectionProtocol(Limits(), now=0.0)
    p.receive_bytes(b"\x00", now=0.0)
    assert p.close_code == Close.UNAUTHENTICATED
    p.receive_bytes(b"\x00", now=0.0)
    assert p.data_to_send() == [] and p.close_code == Close.UNAUTHENTICATED
    q = authed()
    q.close(Close.RESTART)
    q.receive_bytes(b"\x00", now=0.0)
    assert q.data_to_send() == [] and q.close_code == Close.RESTART


@pytest.mark.parametrize(("chars", "code"), [(16_000, None), (22_000, Close.TOO_BIG)])
def test_a_long_frame_with_a_lone_surrogate_is_measured_not_raised(chars: int, code: int | None) -> None:
    """Found by tests/fuzz/test_protocol.py: measuring a long frame encoded it to UTF-8, which raised on a lone
    surrogate instead of answering bad_frame or closing 1009."""
    p = authed()
    p.receive_text('{"op":"ping","ref":"\ud800' + "\ud800" * chars + '"}', now=0.0)
    assert p.close_code == code
    if code is None:
        assert frames(p) == [{"op": "error", "error": {"code": "bad_frame", "message": "frame is not valid JSON"}}]


@pytest.mark.parametrize("data", [{"text": "a\x00b"}, {"stepId": "s", "content": "\x00"}, {"k\x00": 1},
                                  {"list": [["deep", {"x": "\x00"}]]}])
def test_push_data_with_a_nul_character_is_invalid(data: dict[str, Any]) -> None:
    """Found by the socket fuzz (tests/fuzz/test_socket.py): PostgreSQL cannot store U+0000, so a chat line or a
    step's content with one failed in the database and the push answered `internal` (logged as a server error)."""
    p = joined()
    p.receive_text(json.dumps({"op": "push", "ref": "1", "topic": T, "event": "chat.send", "data": data}), now=0.0)
    [frame] = frames(p)
    assert frame["ok"] is False and frame["error"]["code"] == "invalid", frame
    assert "may not contain a NUL character" in frame["error"]["message"]
    assert p.commands() == []


def test_nul_check_survives_data_nested_deeper_than_the_recursion_limit() -> None:
    p = joined()
    deep = '{"op":"push","ref":"1","topic":"' + T + '","event":"chat.send","data":{"a":' + "[" * 1020 + '"\\u0000"' \
        + "]" * 1020 + "}}"
    p.receive_text(deep, now=0.0)
    assert frames(p)[0]["error"]["code"] == "invalid"
