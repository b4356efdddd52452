"""Benchmark data written straight into the database with bulk Core inserts (seconds, not minutes).

The shape mirrors what the app itself creates: every event has an organizer participant, a few more
participants, topics and its own process instance (cloned from one of the creator's templates) with steps and
substeps; finished events have completed checklists and status logs. The benchmark user sees `events` events
(created or taking part), spread over three calendar months; other users' events -- including some the
benchmark user declined -- sit in the same tables and the same months so access scoping has work to do.
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from persistence.enums import EventStatus, ParticipantStatus
from persistence.models import (
    Base,
    Event,
    EventParticipant,
    EventTopic,
    Process,
    StatusLog,
    Step,
    SubStep,
    Topic,
    User,
)

COLORS = ("#2563eb", "#16a34a", "#dc2626", "#9333ea", "#ea580c", "#0891b2", "#4f46e5", "#65a30d")
DURATIONS = (15, 30, 45, 60, 60, 90, 120)
CHUNK = 1000


def month_bounds(day: date) -> tuple[date, date]:
    first = day.replace(day=1)
    nxt = (first + timedelta(days=32)).replace(day=1)
    return first, nxt - timedelta(days=1)


@dataclass(frozen=True)
class SeedPlan:
    events: int = 3000            # events the benchmark user can see
    other_events: int = 3000      # events of other users the benchmark user cannot see
    people: int = 30              # other users
    topics: int = 24
    templates: int = 8            # per creator that has events
    steps: int = 4                # per process
    substeps: int = 2             # per step
    today: date = field(default_factory=lambda: datetime.now(UTC).date())
    seed: int = 42

    @property
    def span(self) -> tuple[date, date]:
        """Previous, current and next calendar month."""
        first_this, last_this = month_bounds(self.today)
        first = month_bounds(first_this - timedelta(days=1))[0]
        last = month_bounds(last_this + timedelta(days=1))[1]
        return first, last

    @property
    def month(self) -> tuple[date, date]:
        """The calendar month the benchmark reads: the middle one."""
        return month_bounds(self.today)


@dataclass
class Seeded:
    user_id: uuid.UUID
    email: str
    password: str
    visible_event_ids: list[uuid.UUID]
    hidden_event_ids: list[uuid.UUID]
    step_ids: list[uuid.UUID]            # open (not completed) steps of visible events' processes
    step_event: dict[uuid.UUID, uuid.UUID]
    rows: dict[str, int]
    seconds: float


class _Rows:
    def __init__(self) -> None:
        self.by_table: dict[str, list[dict[str, Any]]] = {}

    def add(self, model: type[Base], **values: Any) -> None:
        self.by_table.setdefault(model.__tablename__, []).append(values)


class _Builder:
    def __init__(self, plan: SeedPlan, password_hash: str, tag: str) -> None:
        self.plan = plan
        self.rng = random.Random(plan.seed)
        self.hash = password_hash
        self.tag = tag
        self.rows = _Rows()
        self.now = datetime.now(UTC)
        self.topic_ids: list[uuid.UUID] = []
        self.templates: dict[uuid.UUID, list[uuid.UUID]] = {}
        self.step_ids_of: dict[uuid.UUID, list[uuid.UUID]] = {}
        self.recent_by_owner: dict[uuid.UUID, list[uuid.UUID]] = {}

    def user(self, name: str, handle: str) -> uuid.UUID:
        uid = uuid.uuid4()
        self.rows.add(User, id=uid, name=name, handle=handle, email=f"{handle}@bench.example.com",
                      password_hash=self.hash, user_metadata={}, is_admin=False, is_guest=False,
                      created_at=self.now)
        return uid

    def topics(self) -> None:
        for i in range(self.plan.topics):
            tid = uuid.uuid4()
            self.topic_ids.append(tid)
            self.rows.add(Topic, id=tid, name=f"bench-{self.tag}-topic-{i:02d}",
                          category=("Work", "Product", "Ops", "People")[i % 4], color=COLORS[i % len(COLORS)],
                          created_at=self.now)

    def process(self, owner: uuid.UUID, title: str, *, template: bool, template_id: uuid.UUID | None,
                done_at: datetime | None) -> uuid.UUID:
        pid = uuid.uuid4()
        self.rows.add(Process, id=pid, title=title, description=f"How we run: {title}",
                      color=self.rng.choice(COLORS), favorite=False, category="Engineering",
                      process_metadata={"icon": "rocket"}, is_template=template, last_updated=self.now,
                      created_by_id=owner, template_id=template_id, created_at=self.now)
        steps: list[uuid.UUID] = []
        for order in range(1, self.plan.steps + 1):
            sid = uuid.uuid4()
            steps.append(sid)
            self.rows.add(Step, id=sid, content=f"{title}: step {order}", completed=done_at is not None,
                          completed_at=done_at, order=order, due_date=f"day {order}", process_id=pid,
                          created_at=self.now)
            for sub in range(1, self.plan.substeps + 1):
                self.rows.add(SubStep, id=uuid.uuid4(), content=f"check {order}.{sub}",
                              completed=done_at is not None, completed_at=done_at, order=sub, step_id=sid,
                              created_at=self.now)
        self.step_ids_of[pid] = steps
        return pid

    def template_for(self, owner: uuid.UUID) -> uuid.UUID:
        pool = self.templates.setdefault(owner, [])
        if len(pool) < self.plan.templates:
            pool.append(self.process(owner, f"Template {len(pool) + 1}", template=True, template_id=None,
                                     done_at=None))
            return pool[-1]
        return self.rng.choice(pool)

    def start_time(self) -> datetime:
        first, last = self.plan.span
        day = first + timedelta(days=self.rng.randrange((last - first).days + 1))
        return datetime(day.year, day.month, day.day, self.rng.randint(8, 17), self.rng.choice((0, 15, 30, 45)),
                        tzinfo=UTC)

    def status(self, start: datetime, end: datetime) -> EventStatus:
        if end < self.now - timedelta(days=1):
            return EventStatus.DONE if self.rng.random() < 0.8 else EventStatus.REVIEW
        if start < self.now + timedelta(days=1):
            return EventStatus.EXECUTION
        return EventStatus.PENDING if self.rng.random() < 0.7 else EventStatus.PLANNING

    def event(self, owner: uuid.UUID, guests: Sequence[tuple[uuid.UUID, ParticipantStatus]]) -> tuple[uuid.UUID,
                                                                                                     uuid.UUID | None]:
        """Insert one event; return its id and its process id when the checklist is still open."""
        eid = uuid.uuid4()
        start = self.start_time()
        end = start + timedelta(minutes=self.rng.choice(DURATIONS))
        status = self.status(start, end)
        done_at = end if status == EventStatus.DONE else None
        template_id = self.template_for(owner)
        pid = self.process(owner, f"Run {eid.hex[:6]}", template=False, template_id=template_id, done_at=done_at)
        metadata: dict[str, Any] = {"template_process_id": str(template_id), "source": "bench"}
        recent = self.recent_by_owner.setdefault(owner, [])
        if recent and self.rng.random() < 0.1:
            metadata["related_events"] = [{"id": str(r)} for r in recent[-2:]]
        recent.append(eid)
        self.rows.add(Event, id=eid, title=f"Session {eid.hex[:6]}", description="Work through the list",
                      start_time=start, end_time=end, status=status, complexity=self.rng.randint(1, 5),
                      color=self.rng.choice(COLORS), location=f"Room {self.rng.randint(1, 12)}",
                      event_metadata=metadata, created_by_id=owner, process_id=pid, created_at=self.now)
        joined = start - timedelta(days=7)
        self.rows.add(EventParticipant, event_id=eid, user_id=owner, role="organizer",
                      status=ParticipantStatus.CONFIRMED, joined_at=joined)
        for i, (guest, pstatus) in enumerate(guests, start=1):
            self.rows.add(EventParticipant, event_id=eid, user_id=guest, role="participant",
                          status=pstatus, joined_at=joined + timedelta(seconds=i))
        for tid in self.rng.sample(self.topic_ids, self.rng.randint(1, 3)):
            self.rows.add(EventTopic, event_id=eid, topic_id=tid)
        if status == EventStatus.DONE:
            self.rows.add(StatusLog, id=uuid.uuid4(), previous_status=EventStatus.PENDING,
                          new_status=EventStatus.EXECUTION, event_id=eid, user_id=owner, created_at=start)
            self.rows.add(StatusLog, id=uuid.uuid4(), previous_status=EventStatus.EXECUTION,
                          new_status=EventStatus.DONE, event_id=eid, user_id=owner, created_at=end)
        return eid, (pid if done_at is None else None)

    def guests(self, people: Sequence[uuid.UUID], exclude: uuid.UUID, n: int) -> list[tuple[uuid.UUID,
                                                                                          ParticipantStatus]]:
        chosen = self.rng.sample([p for p in people if p != exclude], n)
        statuses = (ParticipantStatus.CONFIRMED, ParticipantStatus.CONFIRMED, ParticipantStatus.INVITED,
                    ParticipantStatus.DECLINED, ParticipantStatus.ATTENDED)
        return [(p, self.rng.choice(statuses)) for p in chosen]


async def _insert(engine: AsyncEngine, rows: _Rows) -> dict[str, int]:
    # Parents before children (the models' dependency order).
    counts: dict[str, int] = {}
    async with engine.begin() as conn:
        for table in Base.metadata.sorted_tables:
            batch = rows.by_table.get(table.name)
            if not batch:
                continue
            for i in range(0, len(batch), CHUNK):
                await conn.execute(insert(table), batch[i:i + CHUNK])
            counts[table.name] = len(batch)
    return counts


async def seed(engine: AsyncEngine, plan: SeedPlan, password: str, password_hash: str) -> Seeded:
    """Write the benchmark data set; `password_hash` must hash `password` with the server's argon2 settings."""
    began = time.perf_counter()
    tag = uuid.uuid4().hex[:6]
    b = _Builder(plan, password_hash, tag)
    me = b.user("Bench User", f"bench_{tag}")
    people = [b.user(f"Person {i}", f"person{i}_{tag}") for i in range(plan.people)]
    b.topics()
    visible: list[uuid.UUID] = []
    hidden: list[uuid.UUID] = []
    open_processes: list[tuple[uuid.UUID, uuid.UUID]] = []  # (event, process) with unfinished checklists
    own = plan.events * 2 // 3
    for _ in range(own):  # mine, with a few guests
        eid, pid = b.event(me, b.guests(people, me, b.rng.randint(1, 3)))
        visible.append(eid)
        if pid is not None:
            open_processes.append((eid, pid))
    for _ in range(plan.events - own):  # someone else's, and I take part
        owner = b.rng.choice(people)
        mine = b.rng.choice((ParticipantStatus.CONFIRMED, ParticipantStatus.CONFIRMED, ParticipantStatus.INVITED,
                             ParticipantStatus.ATTENDED))
        eid, pid = b.event(owner, [(me, mine), *b.guests(people, owner, b.rng.randint(0, 2))])
        visible.append(eid)
        if pid is not None:
            open_processes.append((eid, pid))
    for i in range(plan.other_events):  # not mine; one in ten I declined (declined means not visible)
        owner = b.rng.choice(people)
        guests = b.guests(people, owner, b.rng.randint(1, 3))
        if i % 10 == 0:
            guests.append((me, ParticipantStatus.DECLINED))
        eid, _ = b.event(owner, guests)
        hidden.append(eid)
    step_event = {sid: eid for eid, pid in open_processes for sid in b.step_ids_of[pid]}
    counts = await _insert(engine, b.rows)
    return Seeded(user_id=me, email=f"bench_{tag}@bench.example.com", password=password,
                  visible_event_ids=visible, hidden_event_ids=hidden, step_ids=list(step_event),
                  step_event=step_event, rows=counts, seconds=time.perf_counter() - began)
