"""Helpers for the event, participant and calendar tests: rows made directly in the database, and event creation."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

import httpx
from sqlalchemy import func, select

from persistence.enums import EventStatus, ParticipantStatus
from persistence.models import Base, Event, EventParticipant, Process, Step, SubStep, Topic, User
from tests.conftest import Account, Backend

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


async def make_topic(backend: Backend, name: str) -> str:
    async with backend.state.sessionmaker.begin() as db:
        topic = Topic(name=name, category="Work", color="#123456")
        db.add(topic)
        await db.flush()
        return str(topic.id)


async def make_process(backend: Backend, owner: Account, *, template: bool = True, title: str = "Release") -> str:
    """A process with two steps; the first has two substeps, the second none."""
    async with backend.state.sessionmaker.begin() as db:
        process = Process(title=title, description="ship it", color="#2563eb", category="Engineering",
                          is_template=template, created_by_id=uuid.UUID(owner.id), favorite=template,
                          process_metadata={"icon": "rocket"})
        first = Step(content="Freeze and branch", order=1, due_date="day 1")
        first.sub_steps = [SubStep(content="Cut the branch", order=1), SubStep(content="Changelog", order=2)]
        process.steps = [first, Step(content="Deploy to production", order=2)]
        db.add(process)
        await db.flush()
        return str(process.id)


async def insert_event(backend: Backend, owner: Account, start: datetime, minutes: int = 60, *,
                       title: str = "Inserted", status: EventStatus = EventStatus.PENDING,
                       guests: tuple[tuple[Account, ParticipantStatus], ...] = ()) -> str:
    async with backend.state.sessionmaker.begin() as db:
        event = Event(title=title, start_time=start, end_time=start + timedelta(minutes=minutes), status=status,
                      created_by_id=uuid.UUID(owner.id))
        db.add(event)
        await db.flush()
        db.add(EventParticipant(event_id=event.id, user_id=uuid.UUID(owner.id), role="organizer",
                                status=ParticipantStatus.CONFIRMED))
        for guest, status_ in guests:
            db.add(EventParticipant(event_id=event.id, user_id=uuid.UUID(guest.id), role="participant",
                                    status=status_))
        return str(event.id)


async def create_event(client: httpx.AsyncClient, who: Account, **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"title": "Standup", "startTime": iso(T0), "endTime": iso(T0 + timedelta(minutes=30))}
    body.update(fields)
    r = await client.post("/events", json=body, headers=who.headers)
    assert r.status_code == 201, r.text
    result: dict[str, Any] = r.json()
    return result


class Rooms(NamedTuple):
    """Two rooms and four people: `room` is ada's, grace takes part, `declined` declined, eve is no member; `other`
    is grace's alone."""

    ada: User
    grace: User
    eve: User
    declined: User
    room: Event
    other: Event


def new_user(name: str, **extra: Any) -> User:
    handle = f"{name}_{uuid.uuid4().hex[:8]}"
    return User(name=handle, handle=handle, email=f"{handle}@example.com", **extra)


async def two_rooms(backend: Backend, start: datetime = T0) -> Rooms:
    async with backend.state.sessionmaker.begin() as db:
        ada, grace, eve, declined = new_user("ada"), new_user("grace"), new_user("eve"), new_user("declined")
        db.add_all([ada, grace, eve, declined])
        await db.flush()
        room = Event(title="Room", start_time=start, end_time=start + timedelta(hours=1), created_by_id=ada.id)
        other = Event(title="Other", start_time=start, end_time=start + timedelta(hours=1), created_by_id=grace.id)
        db.add_all([room, other])
        await db.flush()
        db.add_all([EventParticipant(event_id=room.id, user_id=grace.id, status=ParticipantStatus.CONFIRMED),
                    EventParticipant(event_id=room.id, user_id=declined.id, status=ParticipantStatus.DECLINED)])
    return Rooms(ada, grace, eve, declined, room, other)


async def count(backend: Backend, model: type[Base], *where: Any) -> int:
    async with backend.state.sessionmaker() as db:
        return int(await db.scalar(select(func.count()).select_from(model).where(*where)) or 0)
