"""Rows written straight to the database for the live/reports/progress/plan/search/feed tests, so those tests
do not depend on other features' routes."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from persistence.enums import EventStatus, ParticipantStatus
from persistence.models import (
    Directory,
    Event,
    EventParticipant,
    EventTopic,
    Post,
    Process,
    Report,
    StatusLog,
    Step,
    SubStep,
    Topic,
)
from tests.conftest import Backend


def uid(value: str | uuid.UUID) -> uuid.UUID:
    return value if isinstance(value, uuid.UUID) else uuid.UUID(value)


def now() -> datetime:
    return datetime.now(UTC)


async def make_event(backend: Backend, owner: str, title: str = "Event", *, start: datetime | None = None,
                     minutes: int = 60, status: EventStatus = EventStatus.PENDING,
                     participants: Sequence[tuple[str, str, ParticipantStatus]] = (),
                     process_id: uuid.UUID | None = None, topics: Sequence[str] = (),
                     description: str | None = None, complexity: int | None = None) -> uuid.UUID:
    start = start or now()
    async with backend.state.sessionmaker.begin() as db:
        event = Event(title=title, description=description, start_time=start,
                      end_time=start + timedelta(minutes=minutes), status=status, created_by_id=uid(owner),
                      process_id=process_id, complexity=complexity, event_metadata={})
        db.add(event)
        await db.flush()
        db.add(EventParticipant(event_id=event.id, user_id=uid(owner), role="organizer",
                                status=ParticipantStatus.CONFIRMED))
        for user, role, pstatus in participants:
            db.add(EventParticipant(event_id=event.id, user_id=uid(user), role=role, status=pstatus))
        for name in topics:
            topic = await db.scalar(select(Topic).where(Topic.name == name))
            if topic is None:
                topic = Topic(name=name, category="Test", color="#123456")
                db.add(topic)
                await db.flush()
            db.add(EventTopic(event_id=event.id, topic_id=topic.id))
        return event.id


async def make_process(backend: Backend, owner: str | None, title: str = "Process", *, is_template: bool = False,
                       steps: Sequence[tuple[str, Sequence[str]]] = (("Step one", ("a", "b")), ("Step two", ())),
                       directory_id: uuid.UUID | None = None, metadata: dict[str, Any] | None = None,
                       description: str | None = None) -> uuid.UUID:
    async with backend.state.sessionmaker.begin() as db:
        process = Process(title=title, description=description, is_template=is_template,
                          created_by_id=uid(owner) if owner else None, directory_id=directory_id,
                          process_metadata=metadata or {})
        for i, (content, subs) in enumerate(steps, start=1):
            step = Step(content=content, order=i)
            step.sub_steps = [SubStep(content=s, order=j) for j, s in enumerate(subs, start=1)]
            process.steps.append(step)
        db.add(process)
        await db.flush()
        return process.id


async def step_ids(backend: Backend, process_id: uuid.UUID) -> list[uuid.UUID]:
    async with backend.state.sessionmaker() as db:
        return list((await db.scalars(select(Step.id).where(Step.process_id == process_id)
                                      .order_by(Step.order))).all())


async def complete_step(backend: Backend, step_id: uuid.UUID, at: datetime) -> None:
    """Complete a step and its substeps at `at`, as the steps feature does."""
    async with backend.state.sessionmaker.begin() as db:
        step = await db.get(Step, step_id)
        assert step is not None
        step.completed, step.completed_at = True, at
        for sub in (await db.scalars(select(SubStep).where(SubStep.step_id == step_id))).all():
            sub.completed, sub.completed_at = True, at


async def make_directory(backend: Backend, owner: str, name: str = "Dir") -> uuid.UUID:
    async with backend.state.sessionmaker.begin() as db:
        d = Directory(name=name, description=f"{name} description", color="#abcdef", created_by_id=uid(owner),
                      directory_metadata={})
        db.add(d)
        await db.flush()
        return d.id


async def make_post(backend: Backend, author: str, content: str, *, visibility: str = "public",
                    event_id: uuid.UUID | None = None, created_at: datetime | None = None) -> uuid.UUID:
    async with backend.state.sessionmaker.begin() as db:
        post = Post(content=content, visibility=visibility, author_id=uid(author), event_id=event_id,
                    created_at=created_at or now())
        db.add(post)
        await db.flush()
        return post.id


async def make_status_log(backend: Backend, event_id: uuid.UUID, user: str, new: EventStatus, *,
                          previous: EventStatus | None = None, created_at: datetime | None = None) -> uuid.UUID:
    async with backend.state.sessionmaker.begin() as db:
        log = StatusLog(event_id=event_id, user_id=uid(user), new_status=new, previous_status=previous,
                        created_at=created_at or now())
        db.add(log)
        await db.flush()
        return log.id


async def make_report(backend: Backend, owner: str, title: str, *, report_type: str = "weekly",
                      year: int | None = None, quarter: int | None = None, week: int | None = None,
                      created_at: datetime | None = None) -> uuid.UUID:
    async with backend.state.sessionmaker.begin() as db:
        r = Report(title=title, file_url=f"/files/{title}.pdf", report_type=report_type, year=year,
                   quarter=quarter, week=week, size=1234, user_id=uid(owner), report_metadata={"k": "v"},
                   date_range=f"{title} range", created_at=created_at or now())
        db.add(r)
        await db.flush()
        return r.id


async def count(backend: Backend, model: Any, *where: Any) -> int:
    from sqlalchemy import func

    async with backend.state.sessionmaker() as db:
        return int(await db.scalar(select(func.count()).select_from(model).where(*where)) or 0)
