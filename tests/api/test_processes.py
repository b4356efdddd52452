"""Templates, live processes and /processes over REST: shapes, inline steps, visibility, ownership."""

from __future__ import annotations

import uuid

import httpx
from sqlalchemy import select, update

from persistence.enums import ParticipantStatus
from persistence.models import Event, Process, Step
from tests.api.checklist_support import detail, link_event, make_instance, make_template, process_row, step_rows
from tests.conftest import Backend, MakeUser

PROCESS_KEYS = {"id", "title", "description", "color", "category", "favorite", "processMetadata", "createdById",
                "directoryId", "lastUpdated", "isTemplate", "templateId", "template", "instanceIds", "createdAt",
                "updatedAt"}
STEP_KEYS = {"id", "content", "completed", "completedAt", "order", "dueDate", "processId", "createdAt", "updatedAt",
             "subSteps"}
SUBSTEP_KEYS = {"id", "content", "completed", "completedAt", "order", "stepId", "createdAt", "updatedAt"}


async def test_create_template_with_inline_steps(client: httpx.AsyncClient, make_user: MakeUser,
                                                 backend: Backend) -> None:
    a = await make_user("alice")
    t = await make_template(client, a, metadata={"icon": "rocket", "nested_key": {"keep_me": 1}}, favorite=True)
    assert set(t) == PROCESS_KEYS
    assert t["isTemplate"] is True and t["createdById"] == a.id and t["favorite"] is True
    assert t["processMetadata"] == {"icon": "rocket", "nested_key": {"keep_me": 1}}
    assert t["template"] is None and t["instanceIds"] == [] and t["lastUpdated"].endswith("Z")

    d = (await client.get(f"/templates/{t['id']}", headers=a.headers)).json()
    assert set(d) == PROCESS_KEYS | {"steps", "connectedEvents"}
    assert [s["content"] for s in d["steps"]] == ["Freeze", "Verify"]
    assert [s["order"] for s in d["steps"]] == [1, 2]
    first = d["steps"][0]
    assert set(first) == STEP_KEYS and set(first["subSteps"][0]) == SUBSTEP_KEYS
    assert [x["content"] for x in first["subSteps"]] == ["Cut branch", "Changelog"]
    assert [x["order"] for x in first["subSteps"]] == [1, 2]
    assert d["connectedEvents"] == []
    assert await step_rows(backend, t["id"]) == [
        ("Freeze", False, 1, [("Cut branch", False), ("Changelog", False)]),
        ("Verify", False, 2, [("Run tests", False)]),
    ]


async def test_create_template_accepts_camel_and_snake_and_rejects_garbage(
        client: httpx.AsyncClient, make_user: MakeUser, backend: Backend) -> None:
    a = await make_user()
    r = await client.post("/directories", json={"name": "Ops"}, headers=a.headers)
    directory_id = r.json()["id"]
    camel = await client.post("/templates", json={"title": "A", "directoryId": directory_id,
                                                  "processMetadata": {"x": 1}}, headers=a.headers)
    snake = await client.post("/templates", json={"title": "B", "directory_id": directory_id,
                                                  "process_metadata": {"y": 2}, "is_template": True},
                              headers=a.headers)
    assert camel.status_code == snake.status_code == 201
    assert camel.json()["directoryId"] == snake.json()["directoryId"] == directory_id
    assert camel.json()["processMetadata"] == {"x": 1} and snake.json()["processMetadata"] == {"y": 2}

    for bad in ({"title": ""}, {"description": "no title"}, {"title": "x", "steps": [{"content": ""}]},
                {"title": "x", "steps": [{"content": "a", "order": -1}]}, {"title": "x", "favorite": "maybe"}):
        r = await client.post("/templates", json=bad, headers=a.headers)
        assert r.status_code == 422, (bad, r.text)
        assert isinstance(r.json()["detail"], str)
    async with backend.state.sessionmaker() as db:
        assert len((await db.scalars(select(Process))).all()) == 2


