"""Events over REST: create (times, templates, invitees), read, partial update, status history, delete, lists."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from handlers.context import Context
from handlers.events import manage as event_handlers
from persistence.enums import NotificationType, ParticipantStatus
from persistence.models import Event, EventParticipant, Notification, Process, StatusLog, Step, SubStep, User
from tests.api.eventkit import T0, count, create_event, insert_event, iso, make_process, make_topic
from tests.conftest import Backend, MakeUser

DETAIL_KEYS = {"id", "title", "description", "startTime", "endTime", "date", "time", "duration", "status",
               "complexity", "color", "location", "eventMetadata", "createdById", "processId", "recordingUrl",
               "createdAt", "updatedAt", "topics", "participants", "tags", "participantsGroup", "relatedEvents",
               "statusLogs"}


async def test_create_event_camel_case_returns_detail(client: httpx.AsyncClient, make_user: MakeUser,
                                                      backend: Backend) -> None:
    alice, bob = await make_user("alice"), await make_user("bob")
    topic = await make_topic(backend, "Engineering")
    r = await client.post("/events", headers=alice.headers, json={
        "title": "Planning", "description": "Q3", "startTime": "2026-03-02T09:00:00Z",
        "endTime": "2026-03-02T10:30:00+00:00", "status": "Planning", "complexity": 3, "color": "#abc",
        "location": "Room 1", "recordingUrl": "https://rec/1", "topics": [topic], "participantIds": [bob.id],
        "metadata": {"importance": "high", "nested_key": {"a_b": 1}},
    })
    assert r.status_code == 201, r.text
    body = r.json()
    assert set(body) == DETAIL_KEYS
    assert body["startTime"] == "2026-03-02T09:00:00Z" and body["endTime"] == "2026-03-02T10:30:00Z"
    assert (body["date"], body["time"], body["duration"]) == ("2026-03-02", "09:00", "90min")
    assert body["status"] == "Planning" and body["complexity"] == 3 and body["recordingUrl"] == "https://rec/1"
    assert body["eventMetadata"] == {"importance": "high", "nested_key": {"a_b": 1}}
    assert body["createdById"] == alice.id and body["processId"] is None
    assert [t["name"] for t in body["topics"]] == ["Engineering"] and body["tags"] == ["Engineering"]
    assert set(body["topics"][0]) == {"id", "name", "category", "color", "createdAt", "updatedAt"}
    people = [(p["userId"], p["role"], p["status"]) for p in body["participants"]]
    assert people == [(alice.id, "organizer", "confirmed"), (bob.id, "participant", "invited")]
    assert set(body["participants"][0]) == {"eventId", "userId", "role", "status", "joinedAt", "user"}
    assert set(body["participants"][0]["user"]) == {"id", "name", "handle", "profileImage"}
    group = body["participantsGroup"]
    assert group["name"] == "Participants" and group["count"] == 2 and len(group["avatars"]) == 2
    assert body["relatedEvents"] == []
    [log] = body["statusLogs"]
    assert log["previousStatus"] is None and log["newStatus"] == "Planning" and log["userId"] == alice.id
    # The invitee is notified; the creator is not.
    assert await count(backend, Notification, Notification.user_id == uuid.UUID(bob.id),
                       Notification.type == NotificationType.EVENT_INVITE) == 1
    assert await count(backend, Notification, Notification.user_id == uuid.UUID(alice.id)) == 0
    # Bob (invited) can open it.
    r = await client.get(f"/events/{body['id']}", headers=bob.headers)
    assert r.status_code == 200 and r.json()["title"] == "Planning"


async def test_create_event_snake_case_with_legacy_times(client: httpx.AsyncClient, make_user: MakeUser,
                                                         backend: Backend) -> None:
    alice, bob = await make_user("alice"), await make_user("bob")
    topic = await make_topic(backend, "Design")
    r = await client.post("/events", headers=alice.headers, json={
        "title": "Review", "date": "2026-03-04", "time": "14:15", "duration": "1h30m", "recording_url": "/rec/x",
        "participant_ids": [bob.id, alice.id, bob.id], "topics": [topic], "event_metadata": {"k": 1},
    })
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["startTime"] == "2026-03-04T14:15:00Z" and body["endTime"] == "2026-03-04T15:45:00Z"
    assert (body["date"], body["time"], body["duration"]) == ("2026-03-04", "14:15", "90min")
    assert body["recordingUrl"] == "/rec/x" and body["eventMetadata"] == {"k": 1}
    assert len(body["participants"]) == 2 and body["tags"] == ["Design"]
    for duration, minutes in (("60min", 60), ("1h", 60), (90, 90), ("45", 45)):
        r = await client.post("/events", headers=alice.headers,
                              json={"title": "x", "date": "2026-03-04", "time": "08:00", "duration": duration})
        assert r.status_code == 201, (duration, r.text)
        assert r.json()["duration"] == f"{minutes}min"
    # Naive and offset timestamps are taken as UTC / converted to UTC.
    r = await client.post("/events", headers=alice.headers, json={
        "title": "tz", "start_time": "2026-03-04T10:00:00", "end_time": "2026-03-04T12:00:00+02:00"})
    assert r.status_code == 201, r.text
    assert r.json()["startTime"] == "2026-03-04T10:00:00Z" and r.json()["endTime"] == "2026-03-04T10:00:00Z"


@pytest.mark.parametrize("patch", [
    {"startTime": None, "endTime": None},
    {"endTime": iso(T0 - timedelta(minutes=1))},
    {"status": "pending"},
    {"status": "Cancelled"},
    {"complexity": 6},
    {"participantIds": ["00000000-0000-4000-8000-000000000001"]},
    {"topics": ["00000000-0000-4000-8000-000000000002"]},
    {"topics": ["not-a-uuid"]},
    {"title": ""},
    {"title": None},
    {"startTime": None, "endTime": None, "date": "2026-02-30", "time": "10:00", "duration": "1h"},
    {"startTime": None, "endTime": None, "date": "2026-03-02", "time": "25:00", "duration": "1h"},
    {"startTime": None, "endTime": None, "date": "2026-03-02", "time": "10:00", "duration": "forever"},
    {"startTime": None, "endTime": None, "date": "2026-03-02", "time": "10:00"},
    {"startTime": "yesterday"},
    {"endTime": "9999-12-31T23:59:59-05:00"},
    {"metadata": [1, 2]},
])
async def test_create_rejects_bad_input_and_writes_nothing(client: httpx.AsyncClient, make_user: MakeUser,
                                                           backend: Backend, patch: dict[str, Any]) -> None:
    alice = await make_user("alice")
    body: dict[str, Any] = {"title": "x", "startTime": iso(T0), "endTime": iso(T0 + timedelta(hours=1))}
    body.update(patch)
    body = {k: v for k, v in body.items() if not (k in ("startTime", "endTime") and v is None)}
    r = await client.post("/events", headers=alice.headers, json=body)
    assert r.status_code == 422, r.text
    assert isinstance(r.json()["detail"], str)
    assert await count(backend, Event) == 0 and await count(backend, Notification) == 0


async def test_create_from_template_clones_steps(client: httpx.AsyncClient, make_user: MakeUser,
                                                 backend: Backend) -> None:
    alice = await make_user("alice")
    template_id = await make_process(backend, alice, template=True)
    body = await create_event(client, alice, templateProcessId=template_id)
    instance_id = body["processId"]
    assert instance_id and instance_id != template_id
    assert body["eventMetadata"]["template_process_id"] == template_id
    async with backend.state.sessionmaker() as db:
        instance = await db.get(Process, uuid.UUID(instance_id))
        assert instance is not None
        assert instance.template_id == uuid.UUID(template_id) and not instance.is_template and not instance.favorite
        assert instance.created_by_id == uuid.UUID(alice.id)
        steps = (await db.scalars(select(Step).where(Step.process_id == instance.id).order_by(Step.order))).all()
        assert [(s.content, s.order, s.completed, s.due_date) for s in steps] == [
            ("Freeze and branch", 1, False, "day 1"), ("Deploy to production", 2, False, None)]
        subs = (await db.scalars(select(SubStep.content).where(SubStep.step_id == steps[0].id)
                                 .order_by(SubStep.order))).all()
        assert list(subs) == ["Cut the branch", "Changelog"]
        # The step without substeps gets the keyword defaults ("deploy").
        assert await count(backend, SubStep, SubStep.step_id == steps[1].id) == 3
    # Snake-case creation works the same, and both show up under the template (either key casing).
    await create_event(client, alice, template_process_id=template_id)
    for key in ("template_process_id", "templateProcessId"):
        r = await client.get("/events", params={key: template_id}, headers=alice.headers)
        assert r.status_code == 200 and len(r.json()) == 2, r.text
    assert await count(backend, Process, Process.template_id == uuid.UUID(template_id)) == 2


async def test_template_and_process_of_another_user_are_404(client: httpx.AsyncClient, make_user: MakeUser,
                                                            backend: Backend) -> None:
    alice, mallory = await make_user("alice"), await make_user("mallory")
    template_id = await make_process(backend, alice, template=True)
    process_id = await make_process(backend, alice, template=False)
    for key, value in (("templateProcessId", template_id), ("processId", process_id), ("process_id", process_id)):
        r = await client.post("/events", headers=mallory.headers,
                              json={"title": "x", "startTime": iso(T0), "endTime": iso(T0), key: value})
        assert r.status_code == 404, r.text
    assert await count(backend, Event) == 0 and await count(backend, Process) == 2


async def test_legacy_metadata_template_lookup_and_process_link(client: httpx.AsyncClient, make_user: MakeUser,
                                                                backend: Backend) -> None:
    alice = await make_user("alice")
    template_id = await make_process(backend, alice, template=True)
    own = await make_process(backend, alice, template=False)
    # Both processId and templateProcessId: the given process is linked, the template only recorded.
    linked = await create_event(client, alice, processId=own, templateProcessId=template_id)
    assert linked["processId"] == own
    r = await client.get("/events", params={"template_process_id": template_id}, headers=alice.headers)
    assert [e["id"] for e in r.json()] == [linked["id"]]
    r = await client.get("/events", params={"processId": own}, headers=alice.headers)
    assert [e["id"] for e in r.json()] == [linked["id"]]


async def test_another_users_event_is_404_on_every_route(client: httpx.AsyncClient, make_user: MakeUser,
                                                         backend: Backend) -> None:
    alice, mallory = await make_user("alice"), await make_user("mallory")
    event = await create_event(client, alice, title="Secret")
    eid = event["id"]
    calls = [
        ("GET", f"/events/{eid}", None), ("PUT", f"/events/{eid}", {"status": "Done"}),
        ("PUT", f"/events/{eid}", {"title": "pwned"}), ("DELETE", f"/events/{eid}", None),
        ("GET", f"/events/{eid}/participants", None), ("GET", f"/events/{eid}/status-logs", None),
        ("POST", f"/events/{eid}/participants", {"userId": mallory.id}),
        ("PUT", f"/events/{eid}/participants/{alice.id}", {"status": "declined"}),
        ("PUT", f"/events/{eid}/participants/{mallory.id}", {"status": "confirmed"}),
        ("DELETE", f"/events/{eid}/participants/{alice.id}", None),
        ("DELETE", f"/events/{eid}/participants/{mallory.id}", None),
    ]
    for method, path, body in calls:
        r = await client.request(method, path, json=body, headers=mallory.headers)
        assert r.status_code == 404, (method, path, r.text)
        assert "Secret" not in r.text
    for path in ("/events", "/events/me"):
        assert (await client.get(path, headers=mallory.headers)).json() == []
    after = (await client.get(f"/events/{eid}", headers=alice.headers)).json()
    assert after["title"] == "Secret" and after["status"] == "Pending" and len(after["participants"]) == 1
    assert len(after["statusLogs"]) == 1


async def test_update_is_partial_in_both_casings(client: httpx.AsyncClient, make_user: MakeUser,
                                                 backend: Backend) -> None:
    alice = await make_user("alice")
    t1, t2 = await make_topic(backend, "A"), await make_topic(backend, "B")
    event = await create_event(client, alice, description="keep me", location="Old", topics=[t1],
                               metadata={"related_events": []}, complexity=2)
    eid = event["id"]
    r = await client.put(f"/events/{eid}", headers=alice.headers, json={"location": "New"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["location"] == "New" and body["description"] == "keep me" and body["complexity"] == 2
    assert body["tags"] == ["A"] and body["startTime"] == event["startTime"]
    r = await client.put(f"/events/{eid}", headers=alice.headers,
                         json={"recording_url": "/rec/snake", "topics": [t2, t1], "event_metadata": {"x": 1}})
    assert r.status_code == 200 and r.json()["recordingUrl"] == "/rec/snake"
    assert r.json()["tags"] == ["A", "B"] and r.json()["eventMetadata"] == {"x": 1}
    r = await client.put(f"/events/{eid}", headers=alice.headers,
                         json={"recordingUrl": "https://rec.example/camel", "description": None, "topics": []})
    body = r.json()
    assert body["recordingUrl"] == "https://rec.example/camel" and body["description"] is None and body["tags"] == []
    assert body["location"] == "New"
    # New times by either key style.
    r = await client.put(f"/events/{eid}", headers=alice.headers,
                         json={"start_time": "2026-03-05T08:00:00Z", "endTime": "2026-03-05T09:15:00Z"})
    assert (r.json()["date"], r.json()["time"], r.json()["duration"]) == ("2026-03-05", "08:00", "75min")


async def test_legacy_time_update_moves_the_event(client: httpx.AsyncClient, make_user: MakeUser) -> None:
    alice = await make_user("alice")
    eid = (await create_event(client, alice))["id"]  # 09:00 for 30 minutes
    r = await client.put(f"/events/{eid}", headers=alice.headers, json={"time": "14:00"})
    assert (r.json()["startTime"], r.json()["endTime"]) == ("2026-03-02T14:00:00Z", "2026-03-02T14:30:00Z")
    r = await client.put(f"/events/{eid}", headers=alice.headers, json={"date": "2026-03-09", "duration": "2h"})
    assert (r.json()["startTime"], r.json()["endTime"]) == ("2026-03-09T14:00:00Z", "2026-03-09T16:00:00Z")
    assert r.json()["duration"] == "120min"


@pytest.mark.parametrize(("change", "status"), [
    ({"status": "done"}, 422), ({"status": None}, 422), ({"complexity": 0}, 422), ({"title": None}, 422),
    ({"title": ""}, 422), ({"endTime": "2026-03-01T00:00:00Z"}, 422), ({"startTime": None}, 422),
    ({"time": "noon"}, 422), ({"duration": "-5"}, 422),
    # An unknown topic id is a value that cannot be accepted (422); an unknown process is a thing the caller
    # cannot see (404), as everywhere else.
    ({"topics": ["00000000-0000-4000-8000-000000000002"]}, 422),
    ({"processId": "00000000-0000-4000-8000-000000000003"}, 404),
])
async def test_update_rejects_bad_input_and_changes_nothing(client: httpx.AsyncClient, make_user: MakeUser,
                                                            change: dict[str, Any], status: int) -> None:
    alice = await make_user("alice")
    event = await create_event(client, alice, location="Here")
    r = await client.put(f"/events/{event['id']}", headers=alice.headers, json={"location": "There", **change})
    assert r.status_code == status, r.text
    assert r.json()["code"] == {404: "not_found", 422: "invalid"}[status]
    after = (await client.get(f"/events/{event['id']}", headers=alice.headers)).json()
    for key in ("title", "status", "startTime", "endTime", "location", "complexity", "processId"):
        assert after[key] == event[key], key


async def test_members_may_change_only_the_status(client: httpx.AsyncClient, make_user: MakeUser,
                                                  backend: Backend) -> None:
    alice, bob, carol = await make_user("alice"), await make_user("bob"), await make_user("carol")
    event = await create_event(client, alice, participantIds=[bob.id, carol.id])
    eid = event["id"]
    changes: list[dict[str, Any]] = [{"title": "mine now"}, {"status": "Review", "location": "x"}, {"topics": []}]
    for change in changes:
        r = await client.put(f"/events/{eid}", headers=bob.headers, json=change)
        assert r.status_code == 403, r.text
    assert (await client.get(f"/events/{eid}", headers=bob.headers)).json()["status"] == "Pending"
    r = await client.put(f"/events/{eid}", headers=bob.headers, json={"status": "Execution"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "Execution"
    assert [(s["previousStatus"], s["newStatus"]) for s in body["statusLogs"]] == [
        ("Pending", "Execution"), (None, "Pending")]
    assert body["statusLogs"][0]["userId"] == bob.id and body["statusLogs"][0]["user"]["name"] == "Bob"
    # Alice and Carol hear about it, Bob (who changed it) does not.
    for who, expected in ((alice, 1), (carol, 1), (bob, 0)):
        assert await count(backend, Notification, Notification.user_id == uuid.UUID(who.id),
                           Notification.type == NotificationType.EVENT_UPDATE) == expected
    # Setting the same status again writes no log.
    await client.put(f"/events/{eid}", headers=bob.headers, json={"status": "Execution"})
    assert await count(backend, StatusLog, StatusLog.event_id == uuid.UUID(eid)) == 2
    # A participant with role organizer may edit the event itself.
    async with backend.state.sessionmaker.begin() as db:
        row = await db.get(EventParticipant, (uuid.UUID(eid), uuid.UUID(carol.id)))
        assert row is not None
        row.role = "organizer"
    r = await client.put(f"/events/{eid}", headers=carol.headers, json={"title": "Carol's"})
    assert r.status_code == 200 and r.json()["title"] == "Carol's"


async def test_status_logs_route(client: httpx.AsyncClient, make_user: MakeUser) -> None:
    alice, bob = await make_user("alice"), await make_user("bob")
    eid = (await create_event(client, alice, participantIds=[bob.id]))["id"]
    for status in ("Planning", "Review", "Done"):
        assert (await client.put(f"/events/{eid}", headers=alice.headers, json={"status": status})).status_code == 200
    r = await client.get(f"/events/{eid}/status-logs", headers=bob.headers)
    assert r.status_code == 200
    logs = r.json()
    assert [x["newStatus"] for x in logs] == ["Done", "Review", "Planning", "Pending"]
    assert set(logs[0]) == {"id", "previousStatus", "newStatus", "eventId", "userId", "user", "createdAt",
                            "updatedAt"}
    assert logs[0]["eventId"] == eid and logs[0]["user"]["id"] == alice.id
    assert logs[0]["user"]["email"] is None  # another user's email stays private
    r = await client.get(f"/events/{eid}/status-logs", params={"skip": 1, "limit": 2}, headers=alice.headers)
    assert [x["newStatus"] for x in r.json()] == ["Review", "Planning"]
    assert r.json()[0]["user"]["email"] == alice.email


async def test_update_publishes_room_messages(client: httpx.AsyncClient, make_user: MakeUser,
                                              backend: Backend) -> None:
    alice, bob = await make_user("alice"), await make_user("bob")
    eid = uuid.UUID((await create_event(client, alice, participantIds=[bob.id]))["id"])
    async with backend.state.sessionmaker.begin() as db:
        user = await db.get(User, uuid.UUID(alice.id))
        assert user is not None
        ctx = Context(db=db, user=user, now=T0)
        outcome = await event_handlers.update_event(
            ctx, eid, event_handlers.EventUpdate.model_validate({"status": "Review", "location": "Lab"}))
    by_topic = [(m.topic, m.event) for m in outcome.publish]
    assert (f"event:{eid}", "status.changed") in by_topic and (f"event:{eid}", "event.updated") in by_topic
    assert (f"user:{bob.id}", "notification.created") in by_topic
    changed = next(m.data for m in outcome.publish if m.event == "status.changed")
    assert changed["previousStatus"] == "Pending" and changed["newStatus"] == "Review"
    assert changed["user"]["email"] is None  # room messages carry nobody's email
    updated = next(m.data for m in outcome.publish if m.event == "event.updated")
    assert updated["location"] == "Lab" and "statusLogs" not in updated


async def test_related_events_only_visible_ones(client: httpx.AsyncClient, make_user: MakeUser,
                                                backend: Backend) -> None:
    alice, mallory = await make_user("alice"), await make_user("mallory")
    mine = await create_event(client, alice, title="Mine")
    theirs = await insert_event(backend, mallory, T0, title="Theirs")
    event = await create_event(client, alice, metadata={
        "related_events": [theirs, {"id": mine["id"]}, "garbage", str(uuid.uuid4())]})
    related = event["relatedEvents"]
    assert [r["id"] for r in related] == [mine["id"]]
    assert set(related[0]) == {"id", "title", "startTime", "date", "color"} and related[0]["date"] == "2026-03-02"


async def test_delete_removes_event_and_its_own_instance_only(client: httpx.AsyncClient, make_user: MakeUser,
                                                              backend: Backend) -> None:
    alice, bob = await make_user("alice"), await make_user("bob")
    template_id = await make_process(backend, alice, template=True)
    event = await create_event(client, alice, templateProcessId=template_id, participantIds=[bob.id])
    instance = uuid.UUID(event["processId"])
    assert (await client.delete(f"/events/{event['id']}", headers=bob.headers)).status_code == 403
    r = await client.delete(f"/events/{event['id']}", headers=alice.headers)
    assert r.status_code == 204
    assert (await client.get(f"/events/{event['id']}", headers=alice.headers)).status_code == 404
    assert await count(backend, Process, Process.id == instance) == 0
    assert await count(backend, Step, Step.process_id == instance) == 0
    # The template and its steps are untouched.
    assert await count(backend, Step, Step.process_id == uuid.UUID(template_id)) == 2
    assert await count(backend, SubStep) == 2
    # An event linked straight to the template: deleting it keeps the template.
    direct = await create_event(client, alice, processId=template_id)
    assert (await client.delete(f"/events/{direct['id']}", headers=alice.headers)).status_code == 204
    assert await count(backend, Process, Process.id == uuid.UUID(template_id)) == 1
    # A process still used by another event stays.
    shared = await make_process(backend, alice, template=False)
    first = await create_event(client, alice, processId=shared)
    await create_event(client, alice, processId=shared)
    assert (await client.delete(f"/events/{first['id']}", headers=alice.headers)).status_code == 204
    assert await count(backend, Step, Step.process_id == uuid.UUID(shared)) == 2
    assert await count(backend, Event) == 1


async def test_lists_are_scoped_filtered_and_paged(client: httpx.AsyncClient, make_user: MakeUser,
                                                   backend: Backend) -> None:
    alice, bob = await make_user("alice"), await make_user("bob")
    topic = await make_topic(backend, "Ops")
    a1 = await create_event(client, alice, title="a1", topics=[topic])
    a2 = await create_event(client, alice, title="a2", status="Done", startTime=iso(T0 + timedelta(days=3)),
                            endTime=iso(T0 + timedelta(days=3, hours=1)))
    invited = await create_event(client, bob, title="b-invites-a", participantIds=[alice.id],
                                 startTime=iso(T0 + timedelta(days=1)), endTime=iso(T0 + timedelta(days=1)))
    declined = await insert_event(backend, bob, T0, title="declined", guests=((alice, ParticipantStatus.DECLINED),))
    await insert_event(backend, bob, T0, title="bob only")
    r = await client.get("/events", headers=alice.headers)
    items = r.json()
    assert [e["title"] for e in items] == ["a1", "b-invites-a", "a2"]
    assert declined not in [e["id"] for e in items]
    assert set(items[0]) == {"id", "title", "startTime", "endTime", "date", "time", "duration", "color", "status",
                             "processId", "participantCount", "topics"}
    assert items[0]["topics"] == ["Ops"] and items[1]["participantCount"] == 2
    q = {"status": "Done"}
    assert [e["id"] for e in (await client.get("/events", params=q, headers=alice.headers)).json()] == [a2["id"]]
    q = {"startDate": "2026-03-03", "end_date": "2026-03-03"}
    assert [e["id"] for e in (await client.get("/events/me", params=q, headers=alice.headers)).json()] == [
        invited["id"]]
    q = {"topic_id": topic}
    assert [e["id"] for e in (await client.get("/events", params=q, headers=alice.headers)).json()] == [a1["id"]]
    q2 = {"skip": 1, "limit": 1}
    assert [e["title"] for e in (await client.get("/events/me", params=q2, headers=alice.headers)).json()] == [
        "b-invites-a"]
    for bad in ({"status": "nope"}, {"start_date": "March"}, {"limit": 0}, {"topicId": "x"}):
        assert (await client.get("/events", params=bad, headers=alice.headers)).status_code == 422, bad


async def test_the_one_statement_read_matches_the_per_table_read(client: httpx.AsyncClient, make_user: MakeUser,
                                                                 backend: Backend,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """On PostgreSQL GET /events/{id} reads in one statement (arrays of records); the per-table statements every
    database can run must answer the same bytes: topics, participants (one declined, the creator not first by
    join time), status changes with their users, metadata, related events, and a hidden event's 404."""
    from persistence import event_reads

    alice, bob, carol, mallory = (await make_user("alice"), await make_user("bob"), await make_user("carol"),
                                  await make_user("mallory"))
    t1, t2 = await make_topic(backend, "Zeta"), await make_topic(backend, "Alpha")
    other = await create_event(client, alice, title="Other")
    hidden = await create_event(client, mallory, title="Hidden")
    event = await create_event(client, bob, topics=[t1, t2], participantIds=[alice.id, carol.id],
                               metadata={"related_events": [other["id"], hidden["id"], "junk"], "n": 1.5,
                                         "nested": {"a_b": [1, None, "ü"]}})
    eid = event["id"]
    assert (await client.put(f"/events/{eid}/participants/{carol.id}", headers=carol.headers,
                             json={"status": "declined"})).status_code == 200
    for status in ("Planning", "Done"):
        assert (await client.put(f"/events/{eid}", headers=bob.headers, json={"status": status})).status_code == 200

    async def both(path: str, who: Any) -> tuple[tuple[int, bytes], tuple[int, bytes]]:
        one = await client.get(path, headers=who.headers)
        with monkeypatch.context() as m:
            m.setattr(event_reads, "on_postgresql", lambda db: False)
            per_table = await client.get(path, headers=who.headers)
        # The request id differs from request to request; nothing else may.
        return ((one.status_code, one.content.replace(one.headers.get("x-request-id", "").encode(), b"")),
                (per_table.status_code, per_table.content.replace(per_table.headers.get("x-request-id", "").encode(),
                                                                  b"")))

    for who in (alice, bob):
        one, per_table = await both(f"/events/{eid}", who)
        assert one[0] == 200 and one == per_table
    body = (await client.get(f"/events/{eid}", headers=alice.headers)).json()
    assert [t["name"] for t in body["topics"]] == ["Alpha", "Zeta"] and len(body["statusLogs"]) == 3
    assert [r["id"] for r in body["relatedEvents"]] == [other["id"]]
    one, per_table = await both(f"/events/{eid}", mallory)
    assert one[0] == 404 and per_table[0] == 404
