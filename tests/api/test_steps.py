"""Steps and substeps over REST and /live/operation: placement, completion cascade, access, batch, messages."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import select, true

from channels import topics
from persistence.enums import ParticipantStatus
from persistence.models import Step, SubStep
from tests.api.checklist_support import detail, hub_frames, link_event, make_instance, make_template, step_rows
from tests.conftest import Account, Backend, MakeUser
from tests.statements import recorded


async def _first_step(client: httpx.AsyncClient, who: Account, process_id: str) -> dict[str, Any]:
    step: dict[str, Any] = (await detail(client, who, process_id))["steps"][0]
    return step


async def _substep_row(backend: Backend, substep_id: str) -> SubStep:
    async with backend.state.sessionmaker() as db:
        row = await db.get(SubStep, uuid.UUID(substep_id))
        assert row is not None
        return row


# --- steps ------------------------------------------------------------------------------------------


async def test_create_step_appends_when_order_is_zero(client: httpx.AsyncClient, make_user: MakeUser,
                                                      backend: Backend) -> None:
    a = await make_user()
    p = await make_instance(client, a)
    r = await client.post(f"/processes/{p['id']}/steps", headers=a.headers, json={
        "content": "Three", "completed": False, "order": 0, "due_date": "2030-02-01", "process_id": p["id"],
        "sub_steps": [{"content": "3.1", "completed": False, "order": 0}, {"content": "3.2", "order": 0}],
    })
    assert r.status_code == 201, r.text
    step = r.json()
    assert step["order"] == 3 and step["dueDate"] == "2030-02-01" and step["processId"] == p["id"]
    assert [(s["content"], s["order"], s["stepId"]) for s in step["subSteps"]] == [
        ("3.1", 1, step["id"]), ("3.2", 2, step["id"])]
    # Absent order appends too; an explicit order > 0 is kept; camelCase keys work.
    r = await client.post(f"/processes/{p['id']}/steps", headers=a.headers,
                          json={"content": "Four", "dueDate": "2030-03-01", "subSteps": [{"content": "4.1"}]})
    assert r.json()["order"] == 4 and r.json()["dueDate"] == "2030-03-01" and len(r.json()["subSteps"]) == 1
    r = await client.post(f"/processes/{p['id']}/steps", headers=a.headers, json={"content": "Ten", "order": 10})
    assert r.json()["order"] == 10
    listed = (await client.get(f"/processes/{p['id']}/steps", headers=a.headers)).json()
    assert [s["content"] for s in listed] == ["One", "Two", "Three", "Four", "Ten"]
    assert [s["order"] for s in listed] == [1, 2, 3, 4, 10]


async def test_create_step_rejects_malformed_input(client: httpx.AsyncClient, make_user: MakeUser,
                                                   backend: Backend) -> None:
    a = await make_user()
    p = await make_instance(client, a)
    before = await step_rows(backend, p["id"])
    for bad in ({}, {"content": ""}, {"content": "x", "order": -1}, {"content": "x", "completed": "perhaps"},
                {"content": "x", "sub_steps": [{"content": ""}]}, {"content": "x", "due_date": "x" * 41},
                {"content": "x", "completed_at": "yesterday-ish"}):
        r = await client.post(f"/processes/{p['id']}/steps", json=bad, headers=a.headers)
        assert r.status_code == 422, (bad, r.text)
    assert await step_rows(backend, p["id"]) == before
    assert (await client.post(f"/processes/{uuid.uuid4()}/steps", json={"content": "x"},
                              headers=a.headers)).status_code == 404


async def test_concurrent_appends_get_distinct_orders(client: httpx.AsyncClient, make_user: MakeUser,
                                                      backend: Backend) -> None:
    if backend.name != "postgres":
        pytest.skip("row locks are a PostgreSQL matter; SQLite serialises writers anyway")
    a = await make_user()
    p = await make_instance(client, a, steps=[])
    responses = await asyncio.gather(*(
        client.post(f"/processes/{p['id']}/steps", json={"content": f"s{i}", "order": 0}, headers=a.headers)
        for i in range(8)))
    assert all(r.status_code == 201 for r in responses), [r.text for r in responses]
    assert sorted(r.json()["order"] for r in responses) == list(range(1, 9))


async def test_update_step_fields_persist(client: httpx.AsyncClient, make_user: MakeUser, backend: Backend) -> None:
    a = await make_user()
    p = await make_instance(client, a)
    step = await _first_step(client, a, p["id"])
    r = await client.put(f"/processes/steps/{step['id']}", headers=a.headers,
                         json={"content": "Renamed", "order": 7, "due_date": "2030-05-05"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["content"], body["order"], body["dueDate"]) == ("Renamed", 7, "2030-05-05")
    assert body["updatedAt"] is not None and len(body["subSteps"]) == 2
    r = await client.put(f"/processes/steps/{step['id']}", headers=a.headers, json={"dueDate": None})
    assert r.json()["dueDate"] is None and r.json()["content"] == "Renamed"
    async with backend.state.sessionmaker() as db:
        row = await db.get(Step, uuid.UUID(step["id"]))
        assert row is not None and (row.content, row.order, row.due_date) == ("Renamed", 7, None)


async def test_completing_a_step_cascades_and_uncompleting_does_not(
        client: httpx.AsyncClient, make_user: MakeUser, backend: Backend) -> None:
    a = await make_user()
    p = await make_instance(client, a)
    step = await _first_step(client, a, p["id"])
    r = await client.put(f"/processes/steps/{step['id']}", json={"completed": True}, headers=a.headers)
    assert r.status_code == 200
    body = r.json()
    assert body["completed"] is True and body["completedAt"].endswith("Z")
    assert all(s["completed"] and s["completedAt"] == body["completedAt"] for s in body["subSteps"])
    # Re-sending completed keeps the original timestamp.
    again = (await client.put(f"/processes/steps/{step['id']}", json={"completed": True}, headers=a.headers)).json()
    assert again["completedAt"] == body["completedAt"]
    r = await client.put(f"/processes/steps/{step['id']}", json={"completed": False}, headers=a.headers)
    body = r.json()
    assert body["completed"] is False and body["completedAt"] is None
    assert all(s["completed"] for s in body["subSteps"])
    assert (await step_rows(backend, p["id"]))[0][3] == [("1.1", True), ("1.2", True)]


async def test_client_completed_at_is_stored_tz_aware(client: httpx.AsyncClient, make_user: MakeUser,
                                                      backend: Backend) -> None:
    a = await make_user()
    p = await make_instance(client, a)
    step = await _first_step(client, a, p["id"])
    r = await client.put(f"/processes/steps/{step['id']}", headers=a.headers,
                         json={"completed": True, "completed_at": "2030-01-02T03:04:05.000Z"})
    assert r.json()["completedAt"] == "2030-01-02T03:04:05Z"
    assert [s["completedAt"] for s in r.json()["subSteps"]] == ["2030-01-02T03:04:05Z"] * 2
    async with backend.state.sessionmaker() as db:
        row = await db.get(Step, uuid.UUID(step["id"]))
        assert row is not None and row.completed_at is not None and row.completed_at.utcoffset() is not None
        assert row.completed_at == datetime.fromisoformat("2030-01-02T03:04:05+00:00")
    # A naive timestamp is taken as UTC; an offset is converted.
    sub = step["subSteps"][0]
    r = await client.put(f"/processes/substeps/{sub['id']}", headers=a.headers,
                         json={"completed": True, "completedAt": "2030-01-02T05:04:05+02:00"})
    assert r.json()["completedAt"] == "2030-01-02T03:04:05Z"


async def test_update_step_rejects_malformed_and_foreign(client: httpx.AsyncClient, make_user: MakeUser,
                                                         backend: Backend) -> None:
    a, b = await make_user("alice"), await make_user("bob")
    p = await make_instance(client, a)
    step = await _first_step(client, a, p["id"])
    before = await step_rows(backend, p["id"])
    for bad in ({"content": None}, {"completed": None}, {"order": -3}, {"order": "first"}, {"completed": "yes!"},
                {"order": 2**40},
                {"content": ""}, {"completed_at": "not a date", "completed": True}):
        r = await client.put(f"/processes/steps/{step['id']}", json=bad, headers=a.headers)
        assert r.status_code == 422, (bad, r.text)
    r = await client.put(f"/processes/steps/{step['id']}", json={"completed": True, "content": "x"}, headers=b.headers)
    assert r.status_code == 404
    assert (await client.delete(f"/processes/steps/{step['id']}", headers=b.headers)).status_code == 404
    assert (await client.get(f"/processes/steps/{step['id']}/substeps", headers=b.headers)).status_code == 404
    assert (await client.post(f"/processes/steps/{step['id']}/substeps", json={"content": "x"},
                              headers=b.headers)).status_code == 404
    assert (await client.get(f"/processes/{p['id']}/steps", headers=b.headers)).status_code == 404
    assert (await client.post(f"/processes/{p['id']}/steps", json={"content": "x"},
                              headers=b.headers)).status_code == 404
    assert await step_rows(backend, p["id"]) == before
    assert (await client.put(f"/processes/steps/{uuid.uuid4()}", json={"completed": True},
                             headers=a.headers)).status_code == 404


async def test_delete_step_removes_its_substeps(client: httpx.AsyncClient, make_user: MakeUser,
                                                backend: Backend) -> None:
    a = await make_user()
    p = await make_instance(client, a)
    step = await _first_step(client, a, p["id"])
    assert (await client.delete(f"/processes/steps/{step['id']}", headers=a.headers)).status_code == 204
    assert [s[0] for s in await step_rows(backend, p["id"])] == ["Two"]
    async with backend.state.sessionmaker() as db:
        assert (await db.scalars(select(SubStep).where(SubStep.step_id == uuid.UUID(step["id"])))).all() == []
    assert (await client.delete(f"/processes/steps/{step['id']}", headers=a.headers)).status_code == 404


# --- substeps ---------------------------------------------------------------------------------------


async def test_substep_crud(client: httpx.AsyncClient, make_user: MakeUser, backend: Backend) -> None:
    a = await make_user()
    p = await make_instance(client, a)
    step = await _first_step(client, a, p["id"])
    r = await client.post(f"/processes/steps/{step['id']}/substeps", headers=a.headers,
                          json={"content": "1.3", "completed": False, "order": 0})
    assert r.status_code == 201, r.text
    sub = r.json()
    assert set(sub) == {"id", "content", "completed", "completedAt", "order", "stepId", "createdAt", "updatedAt"}
    assert (sub["order"], sub["stepId"], sub["completedAt"]) == (3, step["id"], None)
    r = await client.post(f"/processes/steps/{step['id']}/substeps", headers=a.headers,
                          json={"content": "first", "order": 1, "completed": True})
    assert r.json()["order"] == 1 and r.json()["completedAt"] is not None
    listed = (await client.get(f"/processes/steps/{step['id']}/substeps", headers=a.headers)).json()
    assert [s["order"] for s in listed] == sorted(s["order"] for s in listed)

    r = await client.put(f"/processes/substeps/{sub['id']}", json={"completed": True, "content": "1.3!"},
                         headers=a.headers)
    assert r.status_code == 200 and r.json()["completed"] is True and r.json()["completedAt"] is not None
    assert r.json()["content"] == "1.3!"
    r = await client.put(f"/processes/substeps/{sub['id']}", json={"completed": False}, headers=a.headers)
    assert r.json()["completedAt"] is None and r.json()["content"] == "1.3!"
    for bad in ({"content": None}, {"order": -1}, {"completed": "nah"}):
        assert (await client.put(f"/processes/substeps/{sub['id']}", json=bad,
                                 headers=a.headers)).status_code == 422
    row = await _substep_row(backend, sub["id"])
    assert (row.content, row.completed) == ("1.3!", False)
    assert (await client.delete(f"/processes/substeps/{sub['id']}", headers=a.headers)).status_code == 204
    assert (await client.put(f"/processes/substeps/{sub['id']}", json={"completed": True},
                             headers=a.headers)).status_code == 404


async def test_foreign_substep_is_404_and_untouched(client: httpx.AsyncClient, make_user: MakeUser,
                                                    backend: Backend) -> None:
    a, b = await make_user("alice"), await make_user("bob")
    p = await make_instance(client, a)
    sub = (await _first_step(client, a, p["id"]))["subSteps"][0]
    assert (await client.put(f"/processes/substeps/{sub['id']}", json={"completed": True, "content": "x"},
                             headers=b.headers)).status_code == 404
    assert (await client.delete(f"/processes/substeps/{sub['id']}", headers=b.headers)).status_code == 404
    row = await _substep_row(backend, sub["id"])
    assert (row.content, row.completed) == ("1.1", False)


# --- batch ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["POST", "PUT"])
async def test_batch_update_substeps(client: httpx.AsyncClient, make_user: MakeUser, backend: Backend,
                                     method: str) -> None:
    a = await make_user()
    p = await make_instance(client, a)
    steps = (await detail(client, a, p["id"]))["steps"]
    s1, s2 = steps[0]["subSteps"]
    other_step = steps[1]["id"]
    r = await client.request(method, "/processes/batch/substeps/update", headers=a.headers, json=[
        {"id": s1["id"], "step_id": other_step, "completed": True, "completed_at": "2030-01-01T00:00:00Z"},
        {"id": s2["id"], "stepId": other_step, "completed": True, "content": "renamed", "order": 9},
    ])
    assert r.status_code == 200, r.text
    out = r.json()
    assert [(x["id"], x["completed"], x["stepId"]) for x in out] == [
        (s1["id"], True, steps[0]["id"]), (s2["id"], True, steps[0]["id"])]
    assert out[0]["completedAt"] == "2030-01-01T00:00:00Z" and out[1]["completedAt"] is not None
    assert (out[1]["content"], out[1]["order"]) == ("renamed", 9)
    # step_id never moves a substep
    assert (await _substep_row(backend, s1["id"])).step_id == uuid.UUID(steps[0]["id"])
    assert (await client.request(method, "/processes/batch/substeps/update", json=[],
                                 headers=a.headers)).json() == []


async def test_batch_with_a_foreign_or_unknown_substep_changes_nothing(
        client: httpx.AsyncClient, make_user: MakeUser, backend: Backend) -> None:
    a, b = await make_user("alice"), await make_user("bob")
    mine = (await _first_step(client, a, (await make_instance(client, a))["id"]))["subSteps"][0]
    theirs = (await _first_step(client, b, (await make_instance(client, b))["id"]))["subSteps"][0]
    for batch in ([{"id": mine["id"], "completed": True}, {"id": theirs["id"], "completed": True}],
                  [{"id": mine["id"], "completed": True}, {"id": str(uuid.uuid4()), "completed": True}]):
        r = await client.post("/processes/batch/substeps/update", json=batch, headers=a.headers)
        assert r.status_code == 404, r.text
    for bad in ([{"completed": True}], [{"id": mine["id"], "completed": "x"}], {"id": mine["id"]},
                [{"id": "nope", "completed": True}]):
        r = await client.post("/processes/batch/substeps/update", json=bad, headers=a.headers)
        assert r.status_code == 422, (bad, r.text)
    assert not (await _substep_row(backend, mine["id"])).completed
    assert not (await _substep_row(backend, theirs["id"])).completed


# --- event members and published messages ----------------------------------------------------------


async def test_event_member_may_tick_someone_elses_process(client: httpx.AsyncClient, make_user: MakeUser,
                                                           backend: Backend) -> None:
    owner, member, declined = await make_user("owner"), await make_user("member"), await make_user("declined")
    p = await make_instance(client, owner)
    event_id = await link_event(backend, p["id"], owner, [(member, ParticipantStatus.CONFIRMED),
                                                           (declined, ParticipantStatus.DECLINED)])
    step = await _first_step(client, owner, p["id"])
    topic = topics.for_event(uuid.UUID(event_id))
    # Listening on the event room and on each person's own topic: the changes go to the room, nowhere else.
    async with hub_frames(backend, topic, *(topics.for_user(uuid.UUID(x.id)) for x in (owner, member, declined)),
                          user_id=member.id) as pub:
        updated = await client.put(f"/processes/steps/{step['id']}", json={"completed": True}, headers=member.headers)
        assert updated.status_code == 200, updated.text
        sub = await client.post(f"/processes/steps/{step['id']}/substeps", json={"content": "extra"},
                                headers=member.headers)
        assert sub.status_code == 201
        batch = await client.post("/processes/batch/substeps/update", headers=member.headers,
                                  json=[{"id": sub.json()["id"], "completed": True}])
        assert batch.status_code == 200
        new = await client.post(f"/processes/{p['id']}/steps", json={"content": "Three"}, headers=member.headers)
        assert new.status_code == 201
        assert (await client.delete(f"/processes/steps/{new.json()['id']}", headers=member.headers)).status_code == 204
        assert (await client.delete(f"/processes/substeps/{sub.json()['id']}",
                                    headers=member.headers)).status_code == 204
    # What a client in the room receives: each change once, in commit order, at offsets 1, 2, 3 … of one epoch,
    # carrying the same camelCase Step/SubStep the REST call answered (a deletion: the row as it was).
    assert [(f.topic, f.event, f.offset) for f in pub.frames] == [
        (topic, "step.updated", 1), (topic, "substep.created", 2), (topic, "substep.updated", 3),
        (topic, "step.created", 4), (topic, "step.deleted", 5), (topic, "substep.deleted", 6)]
    assert len({f.epoch for f in pub.frames}) == 1
    assert [f.data for f in pub.frames] == [updated.json(), sub.json(), batch.json()[0], new.json(), new.json(),
                                            batch.json()[0]]
    data = pub.named("step.updated")[0].data
    assert data["id"] == step["id"] and data["completed"] is True and data["completedAt"].endswith("Z")
    assert [(s["id"], s["completed"]) for s in data["subSteps"]] == [(s["id"], True) for s in step["subSteps"]]
    assert pub.named("substep.created")[0].data["stepId"] == step["id"]
    assert pub.named("substep.deleted")[0].data["completed"] is True
    # A declined participant is not a member.
    r = await client.put(f"/processes/steps/{step['id']}", json={"completed": False}, headers=declined.headers)
    assert r.status_code == 404


async def test_steps_of_a_process_without_events_publish_nothing(client: httpx.AsyncClient, make_user: MakeUser,
                                                                 backend: Backend) -> None:
    a = await make_user()
    t = await make_template(client, a)
    step = await _first_step(client, a, t["id"])
    async with hub_frames(backend, topics.for_user(uuid.UUID(a.id)), user_id=a.id) as pub:
        r = await client.put(f"/processes/steps/{step['id']}", json={"completed": True}, headers=a.headers)
        assert r.status_code == 200
    # hub_frames also checks that the hub published nothing on any other topic.
    assert pub.frames == []


# --- /live/operation --------------------------------------------------------------------------------


async def _op(client: httpx.AsyncClient, who: Account, **body: Any) -> httpx.Response:
    return await client.post("/live/operation", json=body, headers=who.headers)


async def test_live_complete_step_cascades(client: httpx.AsyncClient, make_user: MakeUser, backend: Backend) -> None:
    a = await make_user()
    p = await make_instance(client, a)
    event_id = await link_event(backend, p["id"], a)
    step = await _first_step(client, a, p["id"])
    topic = topics.for_event(uuid.UUID(event_id))
    async with hub_frames(backend, topic, topics.for_user(uuid.UUID(a.id)), user_id=a.id) as pub:
        r = await _op(client, a, operation="complete_step", processId=p["id"], stepId=step["id"],
                      description="done", priority="high", rationale="operator said so")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["success"] is True
    details = body["details"]
    assert details["stepId"] == step["id"] and details["completed"] is True and details["completedAt"].endswith("Z")
    assert [(s["id"], s["completed"]) for s in details["updatedSubsteps"]] == [
        (s["id"], True) for s in step["subSteps"]]
    assert [(f.topic, f.event, f.offset) for f in pub.frames] == [(topic, "step.updated", 1)]
    frame = pub.frames[0].data
    assert (frame["id"], frame["completed"], frame["completedAt"]) == (step["id"], True, details["completedAt"])
    assert [(s["id"], s["completed"], s["completedAt"]) for s in frame["subSteps"]] == [
        (s["id"], True, s["completedAt"]) for s in details["updatedSubsteps"]]
    assert (await step_rows(backend, p["id"]))[0][1:] == (True, 1, [("1.1", True), ("1.2", True)])


async def test_live_add_step_and_substep(client: httpx.AsyncClient, make_user: MakeUser, backend: Backend) -> None:
    a = await make_user()
    p = await make_instance(client, a)
    r = await _op(client, a, operation="add_step", process_id=p["id"], content="Three")
    assert r.status_code == 200, r.text
    new = r.json()["details"]
    assert (new["content"], new["order"], new["processId"], new["subSteps"]) == ("Three", 3, p["id"], [])
    r = await _op(client, a, operation="add_substep", processId=p["id"], stepId=new["id"], content="3.1",
                  subStepId=None)
    assert r.status_code == 200, r.text
    assert (r.json()["details"]["content"], r.json()["details"]["order"]) == ("3.1", 1)
    assert r.json()["details"]["stepId"] == new["id"]
    assert (await step_rows(backend, p["id"]))[2] == ("Three", False, 3, [("3.1", False)])


async def test_live_update_step_cascades_completion(client: httpx.AsyncClient, make_user: MakeUser,
                                                    backend: Backend) -> None:
    a = await make_user()
    p = await make_instance(client, a)
    step = await _first_step(client, a, p["id"])
    r = await _op(client, a, operation="update_step", processId=p["id"], step_id=step["id"], content="Renamed",
                  completed=True, order=5)
    assert r.status_code == 200, r.text
    d = r.json()["details"]
    assert (d["content"], d["completed"], d["order"]) == ("Renamed", True, 5)
    assert all(s["completed"] and s["completedAt"] for s in d["subSteps"])
    r = await _op(client, a, operation="update_step", processId=p["id"], stepId=step["id"], completed=False)
    assert r.json()["details"]["completedAt"] is None


async def test_live_operation_errors(client: httpx.AsyncClient, make_user: MakeUser, backend: Backend) -> None:
    a, b = await make_user("alice"), await make_user("bob")
    p = await make_instance(client, a)
    other = await make_instance(client, a, title="Other")
    step = await _first_step(client, a, p["id"])
    foreign_step = await _first_step(client, a, other["id"])
    before = await step_rows(backend, p["id"])
    cases: list[tuple[dict[str, Any], int]] = [
        ({"operation": "explode", "processId": p["id"]}, 400),
        ({"processId": p["id"], "stepId": step["id"]}, 400),
        ({"operation": "complete_step", "stepId": step["id"]}, 400),
        ({"operation": "complete_step", "processId": "not-a-uuid", "stepId": step["id"]}, 400),
        ({"operation": "complete_step", "processId": p["id"]}, 400),
        ({"operation": "complete_step", "processId": p["id"], "stepId": 12}, 400),
        ({"operation": "add_step", "processId": p["id"]}, 400),
        ({"operation": "add_step", "processId": p["id"], "content": "   "}, 400),
        ({"operation": "add_substep", "processId": p["id"], "stepId": step["id"]}, 400),
        ({"operation": "update_step", "processId": p["id"], "stepId": step["id"]}, 400),
        ({"operation": "update_step", "processId": p["id"], "stepId": step["id"], "completed": "yes"}, 400),
        ({"operation": "update_step", "processId": p["id"], "stepId": step["id"], "order": -1}, 400),
        ({"operation": "update_step", "processId": p["id"], "stepId": step["id"], "order": 2**40}, 400),
        ({"operation": "complete_step", "processId": str(uuid.uuid4()), "stepId": step["id"]}, 404),
        ({"operation": "complete_step", "processId": p["id"], "stepId": str(uuid.uuid4())}, 404),
        ({"operation": "complete_step", "processId": p["id"], "stepId": foreign_step["id"]}, 404),
        ({"operation": "add_substep", "processId": p["id"], "stepId": foreign_step["id"], "content": "x"}, 404),
    ]
    for body, status in cases:
        r = await client.post("/live/operation", json=body, headers=a.headers)
        assert r.status_code == status, (body, r.text)
        assert isinstance(r.json()["detail"], str)
    for body in ({"operation": "complete_step", "processId": p["id"], "stepId": step["id"]},
                 {"operation": "add_step", "processId": p["id"], "content": "sneaky"},
                 {"operation": "update_step", "processId": p["id"], "stepId": step["id"], "content": "x"}):
        r = await client.post("/live/operation", json=body, headers=b.headers)
        assert r.status_code == 403, (body, r.text)
    assert await step_rows(backend, p["id"]) == before
    assert (await step_rows(backend, other["id"]))[0][3] == [("1.1", False), ("1.2", False)]


async def test_live_operation_by_event_member(client: httpx.AsyncClient, make_user: MakeUser,
                                              backend: Backend) -> None:
    owner, member = await make_user("owner"), await make_user("member")
    p = await make_instance(client, owner)
    await link_event(backend, p["id"], owner, [(member, ParticipantStatus.INVITED)])
    step = await _first_step(client, owner, p["id"])
    r = await _op(client, member, operation="complete_step", processId=p["id"], stepId=step["id"])
    assert r.status_code == 200, r.text


async def test_update_step_takes_a_handful_of_queries(client: httpx.AsyncClient, make_user: MakeUser,
                                                      backend: Backend) -> None:
    """PUT /processes/steps/{id} is hot (every tick on the checklist): step+process, linked events with the
    membership check, substeps, then the UPDATEs. Authentication's own queries are not counted."""
    owner, member = await make_user("owner"), await make_user("member")
    p = await make_instance(client, owner)
    await link_event(backend, p["id"], owner, [(member, ParticipantStatus.CONFIRMED)])
    step = await _first_step(client, owner, p["id"])
    for who, completed in ((member, True), (owner, False)):
        async with recorded(backend.state.engine) as seen:
            r = await client.put(f"/processes/steps/{step['id']}", json={"completed": completed}, headers=who.headers)
        # Not counted: authentication's own queries.
        statements = [s for s in seen if "auth_sessions" not in s and "FROM users" not in s]
        assert r.status_code == 200, r.text
        # + 2: the topic log's head and entry, written in the same transaction so the change and its
        # announcement commit together. On PostgreSQL: the step with the rule, its events and its substeps, each
        # row with its version, then the rows written and the frame stored in one statement that checks those
        # versions (persistence.step_writes), each statement a transaction of its own.
        assert 0 < len(statements) <= (2 if backend.name == "postgres" else 7), "\n---\n".join(statements)


