"""Live contexts over REST: CRUD, messages stored as ordered rows, scoping, and the process context."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from sqlalchemy import select

from handlers.context import Context
from handlers.live.contexts import append_message, context_for_member, list_messages
from persistence.enums import LiveRole, ParticipantStatus
from persistence.errors import NotFound
from persistence.models import LiveContext, LiveMessage, User
from tests.api.factories_insights import count, make_event, make_process, uid
from tests.conftest import Backend, MakeUser


async def _rows(backend: Backend, context_id: str) -> list[tuple[int, str, str]]:
    async with backend.state.sessionmaker() as db:
        rows = (await db.scalars(select(LiveMessage).where(LiveMessage.context_id == uuid.UUID(context_id))
                                 .order_by(LiveMessage.seq))).all()
        return [(r.seq, r.role.value, r.content) for r in rows]


async def test_create_get_list_with_messages_as_rows(client: httpx.AsyncClient, make_user: MakeUser,
                                                     backend: Backend) -> None:
    a = await make_user("alice")
    process = await make_process(backend, a.id, "Runbook")
    event = await make_event(backend, a.id, "Deploy", process_id=process)
    messages: list[dict[str, Any]] = [{"role": "system", "content": "You are AIDE."},
                                      {"role": "user", "content": "hello", "timestamp": "2025-01-02T03:04:05Z"},
                                      {"role": "assistant", "content": "hi there", "metadata": {"some_key": 1}}]
    r = await client.post("/live/contexts", headers=a.headers, json={
        "processId": str(process), "event_id": str(event), "messages": messages, "metadata": {"inner_key": "x"}})
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["userId"] == a.id and body["processId"] == str(process) and body["eventId"] == str(event)
    assert body["templateId"] is None and body["metadata"] == {"inner_key": "x"}
    assert [(m["role"], m["content"]) for m in body["messages"]] == [(m["role"], m["content"]) for m in messages]
    assert body["messages"][1]["timestamp"] == "2025-01-02T03:04:05Z"
    assert body["messages"][2]["metadata"] == {"some_key": 1}
    assert {"createdAt", "updatedAt"} <= body.keys()
    assert await _rows(backend, body["id"]) == [(1, "system", "You are AIDE."), (2, "user", "hello"),
                                                (3, "assistant", "hi there")]

    got = await client.get(f"/live/contexts/{body['id']}", headers=a.headers)
    assert got.status_code == 200 and got.json()["messages"] == body["messages"]

    for params in ({"processId": str(process)}, {"process_id": str(process)}, {"eventId": str(event)},
                   {"event_id": str(event)}, {}):
        lst = await client.get("/live/contexts", headers=a.headers, params=params)
        assert lst.status_code == 200 and [c["id"] for c in lst.json()] == [body["id"]], params
    other_process = await make_process(backend, a.id, "Other")
    lst = await client.get("/live/contexts", headers=a.headers, params={"processId": str(other_process)})
    assert lst.json() == []


async def test_list_newest_first_limit_and_message_cap(client: httpx.AsyncClient, make_user: MakeUser) -> None:
    a = await make_user()
    ids = []
    for i in range(3):
        r = await client.post("/live/contexts", headers=a.headers, json={"metadata": {"i": i}})
        ids.append(r.json()["id"])
    r = await client.get("/live/contexts", headers=a.headers, params={"limit": 2})
    assert [c["id"] for c in r.json()] == [ids[2], ids[1]]
    many = [{"role": "user", "content": f"m{i}"} for i in range(205)]
    r = await client.post("/live/contexts", headers=a.headers, json={"messages": many})
    cid = r.json()["id"]
    assert len(r.json()["messages"]) == 205
    listed = (await client.get("/live/contexts", headers=a.headers, params={"limit": 1})).json()[0]
    assert listed["id"] == cid and len(listed["messages"]) == 200
    assert listed["messages"][0]["content"] == "m5" and listed["messages"][-1]["content"] == "m204"
    assert len((await client.get(f"/live/contexts/{cid}", headers=a.headers)).json()["messages"]) == 205


async def test_put_replaces_messages_and_clears_links(client: httpx.AsyncClient, make_user: MakeUser,
                                                      backend: Backend) -> None:
    a = await make_user()
    process = await make_process(backend, a.id)
    template = await make_process(backend, a.id, "Tpl", is_template=True)
    r = await client.post("/live/contexts", headers=a.headers, json={
        "processId": str(process), "templateId": str(template), "metadata": {"a": 1},
        "messages": [{"role": "user", "content": "one"}, {"role": "assistant", "content": "two"}]})
    cid = r.json()["id"]
    r = await client.put(f"/live/contexts/{cid}", headers=a.headers, json={
        "processId": "", "messages": [{"role": "user", "content": "fresh"}]})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["processId"] is None and body["templateId"] == str(template) and body["metadata"] == {"a": 1}
    assert [m["content"] for m in body["messages"]] == ["fresh"]
    assert await _rows(backend, cid) == [(1, "user", "fresh")]
    r = await client.put(f"/live/contexts/{cid}", headers=a.headers, json={"template_id": None, "metadata": {}})
    assert r.json()["templateId"] is None and r.json()["metadata"] == {}
    assert [m["content"] for m in r.json()["messages"]] == ["fresh"]


async def test_other_users_contexts_are_404_and_unchanged(client: httpx.AsyncClient, make_user: MakeUser,
                                                          backend: Backend) -> None:
    a, b = await make_user("a"), await make_user("b")
    r = await client.post("/live/contexts", headers=a.headers, json={"messages": [{"role": "user", "content": "x"}]})
    cid = r.json()["id"]
    assert (await client.get(f"/live/contexts/{cid}", headers=b.headers)).status_code == 404
    assert (await client.put(f"/live/contexts/{cid}", headers=b.headers, json={"messages": []})).status_code == 404
    assert (await client.delete(f"/live/contexts/{cid}", headers=b.headers)).status_code == 404
    assert (await client.get("/live/contexts", headers=b.headers)).json() == []
    assert await _rows(backend, cid) == [(1, "user", "x")]
    assert (await client.delete(f"/live/contexts/{cid}", headers=a.headers)).status_code == 204
    assert (await client.get(f"/live/contexts/{cid}", headers=a.headers)).status_code == 404
    assert await count(backend, LiveMessage, LiveMessage.context_id == uuid.UUID(cid)) == 0


async def test_links_must_be_visible(client: httpx.AsyncClient, make_user: MakeUser, backend: Backend) -> None:
    a, b = await make_user("a"), await make_user("b")
    foreign_process = await make_process(backend, b.id)
    foreign_event = await make_event(backend, b.id)
    foreign_template = await make_process(backend, b.id, "T", is_template=True)
    fake_library = await make_process(backend, b.id, "Fake", is_template=True, metadata={"source": "library"})
    library = await make_process(backend, None, "Lib", is_template=True, metadata={"source": "library"})
    for key, value in (("processId", foreign_process), ("eventId", foreign_event),
                       ("templateId", foreign_template), ("templateId", uuid.uuid4()),
                       ("templateId", fake_library)):
        r = await client.post("/live/contexts", headers=a.headers, json={key: str(value)})
        assert r.status_code == 404, (key, r.text)
    assert await count(backend, LiveContext) == 0
    r = await client.post("/live/contexts", headers=a.headers, json={"templateId": str(library)})
    assert r.status_code == 201
    cid = r.json()["id"]
    r = await client.put(f"/live/contexts/{cid}", headers=a.headers,
                         json={"eventId": str(foreign_event), "metadata": {"changed": True}})
    assert r.status_code == 404
    got = (await client.get(f"/live/contexts/{cid}", headers=a.headers)).json()
    assert got["eventId"] is None and got["metadata"] == {}
    # A participant of b's event may link to it.
    shared = await make_event(backend, b.id, participants=[(a.id, "participant", ParticipantStatus.CONFIRMED)])
    r = await client.put(f"/live/contexts/{cid}", headers=a.headers, json={"eventId": str(shared)})
    assert r.status_code == 200 and r.json()["eventId"] == str(shared)


async def test_malformed_input_is_422(client: httpx.AsyncClient, make_user: MakeUser, backend: Backend) -> None:
    a = await make_user()
    for body in ({"processId": "not-a-uuid"}, {"messages": [{"role": "robot", "content": "x"}]},
                 {"messages": [{"content": "no role"}]}, {"messages": "nope"}, {"metadata": [1, 2]}):
        r = await client.post("/live/contexts", headers=a.headers, json=body)
        assert r.status_code == 422, (body, r.text)
    assert await count(backend, LiveContext) == 0
    cid = (await client.post("/live/contexts", headers=a.headers,
                             json={"messages": [{"role": "user", "content": "keep"}]})).json()["id"]
    r = await client.put(f"/live/contexts/{cid}", headers=a.headers,
                         json={"messages": [{"role": "user", "content": "ok"}, {"role": "bad", "content": "x"}]})
    assert r.status_code == 422
    assert await _rows(backend, cid) == [(1, "user", "keep")]
    assert (await client.get("/live/contexts", headers=a.headers, params={"limit": 0})).status_code == 422
    assert (await client.get("/live/contexts/not-a-uuid", headers=a.headers)).status_code == 422


async def test_append_and_list_messages_and_member_access(client: httpx.AsyncClient, make_user: MakeUser,
                                                          backend: Backend) -> None:
    a, b, c = await make_user("a"), await make_user("b"), await make_user("c")
    event = await make_event(backend, a.id, participants=[(b.id, "participant", ParticipantStatus.CONFIRMED)])
    cid = uuid.UUID((await client.post("/live/contexts", headers=a.headers,
                                       json={"eventId": str(event)})).json()["id"])
    state = backend.state
    async with state.sessionmaker.begin() as db:
        users = {u.id: u for u in (await db.scalars(select(User))).all()}
        ctx_a = Context(db=db, user=users[uid(a.id)], now=state.clock())
        ctx_b = Context(db=db, user=users[uid(b.id)], now=state.clock())
        ctx_c = Context(db=db, user=users[uid(c.id)], now=state.clock())
        first = await append_message(ctx_a, cid, "user", "from a")
        second = await append_message(ctx_b, cid, LiveRole.ASSISTANT, "reply", {"k": 1})
        assert (first.seq, second.seq) == (1, 2) and first.author_id == uid(a.id) and second.author_id is None
        assert (await context_for_member(ctx_b, cid)).id == cid
        assert [m.content for m in await list_messages(ctx_b, cid, 1)] == ["reply"]
        assert [m.content for m in await list_messages(ctx_a, cid, 10)] == ["from a", "reply"]
        for call in (context_for_member(ctx_c, cid), list_messages(ctx_c, cid, 5),
                     append_message(ctx_c, cid, "user", "intruder")):
            try:
                await call
                raise AssertionError("expected NotFound")
            except NotFound:
                pass
    got = (await client.get(f"/live/contexts/{cid}", headers=a.headers)).json()
    assert [(m["seq"], m["content"]) for m in got["messages"]] == [(1, "from a"), (2, "reply")]
    # Only the owner manages the context over REST.
    assert (await client.get(f"/live/contexts/{cid}", headers=b.headers)).status_code == 404


async def test_process_context(client: httpx.AsyncClient, make_user: MakeUser, backend: Backend) -> None:
    a, b, c = await make_user("a"), await make_user("b"), await make_user("c")
    process = await make_process(backend, a.id, "Checklist", steps=[("First", ["1a", "1b"]), ("Second", [])])
    event = await make_event(backend, a.id, "Visible", process_id=process)
    await make_event(backend, b.id, "Hidden", process_id=process)
    await client.post("/live/contexts", headers=a.headers, json={"processId": str(process), "messages": [
        {"role": "system", "content": "sys"}, {"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]})
    r = await client.get(f"/live/process-context/{process}", headers=a.headers)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["process"]["id"] == str(process) and body["process"]["title"] == "Checklist"
    assert [s["content"] for s in body["process"]["steps"]] == ["First", "Second"]
    assert [s["content"] for s in body["process"]["steps"][0]["subSteps"]] == ["1a", "1b"]
    assert [e["id"] for e in body["relatedEvents"]] == [str(event)]
    assert [m["content"] for m in body["recentMessages"]] == ["q", "a"]
    assert "userPreferences" in body
    assert (await client.get(f"/live/process-context/{process}", headers=c.headers)).status_code == 404
    assert (await client.get(f"/live/process-context/{uuid.uuid4()}", headers=a.headers)).status_code == 404
