"""The connect-time questions asked in batches (server.connect_checks, persistence.topic_log.heads): on PostgreSQL
they run straight on the driver, elsewhere through SQLAlchemy; on both they give the answers, and the values, the
ORM's one-at-a-time path gives."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import orjson
from sqlalchemy import select

from handlers.accounts.auth_cache import USER_COLUMNS, user_from_row
from handlers.accounts.users import brief
from handlers.schema import to_wire
from persistence import topic_log
from persistence.models import AuthSession, TopicHead, User
from tests.api.eventkit import new_user, two_rooms
from tests.conftest import Backend

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


async def test_standing_sessions_come_with_their_users_row_as_the_orm_loads_it(backend: Backend) -> None:
    state = backend.state
    later = datetime.now(UTC) + timedelta(hours=1)
    async with state.sessionmaker.begin() as db:
        ada = new_user("ada", user_metadata={"theme": {"dark": True}, "tags": ["a", 1]}, bio="hi")
        guest = new_user("guest", is_guest=True, guest_role="viewer", guest_expires_at=later)
        db.add_all([ada, guest])
        await db.flush()
        standing = AuthSession(user_id=ada.id, expires_at=later)
        revoked = AuthSession(user_id=ada.id, expires_at=later, revoked_at=datetime.now(UTC))
        guests = AuthSession(user_id=guest.id, expires_at=later)
        db.add_all([standing, revoked, guests])
        await db.flush()
        ids = (ada.id, guest.id, standing.id, revoked.id, guests.id)
    ada_id, guest_id, standing_id, revoked_id, guests_id = ids
    checks = state.connect_checks
    asked = [(ada_id, standing_id), (ada_id, revoked_id), (guest_id, guests_id), (guest_id, standing_id),
             (ada_id, uuid.uuid4())]
    batches = checks.sessions.batches
    found = await asyncio.gather(*(checks.sessions.get(key) for key in asked))
    assert checks.sessions.batches == batches + 1  # asked together: one statement
    assert found[1] is None and found[3] is None and found[4] is None  # revoked; another user's; unknown
    async with state.sessionmaker() as db:
        loaded = {u.id: u for u in (await db.execute(select(User).where(User.id.in_([ada_id, guest_id])))).scalars()}
    for answer, user_id in ((found[0], ada_id), (found[2], guest_id)):
        assert answer is not None
        row, expires_at = answer
        assert expires_at == later.replace(microsecond=expires_at.microsecond)
        assert list(row) == list(USER_COLUMNS)
        orm = loaded[user_id]
        for key in USER_COLUMNS:  # the same values of the same types (the id: a uuid.UUID, whichever kind the ORM's)
            value = getattr(orm, key)
            assert row[key] == value and (type(row[key]) is type(value) or isinstance(value, uuid.UUID)), key
        assert type(row["id"]) is uuid.UUID
        user = user_from_row(row)
        assert orjson.dumps(to_wire(brief(user))) == orjson.dumps(to_wire(brief(orm)))
        async with state.sessionmaker() as db:  # attached without a query, as a command's unit of work does
            assert (await db.merge(user, load=False)).user_metadata == orm.user_metadata


async def test_membership_is_the_creator_or_a_participant_who_has_not_declined(backend: Backend) -> None:
    state = backend.state
    rooms = await two_rooms(backend, T0)
    room_id, other_id = rooms.room.id, rooms.other.id
    ids = {"ada": rooms.ada.id, "grace": rooms.grace.id, "declined": rooms.declined.id, "eve": rooms.eve.id}
    asked = {(room_id, ids["ada"]): True, (room_id, ids["grace"]): True, (room_id, ids["declined"]): None,
             (room_id, ids["eve"]): None, (other_id, ids["grace"]): True, (other_id, ids["ada"]): None,
             (uuid.uuid4(), ids["ada"]): None}
    answers = await asyncio.gather(*(state.connect_checks.members.get(key) for key in asked))
    assert dict(zip(asked, answers, strict=True)) == asked


async def test_heads_of_many_topics_in_one_read(backend: Backend) -> None:
    state = backend.state
    topics = [f"event:{uuid.uuid4()}" for _ in range(3)]
    async with state.sessionmaker.begin() as db:
        db.add_all([TopicHead(topic=topics[0], epoch="e0", head=7, updated_at=T0),
                    TopicHead(topic=topics[1], epoch="e1", head=0, updated_at=T0)])
    async with state.sessionmaker() as db:
        assert await topic_log.heads(db, topics) == {topics[0]: ("e0", 7), topics[1]: ("e1", 0)}
        assert await topic_log.heads(db, []) == {}