@pytest.mark.parametrize("moment", ["0001-01-01T00:00:00+23:59", "9999-12-31T23:59:59-23:59"])
async def test_a_completion_time_beyond_the_calendar_in_utc_is_422(client: httpx.AsyncClient, make_user: MakeUser,
                                                                   moment: str) -> None:
    """Found by the REST fuzz (tests/fuzz/test_rest.py): converting such a `completedAt` to UTC overflowed, and every
    route and push taking a step or substep answered 500 (`internal` over the socket)."""
    a = await make_user()
    p = await make_instance(client, a)
    step = await _first_step(client, a, p["id"])
    substep = step["subSteps"][0]
    for method, path, body in [
        ("POST", f"/processes/{p['id']}/steps", {"content": "x", "completedAt": moment}),
        ("PUT", f"/processes/steps/{step['id']}", {"completedAt": moment}),
        ("POST", f"/processes/steps/{step['id']}/substeps", {"content": "x", "completedAt": moment}),
        ("PUT", f"/processes/substeps/{substep['id']}", {"completedAt": moment}),
        ("POST", "/processes/batch/substeps/update", [{"id": substep["id"], "completedAt": moment}]),
        ("POST", "/live-processes", {"title": "t", "steps": [{"content": "x", "completedAt": moment}]}),
    ]:
        r = await client.request(method, path, json=body, headers=a.headers)
        assert (r.status_code, r.json()["code"]) == (422, "invalid"), (method, path, r.text)
        assert "out of range" in r.json()["detail"]


