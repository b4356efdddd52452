"""A short fuzz against a real socket: the in-process app's /ws (on PostgreSQL) through Starlette's TestClient.

A signed-in connection that has joined its own event room and user topic gets a bounded number of hostile
frames (mutated joins, leaves and pushes whose data reach the domain handlers, garbage, binary frames). After
each one a ping with a fresh ref fences its answers: every frame must get the answer docs/realtime.md gives it
(its code, never `internal`; one answer per readable ref) or the documented close code, and the server may
log no error. Bigger by hand: FUZZ_SOCKET_EXAMPLES=200 .venv/bin/pytest tests/fuzz/test_socket.py"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient, WebSocketTestSession
from starlette.websockets import WebSocketDisconnect

from channels import messages as m
from channels.protocol import Close
from server.app import create_app
from tests.conftest import make_settings
from tests.fuzz.conftest import PASSWORD, ErrorLog
from tests.fuzz.frames import Accepted, Refused, expect_parse, json_values, mutated, topics, valid_frames

EXAMPLES = int(os.environ.get("FUZZ_SOCKET_EXAMPLES", "12"))
FRAMES_PER_CONNECTION = 20
# Refusals a frame may get from the domain or the connection's state; `internal` and `unavailable` never.
ALLOWED = set(m.ERROR_CODES) - {"internal", "unavailable"}


@dataclass
class Room:
    client: TestClient
    token: str
    user_id: str
    event_id: str
    step_ids: list[str]
    substep_ids: list[str]

    @property
    def topic(self) -> str:
        return f"event:{self.event_id}"


@pytest.fixture(scope="module")
def room(fuzz_database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Room]:
    """A user who created an event (its checklist cloned from a template), in an app of this module's own."""
    settings_ = make_settings(fuzz_database, tmp_path_factory.mktemp("socket"))
    with TestClient(create_app(settings_)) as client:
        handle = f"ws_{uuid.uuid4().hex[:8]}"
        r = client.post("/users", json={"email": f"{handle}@example.com", "password": PASSWORD, "name": "Ws",
                                        "handle": handle})
        assert r.status_code == 201, r.text
        user_id = r.json()["id"]
        r = client.post("/auth/token", data={"username": f"{handle}@example.com", "password": PASSWORD})
        token = r.json()["accessToken"]
        auth = {"Authorization": f"Bearer {token}"}
        r = client.post("/templates", headers=auth, json={"title": "Fuzz", "steps": [
            {"content": "one", "subSteps": [{"content": "a"}, {"content": "b"}]}, {"content": "two"}]})
        assert r.status_code == 201, r.text
        r = client.post("/events", headers=auth, json={"title": "Fuzz room", "templateProcessId": r.json()["id"],
                                                       "startTime": "2026-03-02T09:00:00Z",
                                                       "endTime": "2026-03-02T10:00:00Z"})
        assert r.status_code == 201, r.text
        event = r.json()
        steps = client.get(f"/processes/{event['processId']}/steps", headers=auth).json()
        yield Room(client, token, user_id, event["id"], [s["id"] for s in steps],
                   [sub["id"] for s in steps for sub in s["subSteps"]])


def read(ws: WebSocketTestSession) -> dict[str, Any] | int:
    """The next frame as JSON, checked against the envelope; or the close code when the server closed."""
    try:
        text = ws.receive_text()
    except WebSocketDisconnect as exc:
        return int(exc.code)
    frame = orjson.loads(text)
    assert isinstance(frame, dict) and frame["op"] in m.SERVER_OPS, text
    if "error" in frame:
        assert frame["error"]["code"] in m.ERROR_CODES, text
    return frame


