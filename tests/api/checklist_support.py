"""Shared helpers for the process, step and directory tests: seed events straight into the database (so these
tests do not depend on the event routes) and record the frames the app's real hub delivers after commit."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
from sqlalchemy import select

from channels.hub import Hub, Position
from persistence.enums import ParticipantStatus
from persistence.models import Event, EventParticipant, Process, Step, SubStep
from tests.conftest import Account, Backend
from tests.waiting import LIVENESS


@dataclass(frozen=True)
class Frame:
    """One `msg` frame exactly as the hub handed it to its listeners (the text a WebSocket client receives)."""

    topic: str
    event: str
    offset: int
    epoch: str
    ts: str
    data: Any
    raw: str


class HubRecorder:
    """A listener on the app's real hub (`state.hub`), subscribed the way a WebSocket connection subscribes
    (`server.ws_commands._join`: subscribe, then read the position; every later entry arrives in order).
    It records what the hub delivers: the frames, and any presence, removal or resync calls."""

    def __init__(self, user_id: str = "") -> None:
        self.user_id = user_id
        self.start: dict[str, Position] = {}
        self.delivered: list[tuple[str, int, str]] = []  # (topic, offset, frame) as on_msg received them
        self.presence: list[tuple[str, str]] = []
        self.removed: list[tuple[str, str, str]] = []
        self.resyncs: list[str] = []

    # ---- the hub's Listener protocol (synchronous, must not raise: checks happen in `frames`) ----
    def on_msg(self, topic: str, offset: int, frame: str) -> None:
        self.delivered.append((topic, offset, frame))

    def on_presence(self, topic: str, frame: str) -> None:
        self.presence.append((topic, frame))

    def on_removed(self, topic: str, user_id: str, reason: str) -> None:
        self.removed.append((topic, user_id, reason))

    def on_resync(self, topic: str) -> None:
        self.resyncs.append(topic)

    # ---- what the tests read ----
    @property
    def frames(self) -> list[Frame]:
        out = []
        for topic, offset, raw in self.delivered:
            obj = orjson.loads(raw)
            assert obj["op"] == "msg" and obj["topic"] == topic and obj["offset"] == offset, raw
            assert set(obj) == {"op", "topic", "event", "offset", "epoch", "ts", "data"}, raw
            out.append(Frame(topic, obj["event"], offset, obj["epoch"], obj["ts"], obj["data"], raw))
        return out

    def named(self, event: str) -> list[Frame]:
        return [f for f in self.frames if f.event == event]


@contextlib.asynccontextmanager
async def hub_frames(backend: Backend, *watched: str, user_id: str = "") -> AsyncIterator[HubRecorder]:
    """Subscribe a `HubRecorder` to `watched` topics on the app's hub for the block. The REST calls inside go
    through the real announcer, outbox and hub. On leaving the block (without an error) it checks what a
    client relies on: everything announced reached the hub (no outbox backlog, nothing dropped); each watched
    topic's frames carry its epoch and the offsets right after the subscription point, with no gap; the hub's
    log holds exactly those frames (what a resuming client is sent); no presence, removal or resync; and
    nothing was published on any topic that is not watched (the hub's own publish counter: so nothing else in
    the app, such as a background job working on this test's data, may publish while the block runs)."""
    state = backend.state
    hub, outbox = state.hub, state.outbox
    recorder = HubRecorder(user_id)
    published_before = hub.local_stats()["published"]
    dropped_before = outbox.dropped
    try:
        for topic in watched:
            await hub.subscribe(topic, recorder)
            recorder.start[topic] = await hub.position(topic)
        yield recorder
        await _settle(hub, recorder, watched)
    finally:
        for topic in watched:
            await hub.unsubscribe(topic, recorder)
    assert outbox.pending == 0 and outbox.dropped == dropped_before, "an announcement did not reach the hub"
    frames = recorder.frames
    for topic in watched:
        start = recorder.start[topic]
        mine = [f for f in frames if f.topic == topic]
        assert [f.offset for f in mine] == list(range(start.offset + 1, start.offset + 1 + len(mine))), mine
        assert all(f.epoch == start.epoch for f in mine), mine
        assert all(_is_utc_timestamp(f.ts) for f in mine), mine
        logged = await hub.history(topic, start.epoch, start.offset)
        assert logged is not None and [(e.offset, e.frame) for e in logged] == [(f.offset, f.raw) for f in mine]
    assert (recorder.presence, recorder.removed, recorder.resyncs) == ([], [], [])
    published = hub.local_stats()["published"] - published_before
    assert published == len(frames), f"{published - len(frames)} message(s) published on topics not watched"


async def _settle(hub: Hub, recorder: HubRecorder, watched: Sequence[str], timeout: float = LIVENESS) -> None:
    """The memory hub delivers inside `publish`; a hub that delivers later (redis://) is waited for until it
    delivered up to each topic's current offset (`timeout` is for liveness only)."""
    deadline = asyncio.get_running_loop().time() + timeout
    for topic in watched:
        target = (await hub.position(topic)).offset
        while max((o for t, o, _ in recorder.delivered if t == topic), default=recorder.start[topic].offset) < target:
            assert asyncio.get_running_loop().time() < deadline, f"the hub did not deliver {topic} up to {target}"
            await asyncio.sleep(0.01)


def _is_utc_timestamp(ts: str) -> bool:
    return ts.endswith("Z") and datetime.fromisoformat(ts.replace("Z", "+00:00")).utcoffset() == timedelta(0)


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