def _shape(value: Any, ids: dict[str, str]) -> Any:
    """`value` with ids numbered in order of appearance and timestamps reduced to whether they are set."""
    if isinstance(value, dict):
        return {k: (("ts" if v else v) if k in ("completedAt", "updatedAt", "createdAt") else _shape(v, ids))
                for k, v in value.items()}
    if isinstance(value, list):
        return [_shape(v, ids) for v in value]
    if isinstance(value, str) and len(value) == 36 and value.count("-") == 4:
        return ids.setdefault(value, f"id{len(ids)}")
    return value


async def test_a_step_change_straight_on_the_driver_matches_the_orm_path(
        client: httpx.AsyncClient, make_user: MakeUser, backend: Backend, monkeypatch: pytest.MonkeyPatch) -> None:
    """On PostgreSQL PUT /processes/steps/{id} runs its statements straight on asyncpg (persistence.step_writes);
    the ORM's path (SQLite, or a session already holding steps) must agree: the same answers, the same frame in the
    room (its data the answer), the rows as answered (re-read through the ORM), and a change that changes nothing
    writes nothing (updatedAt stays)."""
    from handlers.processes import steps as step_handlers

    owner = await make_user("owner")
    changes: list[dict[str, Any]] = [
        {"completed": True}, {"completed": True}, {"completed": False}, {"content": "One"},
        {"content": "Renamed", "order": 7, "dueDate": "2030-05-05"},
        {"completed": True, "completedAt": "2030-01-02T03:04:05.000Z"}, {"dueDate": None}, {"completed": False},
    ]

    async def run(orm: bool) -> list[Any]:
        p = await make_instance(client, owner)
        event_id = await link_event(backend, p["id"], owner)
        step = await _first_step(client, owner, p["id"])
        seen: list[Any] = []

        async def stored() -> dict[str, Any]:  # the step as read back through the ORM
            found: dict[str, Any]
            [found] = [s for s in (await detail(client, owner, p["id"]))["steps"] if s["id"] == step["id"]]
            return found

        with monkeypatch.context() as m:
            if orm:
                m.setattr(step_handlers, "_holds_checklist_rows", lambda ctx: True)
            for change in changes:
                before = await stored()
                async with hub_frames(backend, topics.for_event(uuid.UUID(event_id))) as pub:
                    r = await client.put(f"/processes/steps/{step['id']}", json=change, headers=owner.headers)
                assert r.status_code == 200, r.text
                body = r.json()
                [frame] = pub.named("step.updated")
                assert frame.data == body
                after = await stored()
                if not orm and backend.name == "postgres":  # the rows as answered (the ORM's own flush of several
                    # substeps answers one updatedAt and may store another, microseconds apart)
                    assert after == body, orjson.dumps([after, body]).decode()
                unchanged = [x["updatedAt"] == y["updatedAt"]
                             for x, y in zip([before, *before["subSteps"]], [after, *after["subSteps"]], strict=True)]
                seen.append((_shape(body, {}), unchanged))
        return seen

    straight, orm = await run(orm=False), await run(orm=True)
    assert straight == orm
    assert straight[1][1] == [True, True, True]  # completing a completed step writes nothing