def fenced(ws: WebSocketTestSession, n: int) -> list[dict[str, Any]] | int:
    """Every frame up to the pong of a fence ping, or the close code if the socket closed first."""
    ref = f"fence-{n}"
    ws.send_text(json.dumps({"op": "ping", "ref": ref}))
    out: list[dict[str, Any]] = []
    while True:
        frame = read(ws)
        if isinstance(frame, int):
            return frame
        if frame == {"op": "pong", "ref": ref}:
            return out
        out.append(frame)


def connect(room: Room) -> WebSocketTestSession:
    ws = room.client.websocket_connect("/ws", subprotocols=[m.SUBPROTOCOL],
                                       headers={"Authorization": f"Bearer {room.token}"})
    ws.__enter__()
    for ref, topic in (("j1", room.topic), ("j2", f"user:{room.user_id}")):
        ws.send_text(json.dumps({"op": "join", "ref": ref, "topic": topic}))
        frames = fenced(ws, 0)
        assert not isinstance(frames, int) and any(f.get("ref") == ref and f.get("ok") for f in frames), frames
    return ws


# Values that break things at the edges: NUL, empty, huge, beyond 32 and 64 bits, the wrong type, moments that
# leave the calendar in UTC, the calendar's last day.
EDGES = ["\x00", "a\x00b", "", " ", "x" * 6000, "😀" * 2000, 2**31, 2**63, 2**64 - 1, -1, 1.5, True, None, [], {},
         "0001-01-01T00:00:00+23:59", "9999-12-31T23:59:59-23:59", "9999-12-31", "nope"]
STATUSES = ["Pending", "Planning", "Execution", "Review", "Administrative", "Done"]


@st.composite
def poisoned(draw: st.DrawFn, base: dict[str, Any], extra_keys: list[str]) -> dict[str, Any]:
    """A push's plausible data with up to two fields replaced by an edge value (or any JSON value)."""
    data = {k: v for k, v in base.items() if k in ("stepId", "subStepId") or draw(st.booleans())}
    for _ in range(draw(st.integers(min_value=0, max_value=2))):
        key = draw(st.sampled_from(sorted(base) + extra_keys))
        data[key] = draw(st.sampled_from(EDGES) | json_values)
    return data