async def test_template_directory_must_be_mine(client: httpx.AsyncClient, make_user: MakeUser,
                                               backend: Backend) -> None:
    a, b = await make_user("alice"), await make_user("bob")
    theirs = (await client.post("/directories", json={"name": "B's"}, headers=b.headers)).json()["id"]
    r = await client.post("/templates", json={"title": "x", "directoryId": theirs}, headers=a.headers)
    assert r.status_code == 404
    async with backend.state.sessionmaker() as db:
        assert (await db.scalars(select(Process))).all() == []


async def test_list_templates_is_mine_filtered_and_paginated(client: httpx.AsyncClient, make_user: MakeUser) -> None:
    a, b = await make_user("alice"), await make_user("bob")
    await make_template(client, a, "T1", category="Ops", favorite=True)
    await make_template(client, a, "T2", category="Ops")
    await make_template(client, a, "T3", category="Design", favorite=True)
    await make_template(client, b, "Bob's")
    await make_instance(client, a)
    r = await client.get("/templates", headers=a.headers)
    assert r.status_code == 200
    assert sorted(p["title"] for p in r.json()) == ["T1", "T2", "T3"]
    assert all(set(p) == PROCESS_KEYS for p in r.json())
    fav = (await client.get("/templates", params={"favorite": "true", "limit": 3}, headers=a.headers)).json()
    assert sorted(p["title"] for p in fav) == ["T1", "T3"]
    ops = (await client.get("/templates", params={"category": "Ops"}, headers=a.headers)).json()
    assert sorted(p["title"] for p in ops) == ["T1", "T2"]
    page = (await client.get("/templates", params={"skip": 1, "limit": 1}, headers=a.headers)).json()
    assert len(page) == 1
    assert (await client.get("/templates", params={"limit": 0}, headers=a.headers)).status_code == 422


async def test_live_process_keeps_inline_steps_and_metadata(client: httpx.AsyncClient, make_user: MakeUser,
                                                            backend: Backend) -> None:
    a = await make_user()
    ticket = {"source_ticket": {"ticket_id": "T-1", "priority": "high"}}
    p = await make_instance(client, a, metadata=ticket, is_template=False)
    assert p["isTemplate"] is False and p["processMetadata"] == ticket
    assert await step_rows(backend, p["id"]) == [
        ("One", False, 1, [("1.1", False), ("1.2", False)]), ("Two", False, 2, []),
    ]
    r = await client.get(f"/live-processes/{p['id']}", headers=a.headers)
    assert r.status_code == 200 and len(r.json()["steps"]) == 2
    assert [x["title"] for x in (await client.get("/live-processes", headers=a.headers)).json()] == ["Live run"]
    assert (await client.get("/templates", headers=a.headers)).json() == []


async def test_inline_zero_based_orders_do_not_collide(client: httpx.AsyncClient, make_user: MakeUser,
                                                      backend: Backend) -> None:
    a = await make_user()
    p = await make_instance(client, a, steps=[{"content": c, "order": i, "subSteps": [
        {"content": f"{c}.{j}", "order": j} for j in range(3)]} for i, c in enumerate("ABC")])
    rows = await step_rows(backend, p["id"])
    assert [(r[0], r[2]) for r in rows] == [("A", 1), ("B", 2), ("C", 3)]
    assert [s for s, _ in rows[0][3]] == ["A.0", "A.1", "A.2"]