# --- a step change checked against what it read (PostgreSQL) -------------------------------------------------


async def _step_in_a_room(client: httpx.AsyncClient, make_user: MakeUser,
                          backend: Backend) -> tuple[Account, dict[str, Any], str, dict[str, Any]]:
    """An owner, a process of theirs used by one event (the room), and its first step."""
    owner = await make_user("owner")
    p = await make_instance(client, owner)
    event_id = await link_event(backend, p["id"], owner)
    return owner, p, event_id, await _first_step(client, owner, p["id"])


async def test_a_step_change_read_before_another_writer_commits_is_read_again(
        client: httpx.AsyncClient, make_user: MakeUser, backend: Backend, monkeypatch: pytest.MonkeyPatch) -> None:
    """On PostgreSQL PUT /processes/steps/{id} reads, applies the rules, then writes only if nothing changed since
    (persistence.step_writes.write_checked). A substep added in between fails that check: the change is read and
    applied again, so completing the step completes the late substep too, and the room hears the substep first."""
    if backend.name != "postgres":
        pytest.skip("the checked write is the PostgreSQL path; SQLite serialises writers")
    from persistence import step_writes

    owner, p, event_id, step = await _step_in_a_room(client, make_user, backend)
    real = step_writes.write_checked
    answers: list[object] = []

    async def another_writer_first(*args: Any, **kwargs: Any) -> Any:
        if not answers:  # between this change's read and its write, someone adds a substep
            r = await client.post(f"/processes/steps/{step['id']}/substeps", json={"content": "late"},
                                  headers=owner.headers)
            assert r.status_code == 201, r.text
        answers.append(await real(*args, **kwargs))
        return answers[-1]

    monkeypatch.setattr(step_writes, "write_checked", another_writer_first)
    async with hub_frames(backend, topics.for_event(uuid.UUID(event_id))) as pub:
        r = await client.put(f"/processes/steps/{step['id']}", json={"completed": True}, headers=owner.headers)
    assert r.status_code == 200, r.text
    assert answers[0] is None and answers[1] is not None  # refused once, then written
    body = r.json()
    assert sorted(s["content"] for s in body["subSteps"]) == ["1.1", "1.2", "late"]
    assert all(s["completed"] for s in body["subSteps"])
    assert [f.event for f in pub.frames] == ["substep.created", "step.updated"]
    assert pub.named("step.updated")[0].data == body
    [first, _] = await step_rows(backend, p["id"])
    assert first[1] and len(first[3]) == 3 and all(completed for _, completed in first[3]), first