def socket_frames(room: Room) -> st.SearchStrategy[str | bytes]:
    """Frames aimed at what this connection can reach: its room's checklist, chat and status through pushes whose
    data is plausible but poisoned, its topics, joins with odd resume positions; mutated frames, and garbage."""
    step = st.sampled_from(room.step_ids) | st.uuids().map(str)
    substep = st.sampled_from(room.substep_ids) | st.uuids().map(str)
    timestamps = ["2026-01-01T00:00:00Z"]

    def push(event: str, data: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[str]:
        return st.builds(lambda r, d: json.dumps({"op": "push", "ref": r, "topic": room.topic, "event": event,
                                                  "data": d}), st.none() | st.text(max_size=8), data)

    checklist = {"completed": True, "content": "done", "order": 1, "completedAt": timestamps[0], "dueDate": "soon"}
    pushes = st.one_of(
        push("step.update", step.flatmap(lambda i: poisoned({"stepId": i, **checklist}, ["id", "step_id"]))),
        push("substep.update", substep.flatmap(lambda i: poisoned({"subStepId": i, **checklist}, ["stepId"]))),
        push("event.status", st.sampled_from(STATUSES).flatmap(lambda v: poisoned({"status": v}, []))),
        push("chat.send", poisoned({"text": "hello"}, ["transcript"])),
    )
    own = st.sampled_from([room.topic, f"user:{room.user_id}", room.topic.upper()])
    aimed = valid_frames(topic=own | topics(), data=st.dictionaries(st.text(max_size=8), json_values, max_size=3))
    resume = st.builds(lambda t, e, o, r: json.dumps({"op": "join", "ref": r, "topic": t,
                                                      "since": {"epoch": e, "offset": o}}),
                       own | topics(), st.text(max_size=20), st.integers(min_value=0, max_value=2**64 - 1),
                       st.text(max_size=8))
    return st.one_of(pushes, pushes, pushes, aimed.map(json.dumps), mutated(aimed), resume, st.text(max_size=100),
                     st.binary(max_size=20), json_values.map(json.dumps))


def check_answer(frame: str | bytes, got: list[dict[str, Any]]) -> None:
    errors = [f for f in got if f["op"] == "error" or (f["op"] == "reply" and not f["ok"])]
    for f in errors:
        assert f["error"]["code"] in ALLOWED, (frame, f)
    if isinstance(frame, bytes):
        assert [f for f in got if f["op"] in ("error", "reply")] == [
            {"op": "error", "error": {"code": "bad_frame", "message": "binary frames are not supported"}}]
        return
    expected = expect_parse(frame)
    answers = [f for f in got if f["op"] in ("reply", "pong", "error")]
    if isinstance(expected, Refused):
        assert len(answers) == 1 and answers[0]["op"] == ("error" if expected.ref is None else "reply"), (frame, got)
        assert answers[0]["error"]["code"] == expected.code, (frame, got)
        assert answers[0].get("ref") == expected.ref
        return
    assert isinstance(expected, Accepted)
    if expected.ref is not None:
        mine = [f for f in answers if f.get("ref") == expected.ref]
        assert len(mine) == 1 and len(answers) == 1, (frame, got)  # exactly one answer per readable ref


@settings(max_examples=EXAMPLES, derandomize=True, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.data_too_large])
@given(data=st.data())
def test_hostile_frames_on_a_real_socket(room: Room, server_errors: ErrorLog, data: st.DataObject) -> None:
    ws = connect(room)
    try:
        for n in range(1, FRAMES_PER_CONNECTION + 1):
            frame = data.draw(socket_frames(room), label=f"frame {n}")
            if isinstance(frame, bytes):
                ws.send_bytes(frame)
            else:
                ws.send_text(frame)
            got = fenced(ws, n)
            assert server_errors.take() == [], frame
            if isinstance(got, int):
                pytest.fail(f"the socket closed {got} after {frame!r}")
            check_answer(frame, got)
    finally:
        ws.__exit__(None, None, None)


@pytest.mark.parametrize(("frames", "code"), [
    (["not json"], Close.UNAUTHENTICATED),
    ([b"\x00"], Close.UNAUTHENTICATED),
    (['{"op":"auth","ref":"1","token":"not-a-jwt"}'], Close.UNAUTHENTICATED),
])
def test_anything_but_a_good_auth_first_closes_4001_on_a_real_socket(
        room: Room, server_errors: ErrorLog, frames: list[str | bytes], code: int) -> None:
    with room.client.websocket_connect("/ws") as ws:
        for frame in frames:
            ws.send_bytes(frame) if isinstance(frame, bytes) else ws.send_text(frame)
        assert read(ws) == code
    assert server_errors.take() == []


@pytest.mark.parametrize(("frames", "code"), [
    (["garbage"] * 11, Close.POLICY),
    ([b"\x01"] * 5 + ['{"op":"dance","ref":"x"}'] * 6, Close.POLICY),  # unknown ops count as malformed too
    ([json.dumps({"op": "ping", "ref": "big", "pad": "x" * 70_000})], Close.TOO_BIG),
])
def test_abuse_closes_with_the_documented_code_on_a_real_socket(
        room: Room, server_errors: ErrorLog, frames: list[str | bytes], code: int) -> None:
    ws = connect(room)
    try:
        for frame in frames:
            ws.send_bytes(frame) if isinstance(frame, bytes) else ws.send_text(frame)
        answers: list[dict[str, Any]] = []
        while not isinstance(got := read(ws), int):
            answers.append(got)
        assert got == code
        assert code == Close.TOO_BIG \
            or (all(a["op"] in ("error", "reply") for a in answers) and len(answers) == len(frames) - 1)
    finally:
        ws.__exit__(None, None, None)
    assert server_errors.take() == []