async def test_live_process_from_template_and_instance_ids(client: httpx.AsyncClient, make_user: MakeUser,
                                                           backend: Backend) -> None:
    a, b = await make_user("alice"), await make_user("bob")
    t = await make_template(client, a)
    r = await client.post("/live-processes", json={"title": "Run 1", "template_id": t["id"]}, headers=a.headers)
    assert r.status_code == 201, r.text
    inst = r.json()
    assert inst["templateId"] == t["id"] and inst["template"] == {"id": t["id"], "title": "Release"}
    assert [s[0] for s in await step_rows(backend, inst["id"])] == ["Freeze", "Verify"]
    other = await make_instance(client, a)
    listed = (await client.get("/live-processes", params={"templateId": t["id"]}, headers=a.headers)).json()
    assert [x["id"] for x in listed] == [inst["id"]]
    assert other["id"] not in [x["id"] for x in listed]
    assert (await client.get(f"/templates/{t['id']}", headers=a.headers)).json()["instanceIds"] == [inst["id"]]
    # Someone else's template cannot be cloned.
    r = await client.post("/live-processes", json={"title": "x", "templateId": t["id"]}, headers=b.headers)
    assert r.status_code == 404


async def test_update_template_partial(client: httpx.AsyncClient, make_user: MakeUser, backend: Backend) -> None:
    a, b = await make_user("alice"), await make_user("bob")
    t = await make_template(client, a)
    mine = (await client.post("/directories", json={"name": "Mine"}, headers=a.headers)).json()["id"]
    theirs = (await client.post("/directories", json={"name": "Theirs"}, headers=b.headers)).json()["id"]
    r = await client.put(f"/templates/{t['id']}", json={"directory_id": mine, "metadata": {"k": "v"},
                                                        "favorite": True}, headers=a.headers)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["directoryId"] == mine and body["processMetadata"] == {"k": "v"} and body["favorite"] is True
    assert body["title"] == "Release" and body["description"] == "Ship it" and len(body["steps"]) == 2
    r = await client.put(f"/templates/{t['id']}", json={"directoryId": None}, headers=a.headers)
    assert r.json()["directoryId"] is None
    for bad, status in (({"directoryId": theirs}, 404), ({"title": None}, 422), ({"title": ""}, 422),
                        ({"favorite": None}, 422)):
        r = await client.put(f"/templates/{t['id']}", json=bad, headers=a.headers)
        assert r.status_code == status, (bad, r.text)
    row = await process_row(backend, t["id"])
    assert row is not None and row.title == "Release" and row.directory_id is None and row.favorite


async def test_other_users_template_is_404_and_untouched(client: httpx.AsyncClient, make_user: MakeUser,
                                                         backend: Backend) -> None:
    a, b = await make_user("alice"), await make_user("bob")
    t = await make_template(client, a)
    for path in (f"/templates/{t['id']}", f"/processes/{t['id']}", f"/processes/{t['id']}/steps"):
        assert (await client.get(path, headers=b.headers)).status_code == 404, path
    assert (await client.put(f"/templates/{t['id']}", json={"title": "hacked"}, headers=b.headers)).status_code == 404
    assert (await client.put(f"/processes/{t['id']}", json={"title": "hacked"}, headers=b.headers)).status_code == 404
    assert (await client.delete(f"/templates/{t['id']}", headers=b.headers)).status_code == 404
    assert (await client.delete(f"/processes/{t['id']}", headers=b.headers)).status_code == 404
    row = await process_row(backend, t["id"])
    assert row is not None and row.title == "Release"
    assert (await client.get("/processes", headers=b.headers)).json() == []


async def test_kind_mismatch_is_404(client: httpx.AsyncClient, make_user: MakeUser) -> None:
    a = await make_user()
    t = await make_template(client, a)
    p = await make_instance(client, a)
    assert (await client.get(f"/templates/{p['id']}", headers=a.headers)).status_code == 404
    assert (await client.get(f"/live-processes/{t['id']}", headers=a.headers)).status_code == 404
    assert (await client.delete(f"/live-processes/{t['id']}", headers=a.headers)).status_code == 404
    assert (await client.get(f"/templates/{uuid.uuid4()}", headers=a.headers)).status_code == 404
    assert (await client.get("/templates/not-a-uuid", headers=a.headers)).status_code == 422


