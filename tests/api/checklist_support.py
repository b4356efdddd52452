"""Shared helpers for the process, step and directory tests: seed events straight into the database (so these
tests do not depend on the event routes) and record what the API publishes after commit."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import select

from handlers.context import Message, Outcome
from persistence.enums import ParticipantStatus
from persistence.models import Event, EventParticipant, Process, Step, SubStep
from tests.conftest import Account, Backend


class Published:
    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def __call__(self, outcome: Outcome[Any]) -> None:
        self.messages.extend(outcome.publish)

    def named(self, event: str) -> list[Message]:
        return [m for m in self.messages if m.event == event]


@contextlib.contextmanager
def recording(backend: Backend) -> Iterator[Published]:
    """Swap the app's announcer (its injected port) for a recorder for the duration of the block."""
    recorder = Published()
    original = backend.state.announce
    backend.state.announce = recorder
    try:
        yield recorder
    finally:
        backend.state.announce = original


async def make_template(client: httpx.AsyncClient, who: Account, title: str = "Release",
                        **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "title": title, "description": "Ship it", "color": "#123456", "category": "Engineering",
        "steps": [
            {"content": "Freeze", "order": 0, "sub_steps": [{"content": "Cut branch"}, {"content": "Changelog"}]},
            {"content": "Verify", "order": 0, "subSteps": [{"content": "Run tests", "order": 0}]},
        ],
    }
    body.update(extra)
    r = await client.post("/templates", json=body, headers=who.headers)
    assert r.status_code == 201, r.text
    data: dict[str, Any] = r.json()
    return data


async def make_instance(client: httpx.AsyncClient, who: Account, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"title": "Live run", "steps": [
        {"content": "One", "order": 0, "sub_steps": [{"content": "1.1"}, {"content": "1.2"}]},
        {"content": "Two", "order": 0},
    ]}
    body.update(extra)
    r = await client.post("/live-processes", json=body, headers=who.headers)
    assert r.status_code == 201, r.text
    data: dict[str, Any] = r.json()
    return data


async def detail(client: httpx.AsyncClient, who: Account, process_id: str) -> dict[str, Any]:
    r = await client.get(f"/processes/{process_id}", headers=who.headers)
    assert r.status_code == 200, r.text
    data: dict[str, Any] = r.json()
    return data


async def link_event(backend: Backend, process_id: str, creator: Account,
                     members: Sequence[tuple[Account, ParticipantStatus]] = (), title: str = "Standup") -> str:
    """An event created by `creator` using the process, with extra participants."""
    start = datetime(2030, 1, 7, 9, 0, tzinfo=UTC)
    async with backend.state.sessionmaker.begin() as db:
        event = Event(title=title, start_time=start, end_time=start + timedelta(hours=1),
                      created_by_id=uuid.UUID(creator.id), process_id=uuid.UUID(process_id))
        db.add(event)
        await db.flush()
        db.add(EventParticipant(event_id=event.id, user_id=uuid.UUID(creator.id), role="organizer",
                                status=ParticipantStatus.CONFIRMED))
        for account, status in members:
            db.add(EventParticipant(event_id=event.id, user_id=uuid.UUID(account.id), role="participant",
                                    status=status))
        return str(event.id)


async def step_rows(backend: Backend, process_id: str) -> list[tuple[str, bool, int, list[tuple[str, bool]]]]:
    """(content, completed, order, [(substep content, completed)]) straight from the database."""
    async with backend.state.sessionmaker() as db:
        steps = (await db.scalars(select(Step).where(Step.process_id == uuid.UUID(process_id))
                                  .order_by(Step.order))).all()
        out = []
        for s in steps:
            subs = (await db.scalars(select(SubStep).where(SubStep.step_id == s.id).order_by(SubStep.order))).all()
            out.append((s.content, s.completed, s.order, [(x.content, x.completed) for x in subs]))
        return out


async def process_row(backend: Backend, process_id: str) -> Process | None:
    async with backend.state.sessionmaker() as db:
        return await db.get(Process, uuid.UUID(process_id))