@pytest.mark.parametrize("adds", ["add_substep", "add_flushed"])
async def test_a_substep_added_while_a_checked_write_waits_for_the_lock_fails_the_check(
        client: httpx.AsyncClient, make_user: MakeUser, backend: Backend, adds: str) -> None:
    """The case a version check on rows alone would miss: the checked write's snapshot is taken, then it waits
    for the step's lock, held by a writer adding a substep that commits meanwhile. The write cannot see that
    substep; it is refused only because adding a substep writes the step's row (persistence.processes.
    add_substep). `add_flushed` (an insert alone) shows the hazard: the same write then goes through, completing
    the step over an open substep."""
    if backend.name != "postgres":
        pytest.skip("the checked write is the PostgreSQL path")
    from handlers.processes import steps as step_handlers
    from persistence import processes, step_writes
    from persistence.database import pooled_driver
    from tests.waiting import eventually

    owner = await make_user("owner")
    p = await make_instance(client, owner)
    step = await _first_step(client, owner, p["id"])
    step_id, user_id, engine = uuid.UUID(step["id"]), uuid.UUID(owner.id), backend.state.engine
    async with pooled_driver(engine) as reader, pooled_driver(engine) as writer, \
            backend.state.sessionmaker() as other:
        read = await step_writes.read_step(reader, step_handlers._STEP_READ, step_id, user_id)
        assert read is not None and read.workable and len(read.subs) == 2
        now = read.row[7]
        async with other.begin():
            assert await processes.step_for_work(other, step_id, workable=true()) is not None  # the lock
            await getattr(processes, adds)(other, SubStep(content="meanwhile", order=9, step_id=step_id))
            write = asyncio.create_task(step_writes.write_checked(
                writer, step_handlers._STEP_WRITE_CHECKED, read, user_id, (read.row[1], True, now, read.row[4], None),
                [(s[0], True, now) for s in read.subs], now, frame=None))
            pid = writer.get_server_pid()
            await eventually(lambda: reader.fetchval(
                "SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = $1", pid),
                what="the checked write to wait for the step's lock")
        written = await write
    [first, _] = await step_rows(backend, p["id"])
    if adds == "add_substep":
        assert written is None
        assert not first[1] and not any(completed for _, completed in first[3]), first  # nothing written
    else:
        assert written is not None  # the hazard the row's new version closes:
        assert first[1] and ("meanwhile", False) in first[3] and ("1.1", True) in first[3], first