async def test_library_template_readable_by_all_not_editable(client: httpx.AsyncClient, make_user: MakeUser,
                                                             backend: Backend) -> None:
    admin, a = await make_user("admin"), await make_user("alice")
    lib = await make_template(client, admin, "Library one", metadata={"source": "library"})
    # The marker alone, which any user can write, does not publish a template ...
    assert (await client.get(f"/templates/{lib['id']}", headers=a.headers)).status_code == 404
    # ... a library template is seeded without an owner.
    async with backend.state.sessionmaker.begin() as db:
        await db.execute(update(Process).where(Process.id == uuid.UUID(lib["id"])).values(created_by_id=None))
    r = await client.get(f"/templates/{lib['id']}", headers=a.headers)
    assert r.status_code == 200 and len(r.json()["steps"]) == 2
    assert (await client.put(f"/templates/{lib['id']}", json={"title": "x"}, headers=a.headers)).status_code == 403
    assert (await client.delete(f"/templates/{lib['id']}", headers=a.headers)).status_code == 403
    step_id = r.json()["steps"][0]["id"]
    assert (await client.put(f"/processes/steps/{step_id}", json={"completed": True},
                             headers=a.headers)).status_code == 404
    assert (await client.post(f"/processes/{lib['id']}/steps", json={"content": "x"},
                              headers=a.headers)).status_code == 404
    # ...but it can be instantiated, and the template lists only the caller's own instances.
    mine = (await client.post("/live-processes", json={"title": "Mine", "templateId": lib["id"]},
                              headers=a.headers)).json()
    assert (await client.get(f"/templates/{lib['id']}", headers=a.headers)).json()["instanceIds"] == [mine["id"]]
    assert (await client.get(f"/templates/{lib['id']}", headers=admin.headers)).json()["instanceIds"] == []
    assert (await client.put(f"/templates/{lib['id']}", json={"title": "x"}, headers=admin.headers)).status_code == 403
    assert [s[1] for s in await step_rows(backend, lib["id"])] == [False, False]


async def test_processes_visible_to_event_members(client: httpx.AsyncClient, make_user: MakeUser,
                                                  backend: Backend) -> None:
    owner, member, declined, stranger = [await make_user(n) for n in ("owner", "member", "declined", "stranger")]
    p = await make_instance(client, owner)
    event_id = await link_event(backend, p["id"], owner, [(member, ParticipantStatus.INVITED),
                                                           (declined, ParticipantStatus.DECLINED)])
    d = await detail(client, member, p["id"])
    assert d["connectedEvents"] == [{
        "id": event_id, "name": "Standup", "startTime": "2030-01-07T09:00:00Z", "date": "2030-01-07",
        "imageUrl": None, "participants": 2, "progress": 0.0,
    }]
    listed = (await client.get("/processes", headers=member.headers)).json()
    assert [x["id"] for x in listed] == [p["id"]]
    for who in (declined, stranger):
        assert (await client.get(f"/processes/{p['id']}", headers=who.headers)).status_code == 404
        assert (await client.get("/processes", headers=who.headers)).json() == []
    # Members work through the steps but may not edit or delete the process itself.
    assert (await client.put(f"/processes/{p['id']}", json={"title": "x"}, headers=member.headers)).status_code == 403
    assert (await client.delete(f"/processes/{p['id']}", headers=member.headers)).status_code == 403
    # /live-processes lists only the caller's own.
    assert (await client.get("/live-processes", headers=member.headers)).json() == []


async def test_template_connected_events_come_from_its_instances(client: httpx.AsyncClient, make_user: MakeUser,
                                                                 backend: Backend) -> None:
    a = await make_user()
    t = await make_template(client, a)
    inst = (await client.post("/processes", json={"title": "Run", "templateId": t["id"]}, headers=a.headers)).json()
    assert inst["isTemplate"] is False
    event_id = await link_event(backend, inst["id"], a, title="Release day")
    first = (await detail(client, a, inst["id"]))["steps"][0]["id"]
    await client.put(f"/processes/steps/{first}", json={"completed": True}, headers=a.headers)
    d = (await client.get(f"/templates/{t['id']}", headers=a.headers)).json()
    assert [(e["id"], e["name"], e["progress"]) for e in d["connectedEvents"]] == [(event_id, "Release day", 50.0)]


