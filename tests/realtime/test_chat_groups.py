"""`chat.send` pushes sent back to back on one socket, on PostgreSQL: they are stored in groups
(server/ws_chat_lines.py), yet each is answered as if pushed alone — in the order sent, before the answers to the
frames after them, `ok` only once stored — and the room receives them in that order at consecutive offsets. A line
that breaks the group's statement fails alone. In-process (Starlette's TestClient), to read the instance's counts."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import orjson
import pytest
from starlette.testclient import TestClient, WebSocketTestSession

from channels import messages as m
from persistence import migrate
from persistence.database import create_engine
from server.app import create_app
from server.settings import normalize_database_url
from server.state import AppState
from tests.conftest import fresh_pg_database, make_settings

PASSWORD = "correct horse battery"


@pytest.fixture(scope="module")
async def chat_database() -> AsyncIterator[str]:
    async with fresh_pg_database("chatgroups") as url:
        engine = create_engine(normalize_database_url(url))
        try:
            await migrate.upgrade(engine)
        finally:
            await engine.dispose()
        yield url


@dataclass
class Room:
    client: TestClient
    owner: str
    member: str
    topic: str

    @property
    def state(self) -> AppState:
        state: AppState = self.client.app.state.conversme  # type: ignore[attr-defined]
        return state


def _person(client: TestClient, name: str) -> tuple[str, str]:
    handle = f"{name}_{uuid.uuid4().hex[:8]}"
    r = client.post("/users", json={"email": f"{handle}@example.com", "password": PASSWORD, "name": name,
                                    "handle": handle})
    assert r.status_code == 201, r.text
    token = client.post("/auth/token", data={"username": f"{handle}@example.com", "password": PASSWORD})
    return r.json()["id"], token.json()["accessToken"]


@pytest.fixture(scope="module")
def room(chat_database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Room]:
    settings = make_settings(chat_database, tmp_path_factory.mktemp("chatgroups"), ws_push_burst=1000,
                             ws_push_rate=1000.0)
    with TestClient(create_app(settings)) as client:
        _, owner = _person(client, "owner")
        member_id, member = _person(client, "member")
        auth = {"Authorization": f"Bearer {owner}"}
        r = client.post("/events", headers=auth, json={"title": "Chat", "startTime": "2026-03-02T09:00:00Z",
                                                       "endTime": "2026-03-02T10:00:00Z"})
        assert r.status_code == 201, r.text
        event_id = r.json()["id"]
        r = client.post(f"/events/{event_id}/participants", headers=auth,
                        json={"userId": member_id, "status": "confirmed"})
        assert r.status_code in (200, 201), r.text
        assert client.app.state.conversme.chat_lines is not None  # type: ignore[attr-defined]
        yield Room(client, owner, member, f"event:{event_id}")


def _joined(room: Room, token: str) -> WebSocketTestSession:
    ws = room.client.websocket_connect("/ws", subprotocols=[m.SUBPROTOCOL],
                                       headers={"Authorization": f"Bearer {token}"})
    ws.__enter__()
    ws.send_text(json.dumps({"op": "join", "ref": "j", "topic": room.topic}))
    while (frame := orjson.loads(ws.receive_text())).get("ref") != "j":
        pass
    assert frame["ok"], frame
    return ws


def _until_pong(ws: WebSocketTestSession, ref: str) -> list[dict[str, Any]]:
    out = []
    while (frame := orjson.loads(ws.receive_text())) != {"op": "pong", "ref": ref}:
        out.append(frame)
    return out


def _chat(ref: str, topic: str, text: str) -> str:
    return json.dumps({"op": "push", "ref": ref, "topic": topic, "event": "chat.send", "data": {"text": text}})


def test_lines_back_to_back_are_grouped_answered_in_order_and_delivered_in_order(room: Room) -> None:
    sender, reader = _joined(room, room.owner), _joined(room, room.member)
    try:
        groups0, lines0 = room.state.chat_lines.groups, room.state.chat_lines.lines  # type: ignore[union-attr]
        texts = [f"line {i}" for i in range(30)]
        for i, text in enumerate(texts):
            sender.send_text(_chat(str(i), room.topic, text))
        sender.send_text(json.dumps({"op": "ping", "ref": "fence"}))
        got = _until_pong(sender, "fence")
        # Every line answered ok, in the order sent, and all before the pong of the ping sent after them.
        replies = [f for f in got if f["op"] == "reply"]
        assert [(f["ref"], f["ok"]) for f in replies] == [(str(i), True) for i in range(30)]
        assert [f["data"]["text"] for f in replies] == texts
        # Announced before answered: the sender's own copies came first, each before its reply.
        msgs = [f for f in got if f["op"] == "msg"]
        assert [f["data"]["text"] for f in msgs] == texts
        assert all(got.index(msg) < got.index(reply) for msg, reply in zip(msgs, replies, strict=True))
        reader.send_text(json.dumps({"op": "ping", "ref": "r"}))
        seen = [f for f in _until_pong(reader, "r") if f["op"] == "msg"]
        while len(seen) < 30:
            frame = orjson.loads(reader.receive_text())
            if frame["op"] == "msg":
                seen.append(frame)
        assert [f["data"]["text"] for f in seen] == texts
        assert [f["offset"] for f in seen] == list(range(seen[0]["offset"], seen[0]["offset"] + 30))
        assert [f["data"]["id"] for f in seen] == [f["data"]["id"] for f in replies]
        lines = room.state.chat_lines.lines - lines0  # type: ignore[union-attr]
        groups = room.state.chat_lines.groups - groups0  # type: ignore[union-attr]
        assert lines == 30 and groups < lines  # at least one group held more than one line
        history = room.client.get(f"/events/{room.topic.split(':')[1]}/chat?limit=50",
                                  headers={"Authorization": f"Bearer {room.member}"}).json()
        assert [h["text"] for h in history][-30:] == texts
    finally:
        sender.__exit__(None, None, None)
        reader.__exit__(None, None, None)


def test_a_line_that_breaks_the_groups_statement_fails_alone(room: Room) -> None:
    sender = _joined(room, room.owner)
    try:
        # PostgreSQL stores no NUL in text: the group's statement fails, and its lines are stored one by one.
        texts = ["before", "bad \x00 line", "after"]
        for i, text in enumerate(texts):
            sender.send_text(_chat(f"n{i}", room.topic, text))
        sender.send_text(json.dumps({"op": "ping", "ref": "fence"}))
        got = _until_pong(sender, "fence")
        replies = {f["ref"]: f for f in got if f["op"] == "reply"}
        assert list(replies) == ["n0", "n1", "n2"]
        assert replies["n0"]["ok"] and replies["n2"]["ok"] and not replies["n1"]["ok"]
        msgs = [f for f in got if f["op"] == "msg"]
        assert [f["data"]["text"] for f in msgs] == ["before", "after"]
        assert msgs[1]["offset"] == msgs[0]["offset"] + 1
    finally:
        sender.__exit__(None, None, None)


def test_a_command_after_lines_acts_after_them(room: Room) -> None:
    sender = _joined(room, room.owner)
    try:
        for i in range(5):
            sender.send_text(_chat(f"c{i}", room.topic, f"last words {i}"))
        sender.send_text(json.dumps({"op": "leave", "ref": "bye", "topic": room.topic}))
        sender.send_text(json.dumps({"op": "ping", "ref": "fence"}))
        got = _until_pong(sender, "fence")
        answers = [f["ref"] for f in got if f["op"] == "reply"]
        assert answers == [f"c{i}" for i in range(5)] + ["bye"]
        # Left after its lines were stored and announced: it received every one of them.
        assert [f["data"]["text"] for f in got if f["op"] == "msg"] == [f"last words {i}" for i in range(5)]
    finally:
        sender.__exit__(None, None, None)
