"""Positions of topics nobody wrote yet: the sockets joining them at once get their head rows made in one
statement per batch (server/topic_log.py, persistence.topic_log.start_heads), each topic once, with an epoch of
its own; a topic another writer started between the batch's read and its write keeps that writer's epoch."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import httpx
import pytest
from sqlalchemy import func, select

from persistence import topic_log
from persistence.models import TopicHead
from server.topic_log import DatabaseTopicLog
from tests.conftest import Backend
from tests.statements import recorded


def _topics(n: int) -> list[str]:
    run = uuid.uuid4().hex[:8]
    return [f"event:{run}-{i}" for i in range(n)]


async def test_rooms_joined_at_once_start_at_zero_with_an_epoch_each(client: httpx.AsyncClient,
                                                                    backend: Backend) -> None:
    log = DatabaseTopicLog(backend.state.sessionmaker)
    topics = _topics(40)
    async with recorded(backend.state.engine) as seen:
        first = await asyncio.gather(*(log.position(t) for t in topics))
    again = await asyncio.gather(*(log.position(t) for t in topics))

    # One batch: one read of the heads and one statement that starts them all (was a transaction per topic).
    assert [q.split()[0].upper() for q in seen] == ["SELECT", "INSERT"], seen
    assert [p.offset for p in first] == [0] * 40
    assert len({p.epoch for p in first}) == 40 and all(len(p.epoch) == 16 for p in first)
    assert again == first  # started once: asking again reads what the first batch wrote
    async with backend.state.sessionmaker() as db:
        rows = (await db.execute(select(TopicHead.topic, func.count()).where(TopicHead.topic.in_(topics))
                                 .group_by(TopicHead.topic))).all()
    assert sorted(rows) == sorted((t, 1) for t in topics)


async def test_start_heads_leaves_a_started_topic_as_it_is(client: httpx.AsyncClient, backend: Backend) -> None:
    started, new = _topics(2)
    now = datetime.now(UTC)
    async with backend.state.sessionmaker.begin() as db:
        db.add(TopicHead(topic=started, epoch="e" * 16, head=7, updated_at=now))
    async with backend.state.sessionmaker.begin() as db:
        made = await topic_log.start_heads(db, [started, new], now)
    assert list(made) == [new] and made[new][1] == 0
    async with backend.state.sessionmaker() as db:
        assert await topic_log.head(db, started) == ("e" * 16, 7)
        assert await topic_log.head(db, new) == made[new]


async def test_a_topic_started_by_another_writer_meanwhile_keeps_its_epoch(
        client: httpx.AsyncClient, backend: Backend, monkeypatch: pytest.MonkeyPatch) -> None:
    topic, = _topics(1)
    async with backend.state.sessionmaker.begin() as db:
        db.add(TopicHead(topic=topic, epoch="f" * 16, head=3, updated_at=datetime.now(UTC)))
    read = topic_log.heads

    async def read_before_the_other_writer(db: object, topics: list[str]) -> dict[str, tuple[str, int]]:
        return {}  # the batch's read ran before the other writer committed

    monkeypatch.setattr(topic_log, "heads", read_before_the_other_writer)
    position = await DatabaseTopicLog(backend.state.sessionmaker).position(topic)
    monkeypatch.setattr(topic_log, "heads", read)
    assert (position.epoch, position.offset) == ("f" * 16, 3)