async def test_list_processes_filters(client: httpx.AsyncClient, make_user: MakeUser) -> None:
    a = await make_user()
    t = await make_template(client, a)
    p = await make_instance(client, a)
    ids = {x["id"] for x in (await client.get("/processes", headers=a.headers)).json()}
    assert ids == {t["id"], p["id"]}
    only_templates = (await client.get("/processes", params={"is_template": "true"}, headers=a.headers)).json()
    assert [x["id"] for x in only_templates] == [t["id"]]
    only_live = (await client.get("/processes", params={"isTemplate": "false"}, headers=a.headers)).json()
    assert [x["id"] for x in only_live] == [p["id"]]


async def test_delete_process_removes_steps_and_unlinks_events(client: httpx.AsyncClient, make_user: MakeUser,
                                                               backend: Backend) -> None:
    a = await make_user()
    t = await make_template(client, a)
    inst = (await client.post("/live-processes", json={"title": "Run", "templateId": t["id"]},
                              headers=a.headers)).json()
    event_id = await link_event(backend, inst["id"], a)
    assert (await client.delete(f"/live-processes/{inst['id']}", headers=a.headers)).status_code == 204
    assert await process_row(backend, inst["id"]) is None
    async with backend.state.sessionmaker() as db:
        event = await db.get(Event, uuid.UUID(event_id))
        assert event is not None and event.process_id is None
        left = (await db.scalars(select(Step.process_id))).all()
        assert set(left) == {uuid.UUID(t["id"])}
    assert (await client.delete(f"/templates/{t['id']}", headers=a.headers)).status_code == 204
    assert (await client.get(f"/templates/{t['id']}", headers=a.headers)).status_code == 404


async def test_update_and_delete_via_processes_route(client: httpx.AsyncClient, make_user: MakeUser) -> None:
    a = await make_user()
    p = (await client.post("/processes", json={"title": "P", "steps": [{"content": "s"}]}, headers=a.headers)).json()
    r = await client.put(f"/processes/{p['id']}", json={"title": "P2", "category": "Ops", "processMetadata": {"a": 1}},
                         headers=a.headers)
    assert r.status_code == 200
    assert (r.json()["title"], r.json()["category"], r.json()["processMetadata"]) == ("P2", "Ops", {"a": 1})
    assert len(r.json()["steps"]) == 1
    r = await client.put(f"/live-processes/{p['id']}", json={"description": "d"}, headers=a.headers)
    assert r.status_code == 200 and r.json()["title"] == "P2" and r.json()["description"] == "d"
    assert (await client.delete(f"/processes/{p['id']}", headers=a.headers)).status_code == 204
    assert (await client.get(f"/processes/{p['id']}", headers=a.headers)).status_code == 404


async def test_fix_completion(client: httpx.AsyncClient, make_user: MakeUser, backend: Backend) -> None:
    a, b = await make_user("alice"), await make_user("bob")
    p = await make_instance(client, a)
    step_id = (await detail(client, a, p["id"]))["steps"][0]["id"]
    # Simulate data written before the cascade rule: a completed step with unfinished substeps.
    async with backend.state.sessionmaker.begin() as db:
        step = await db.get(Step, uuid.UUID(step_id))
        assert step is not None
        step.completed = True
    assert (await client.post(f"/processes/{p['id']}/fix-completion", headers=b.headers)).status_code == 404
    r = await client.post(f"/processes/{p['id']}/fix-completion", headers=a.headers)
    assert r.status_code == 200, r.text
    assert r.json()["success"] is True and r.json()["updatedSubsteps"] == 2 and r.json()["processId"] == p["id"]
    assert (await step_rows(backend, p["id"]))[0][3] == [("1.1", True), ("1.2", True)]
    r = await client.post(f"/live-processes/{p['id']}/fix-completion", headers=a.headers)
    assert r.json()["updatedSubsteps"] == 0
