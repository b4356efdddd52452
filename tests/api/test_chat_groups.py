"""Chat lines stored as a group (handlers.events.chat.send_many, the group commit behind `chat.send` pushes): each
line checked on its own, a refused line failing alone, every room's lines at consecutive offsets in the order given,
and exactly what was stored in the log. On SQLite there are no groups (one push, one transaction)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import orjson
from sqlalchemy import select

from handlers.events import chat
from persistence import topic_log
from persistence.errors import NotFound
from persistence.models import ChatMessage, Event, TopicEntry, User
from tests.api.eventkit import two_rooms
from tests.conftest import Backend

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


async def test_a_group_stores_each_members_line_and_refuses_the_others_alone(client: httpx.AsyncClient,
                                                                            backend: Backend) -> None:
    state = backend.state
    ada, grace, eve, declined, room, other = await two_rooms(backend, T0)
    topic, other_topic = f"event:{room.id}", f"event:{other.id}"

    def line(user: User, event: Event, text: str, second: int) -> chat.ChatSend:
        return chat.ChatSend(user, event.id, chat.ChatIn(text=text), T0 + timedelta(seconds=second))

    sends = [line(ada, room, "one", 1), line(eve, room, "eve is no member", 2), line(grace, other, "elsewhere", 3),
             line(declined, room, "declined", 4), line(grace, room, "two", 5), line(ada, other, "not hers", 6),
             line(ada, room, "three", 7)]
    async with state.sessionmaker() as db:
        results = await chat.send_many(db, sends, T0)
        await db.commit()
    if backend.name == "sqlite":
        assert results is None  # no groups there: each push is its own transaction
        return
    assert results is not None
    refused = [i for i, r in enumerate(results) if isinstance(r, NotFound)]
    assert refused == [1, 3, 5]
    stored = {i: r for i, r in enumerate(results) if not isinstance(r, NotFound)}
    # Per room: consecutive offsets in the order given, one epoch, frames as every member receives them.
    in_room = [stored[i].recorded[0] for i in (0, 4, 6)]
    assert {r.topic for r in in_room} == {topic} and len({r.epoch for r in in_room}) == 1
    assert [r.entries[0][0] for r in in_room] == [1, 2, 3]
    frames = [orjson.loads(r.entries[0][1]) for r in in_room]
    assert [(f["offset"], f["epoch"], f["data"]["text"], f["ts"]) for f in frames] == [
        (1, in_room[0].epoch, "one", "2026-03-01T12:00:01.000Z"),
        (2, in_room[0].epoch, "two", "2026-03-01T12:00:05.000Z"),
        (3, in_room[0].epoch, "three", "2026-03-01T12:00:07.000Z")]
    assert [stored[i].value.author_id for i in (0, 4, 6)] == [ada.id, grace.id, ada.id]
    assert stored[2].recorded[0].topic == other_topic and stored[2].recorded[0].entries[0][0] == 1

    async with state.sessionmaker() as db:
        rows = (await db.scalars(select(ChatMessage).order_by(ChatMessage.created_at))).all()
        assert [(m.event_id, m.author_id, m.text) for m in rows] == [
            (room.id, ada.id, "one"), (other.id, grace.id, "elsewhere"), (room.id, grace.id, "two"),
            (room.id, ada.id, "three")]
        assert [m.id for m in rows] == [stored[i].value.id for i in (0, 2, 4, 6)]
        logged = (await db.execute(select(TopicEntry.topic, TopicEntry.seq, TopicEntry.frame)
                                   .order_by(TopicEntry.topic, TopicEntry.seq))).all()
        assert sorted((t, s, f) for t, s, f in logged) == sorted(
            [(topic, *r.entries[0]) for r in in_room] + [(other_topic, *stored[2].recorded[0].entries[0])])
        assert await topic_log.head(db, topic) == (in_room[0].epoch, 3)  # refused lines moved no head
        assert await topic_log.head(db, other_topic) == (stored[2].recorded[0].epoch, 1)

    # The next group continues each room's offsets.
    async with state.sessionmaker() as db:
        more = await chat.send_many(db, [line(grace, room, "four", 8), line(eve, room, "still not", 9)], T0)
        await db.commit()
    assert more is not None and isinstance(more[1], NotFound)
    assert not isinstance(more[0], NotFound) and more[0].recorded[0].entries[0][0] == 4