async def test_adding_a_substep_makes_a_new_version_of_its_step_row(client: httpx.AsyncClient, make_user: MakeUser,
                                                                    backend: Backend) -> None:
    """What the checked write relies on, through the route itself: POST a substep and the step's row has a new
    version (xmin), its values (updatedAt included) as they were."""
    if backend.name != "postgres":
        pytest.skip("row versions are PostgreSQL's")
    from sqlalchemy import text

    owner = await make_user("owner")
    p = await make_instance(client, owner)
    step = await _first_step(client, owner, p["id"])

    async def version() -> str:
        async with backend.state.sessionmaker() as db:
            return str(await db.scalar(text("SELECT xmin::text FROM steps WHERE id = :id"),
                                       {"id": uuid.UUID(step["id"])}))

    before = await version()
    r = await client.post(f"/processes/steps/{step['id']}/substeps", json={"content": "x"}, headers=owner.headers)
    assert r.status_code == 201, r.text
    assert await version() != before
    after = await _first_step(client, owner, p["id"])
    assert {k: v for k, v in after.items() if k != "subSteps"} == {k: v for k, v in step.items() if k != "subSteps"}


async def test_a_step_change_that_keeps_failing_its_check_takes_the_lock(
        client: httpx.AsyncClient, make_user: MakeUser, backend: Backend, monkeypatch: pytest.MonkeyPatch) -> None:
    """Under steady contention the checked write gives way after CHECKED_TRIES refusals to the locking path,
    which waits for the step's lock instead: the change still lands once, with its frame."""
    if backend.name != "postgres":
        pytest.skip("the checked write is the PostgreSQL path")
    from handlers.processes import steps as step_handlers
    from persistence import step_writes

    owner, p, event_id, step = await _step_in_a_room(client, make_user, backend)
    refused: list[int] = []

    async def always_refused(*args: Any, **kwargs: Any) -> None:
        refused.append(1)

    monkeypatch.setattr(step_writes, "write_checked", always_refused)
    async with hub_frames(backend, topics.for_event(uuid.UUID(event_id))) as pub:
        r = await client.put(f"/processes/steps/{step['id']}", json={"completed": True}, headers=owner.headers)
    assert r.status_code == 200, r.text
    assert len(refused) == step_handlers.CHECKED_TRIES
    assert [f.data for f in pub.named("step.updated")] == [r.json()]
    [first, _] = await step_rows(backend, p["id"])
    assert first[1] and all(completed for _, completed in first[3]), first


async def test_a_step_change_in_several_rooms_commits_with_every_rooms_frame(
        client: httpx.AsyncClient, make_user: MakeUser, backend: Backend) -> None:
    """A process used by two events: the change's frame goes to both rooms, stored with the change (on
    PostgreSQL a REST change then runs in the unit's transaction rather than on its own)."""
    owner = await make_user("owner")
    p = await make_instance(client, owner)
    rooms = [await link_event(backend, p["id"], owner, title=t) for t in ("Standup", "Retro")]
    step = await _first_step(client, owner, p["id"])
    async with hub_frames(backend, *(topics.for_event(uuid.UUID(e)) for e in rooms)) as pub:
        r = await client.put(f"/processes/steps/{step['id']}", json={"completed": True}, headers=owner.headers)
    assert r.status_code == 200, r.text
    assert sorted(f.topic for f in pub.named("step.updated")) == sorted(topics.for_event(uuid.UUID(e)) for e in rooms)
    assert all(f.data == r.json() for f in pub.named("step.updated"))
