"""Planning over REST: the caller's directories, the heuristic generator, and saving with fresh instances."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import select

from persistence.enums import EventStatus, ParticipantStatus
from persistence.models import Event, EventParticipant, Process, StatusLog, Step
from tests.api.factories_insights import count, make_directory, make_process, uid
from tests.conftest import Backend, MakeUser

FOUR_STEPS = [("Plan", ["x"]), ("Do", []), ("Check", []), ("Act", [])]


async def test_directories_lists_own_templates(client: httpx.AsyncClient, make_user: MakeUser,
                                               backend: Backend) -> None:
    a, b = await make_user("a"), await make_user("b")
    d1 = await make_directory(backend, a.id, "Alpha")
    empty = await make_directory(backend, a.id, "Empty")
    t1 = await make_process(backend, a.id, "Beta template", is_template=True, directory_id=d1, steps=FOUR_STEPS)
    t2 = await make_process(backend, a.id, "Alpha template", is_template=True, directory_id=d1, steps=[])
    await make_process(backend, a.id, "An instance", directory_id=d1)
    bd = await make_directory(backend, b.id, "B dir")
    await make_process(backend, b.id, "B template", is_template=True, directory_id=bd)
    r = await client.get("/plan/directories", headers=a.headers)
    assert r.status_code == 200, r.text
    body = r.json()
    assert [d["id"] for d in body] == [str(d1)] and str(empty) not in r.text
    assert body[0]["name"] == "Alpha" and body[0]["color"] == "#abcdef" and "description" in body[0]
    assert body[0]["templates"] == [{"id": str(t2), "name": "Alpha template", "templateCount": 0},
                                    {"id": str(t1), "name": "Beta template", "templateCount": 4}]
    assert [d["name"] for d in (await client.get("/plan/directories", headers=b.headers)).json()] == ["B dir"]


async def test_generate_is_a_deterministic_heuristic(client: httpx.AsyncClient, make_user: MakeUser,
                                                     backend: Backend) -> None:
    a = await make_user()
    d = await make_directory(backend, a.id)
    t_long = await make_process(backend, a.id, "Long", is_template=True, directory_id=d,
                                steps=[(f"s{i}", []) for i in range(6)])
    t_short = await make_process(backend, a.id, "Short", is_template=True, directory_id=d, steps=[("one", [])])
    lib = await make_process(backend, None, "Library one", is_template=True, steps=FOUR_STEPS,
                             metadata={"source": "library"})
    body = {"description": "week", "goals": "ship", "effort": "low", "hoursAllocation": 3,
            "directoryIds": [str(d)], "templateIds": [str(lib), str(t_short)], "autoGenerateProcess": False}
    r = await client.post("/plan/generate", headers=a.headers, json=body)
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["generator"] == "heuristic" and "heuristic" in out["summary"]
    events = out["events"]
    assert {e["processId"] for e in events} == {str(t_long), str(t_short), str(lib)}
    assert all(e["status"] == "Pending" and e["effort"] == "low" and e["id"].startswith("plan-") for e in events)
    starts = [datetime.fromisoformat(e["startTime"]) for e in events]
    ends = [datetime.fromisoformat(e["endTime"]) for e in events]
    assert starts == sorted(starts)
    # Next week, Tue-Thu for low effort, never more than the hours allocated, each 30-120 minutes.
    today = datetime.now(UTC).date()
    monday = today + timedelta(days=(7 - today.weekday()) % 7 or 7)
    assert all(s.date() in {monday + timedelta(days=k) for k in (1, 2, 3)} for s in starts)
    minutes = [int((e - s).total_seconds() // 60) for s, e in zip(starts, ends, strict=True)]
    assert sum(minutes) <= 180 and all(m <= 120 for m in minutes)
    assert len({s.date() for s in starts}) == 3  # spread: one per day, each day has 60 minutes
    assert minutes == [60, 30, 60]  # Long (capped by the day), Short, Library
    # Same input, same plan.
    again = (await client.post("/plan/generate", headers=a.headers, json=body)).json()
    assert again["events"] == events
    # snake_case keys too
    snake = {"effort": "high", "hours_allocation": 40, "template_ids": [str(t_long)]}
    r = await client.post("/plan/generate", headers=a.headers, json=snake)
    assert r.status_code == 200 and [e["processId"] for e in r.json()["events"]] == [str(t_long)]
    assert r.json()["events"][0]["effort"] == "high"
    # Nothing was written.
    assert await count(backend, Event) == 0


async def test_generate_from_goals_has_null_process(client: httpx.AsyncClient, make_user: MakeUser) -> None:
    a = await make_user()
    r = await client.post("/plan/generate", headers=a.headers,
                          json={"goals": "Write the spec\nReview hiring pipeline; ", "hoursAllocation": 5})
    events = r.json()["events"]
    assert [e["title"] for e in events] == ["Write the spec", "Review hiring pipeline"]
    assert all(e["processId"] is None for e in events) and "process-generic" not in r.text
    r = await client.post("/plan/generate", headers=a.headers, json={"hoursAllocation": 5})
    assert r.json()["events"] == [] and r.json()["summary"]


async def test_generate_rejects_foreign_ids_and_bad_input(client: httpx.AsyncClient, make_user: MakeUser,
                                                          backend: Backend) -> None:
    a, b = await make_user("a"), await make_user("b")
    bd = await make_directory(backend, b.id)
    bt = await make_process(backend, b.id, "B", is_template=True, directory_id=bd)
    mine_instance = await make_process(backend, a.id, "instance")
    for ids in ({"directoryIds": [str(bd)]}, {"templateIds": [str(bt)]}, {"templateIds": [str(mine_instance)]},
                {"templateIds": [str(uuid.uuid4())]}):
        r = await client.post("/plan/generate", headers=a.headers, json={"hoursAllocation": 5, **ids})
        assert r.status_code == 404, (ids, r.text)
    bodies: list[dict[str, Any]] = [{"hoursAllocation": 0}, {"hoursAllocation": 41}, {"effort": "extreme"},
                                    {"templateIds": ["nope"]}, {"directoryIds": "x"}]
    for body in bodies:
        r = await client.post("/plan/generate", headers=a.headers, json=body)
        assert r.status_code == 422, (body, r.text)


async def test_save_creates_events_and_fresh_instances(client: httpx.AsyncClient, make_user: MakeUser,
                                                       backend: Backend) -> None:
    a = await make_user()
    template = await make_process(backend, a.id, "Tpl", is_template=True, steps=FOUR_STEPS)
    plan = (await client.post("/plan/generate", headers=a.headers,
                              json={"templateIds": [str(template)], "goals": "x", "hoursAllocation": 4})).json()
    items = plan["events"] * 2  # the same template twice: two separate instances
    r = await client.post("/plan/save", headers=a.headers, json={"events": items})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["success"] is True and len(body["savedEvents"]) == 2
    async with backend.state.sessionmaker() as db:
        events = (await db.scalars(select(Event).where(Event.id.in_([uid(i) for i in body["savedEvents"]])))).all()
        assert len(events) == 2
        instance_ids = {e.process_id for e in events}
        assert len(instance_ids) == 2 and template not in instance_ids
        for e in events:
            assert e.status == EventStatus.PENDING and e.created_by_id == uid(a.id)
            assert e.event_metadata["template_process_id"] == str(template)
            assert e.event_metadata["effort"] == "medium" and e.event_metadata["plan_event_id"] == "plan-1"
            instance = await db.get(Process, e.process_id)
            assert instance is not None and not instance.is_template and instance.template_id == template
            part = await db.get(EventParticipant, (e.id, uid(a.id)))
            assert part is not None and part.role == "organizer" and part.status == ParticipantStatus.CONFIRMED
        # The template's own steps are untouched; each instance got a copy.
        assert await count(backend, Step, Step.process_id == template) == 4
        for pid in instance_ids:
            assert await count(backend, Step, Step.process_id == pid) == 4
    assert await count(backend, StatusLog) == 2
    # Saved events show up as the caller's (visible via search).
    found = (await client.get("/search/events", headers=a.headers, params={"q": "Tpl"})).json()
    assert {e["id"] for e in found} == set(body["savedEvents"])


async def test_save_is_all_or_nothing(client: httpx.AsyncClient, make_user: MakeUser, backend: Backend) -> None:
    a, b = await make_user("a"), await make_user("b")
    template = await make_process(backend, a.id, "Tpl", is_template=True)
    foreign = await make_process(backend, b.id, "Foreign", is_template=True)
    foreign_instance = await make_process(backend, b.id, "Foreign instance")
    start = datetime(2030, 1, 7, 9, tzinfo=UTC)
    good = {"id": "plan-1", "title": "ok", "processId": str(template), "startTime": start.isoformat(),
            "endTime": (start + timedelta(hours=1)).isoformat(), "effort": "low"}
    bad_items = [
        {**good, "title": ""},
        {**good, "processId": "process-generic"},
        {**good, "endTime": start.isoformat()},
        {**good, "startTime": "tomorrow"},
        {**good, "effort": "max"},
        {k: v for k, v in good.items() if k != "startTime"},
    ]
    for bad in bad_items:
        r = await client.post("/plan/save", headers=a.headers, json={"events": [good, bad]})
        assert r.status_code == 422, (bad, r.text)
    for bad in ({**good, "processId": str(foreign)}, {**good, "processId": str(foreign_instance)},
                {**good, "processId": str(uuid.uuid4())}):
        r = await client.post("/plan/save", headers=a.headers, json={"events": [good, bad]})
        # Another user's template or instance is not the caller's to see: 404, exactly as an unknown id.
        assert r.status_code == 404, (bad, r.text)
        assert r.json()["code"] == "not_found", (bad, r.text)
    assert (await client.post("/plan/save", headers=a.headers, json={"events": []})).status_code == 422
    assert await count(backend, Event) == 0
    assert await count(backend, Process, Process.template_id == template) == 0
    # Naive times are UTC; a null processId makes a plain event; snake_case keys work.
    r = await client.post("/plan/save", headers=a.headers, json={"events": [
        {"title": "plain", "process_id": None, "start_time": "2030-01-08T10:00:00",
         "end_time": "2030-01-08T11:00:00"}]})
    assert r.status_code == 200, r.text
    async with backend.state.sessionmaker() as db:
        e = await db.get(Event, uid(r.json()["savedEvents"][0]))
        assert e is not None and e.process_id is None and e.start_time == datetime(2030, 1, 8, 10, tzinfo=UTC)
