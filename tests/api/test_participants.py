"""Event participants over REST: list, invite, change role/status, remove and leave; who may do which."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime

import httpx

from handlers.context import Context
from handlers.events import manage as events
from handlers.events import participants
from persistence.enums import NotificationType, ParticipantStatus
from persistence.models import EventParticipant, Notification, User
from tests.api.eventkit import count, create_event
from tests.conftest import Account, Backend, MakeUser


async def test_list_participants_creator_first(client: httpx.AsyncClient, make_user: MakeUser) -> None:
    alice, bob, carol = await make_user("alice"), await make_user("bob"), await make_user("carol")
    eid = (await create_event(client, alice, participantIds=[carol.id, bob.id]))["id"]
    r = await client.get(f"/events/{eid}/participants", headers=bob.headers)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body[0]["userId"] == alice.id and body[0]["role"] == "organizer"
    assert {p["userId"] for p in body} == {alice.id, bob.id, carol.id}
    assert set(body[0]) == {"eventId", "userId", "role", "status", "joinedAt", "user"}
    assert body[0]["user"] == {"id": alice.id, "name": "Alice", "handle": alice.handle, "profileImage": None}
    assert body[0]["joinedAt"].endswith("Z") and body[0]["eventId"] == eid
    r = await client.get(f"/events/{eid}/participants", params={"limit": 1, "skip": 1}, headers=alice.headers)
    assert len(r.json()) == 1 and r.json()[0]["userId"] != alice.id


async def test_add_participant_both_casings(client: httpx.AsyncClient, make_user: MakeUser,
                                            backend: Backend) -> None:
    alice, bob, carol = await make_user("alice"), await make_user("bob"), await make_user("carol")
    eid = (await create_event(client, alice))["id"]
    r = await client.post(f"/events/{eid}/participants", headers=alice.headers, json={"user_id": bob.id})
    assert r.status_code == 201, r.text
    assert r.json()["role"] == "participant" and r.json()["status"] == "invited"
    assert r.json()["user"]["handle"] == bob.handle
    r = await client.post(f"/events/{eid}/participants", headers=alice.headers,
                          json={"userId": carol.id, "role": "editor", "status": "confirmed"})
    assert r.status_code == 201 and (r.json()["role"], r.json()["status"]) == ("editor", "confirmed")
    for who in (bob, carol):
        assert await count(backend, Notification, Notification.user_id == uuid.UUID(who.id),
                           Notification.type == NotificationType.EVENT_INVITE) == 1
    # Duplicate, the creator again, unknown user, bad input.
    assert (await client.post(f"/events/{eid}/participants", headers=alice.headers,
                              json={"userId": bob.id})).status_code == 409
    assert (await client.post(f"/events/{eid}/participants", headers=alice.headers,
                              json={"userId": alice.id})).status_code == 409
    assert (await client.post(f"/events/{eid}/participants", headers=alice.headers,
                              json={"userId": str(uuid.uuid4())})).status_code == 404
    for bad in ({}, {"userId": "nope"}, {"userId": bob.id, "status": "maybe"}, {"userId": bob.id, "role": ""}):
        r = await client.post(f"/events/{eid}/participants", headers=alice.headers, json=bad)
        assert r.status_code == 422, (bad, r.text)
    assert await count(backend, EventParticipant) == 3
    # A member who is not an organizer may not invite.
    dave = await make_user("dave")
    r = await client.post(f"/events/{eid}/participants", headers=bob.headers, json={"userId": dave.id})
    assert r.status_code == 403
    assert await count(backend, EventParticipant, EventParticipant.user_id == uuid.UUID(dave.id)) == 0


async def test_update_participant_rules(client: httpx.AsyncClient, make_user: MakeUser) -> None:
    alice, bob, carol = await make_user("alice"), await make_user("bob"), await make_user("carol")
    eid = (await create_event(client, alice, participantIds=[bob.id, carol.id]))["id"]
    base = f"/events/{eid}/participants"
    # Bob accepts his own invitation (snake or camel does not matter for one-word keys).
    r = await client.put(f"{base}/{bob.id}", headers=bob.headers, json={"status": "confirmed"})
    assert r.status_code == 200 and r.json()["status"] == "confirmed"
    # ...but may not promote himself or touch Carol.
    assert (await client.put(f"{base}/{bob.id}", headers=bob.headers, json={"role": "organizer"})).status_code == 403
    assert (await client.put(f"{base}/{carol.id}", headers=bob.headers,
                             json={"status": "declined"})).status_code == 403
    # The organizer may change roles.
    r = await client.put(f"{base}/{carol.id}", headers=alice.headers, json={"role": "editor"})
    assert r.status_code == 200 and r.json()["role"] == "editor" and r.json()["status"] == "invited"
    assert (await client.put(f"{base}/{uuid.uuid4()}", headers=alice.headers,
                             json={"status": "confirmed"})).status_code == 404
    assert (await client.put(f"{base}/{bob.id}", headers=alice.headers,
                             json={"status": "nope"})).status_code == 422
    # Declining hides the event, but the invitee may still accept again.
    assert (await client.put(f"{base}/{carol.id}", headers=carol.headers,
                             json={"status": "declined"})).status_code == 200
    assert (await client.get(f"/events/{eid}", headers=carol.headers)).status_code == 404
    assert (await client.put(f"{base}/{bob.id}", headers=carol.headers,
                             json={"status": "declined"})).status_code == 404
    r = await client.put(f"{base}/{carol.id}", headers=carol.headers, json={"status": "confirmed"})
    assert r.status_code == 200
    assert (await client.get(f"/events/{eid}", headers=carol.headers)).status_code == 200
    people = {p["userId"]: (p["role"], p["status"]) for p in
              (await client.get(base, headers=alice.headers)).json()}
    assert people == {alice.id: ("organizer", "confirmed"), bob.id: ("participant", "confirmed"),
                      carol.id: ("editor", "confirmed")}


async def test_remove_and_leave(client: httpx.AsyncClient, make_user: MakeUser, backend: Backend) -> None:
    alice, bob, carol = await make_user("alice"), await make_user("bob"), await make_user("carol")
    eid = (await create_event(client, alice, participantIds=[bob.id, carol.id]))["id"]
    base = f"/events/{eid}/participants"
    assert (await client.delete(f"{base}/{carol.id}", headers=bob.headers)).status_code == 403
    assert (await client.delete(f"{base}/{alice.id}", headers=bob.headers)).status_code == 403
    assert (await client.delete(f"{base}/{alice.id}", headers=alice.headers)).status_code == 409
    assert (await client.delete(f"{base}/{bob.id}", headers=bob.headers)).status_code == 204
    assert (await client.get(f"/events/{eid}", headers=bob.headers)).status_code == 404
    assert (await client.delete(f"{base}/{carol.id}", headers=alice.headers)).status_code == 204
    assert (await client.delete(f"{base}/{carol.id}", headers=alice.headers)).status_code == 404
    assert await count(backend, EventParticipant, EventParticipant.event_id == uuid.UUID(eid)) == 1
    detail = (await client.get(f"/events/{eid}", headers=alice.headers)).json()
    assert detail["participantsGroup"]["count"] == 1


async def test_leaving_declining_and_deleting_take_connections_off_the_room(
        client: httpx.AsyncClient, make_user: MakeUser, backend: Backend) -> None:
    alice, bob, carol = await make_user("alice"), await make_user("bob"), await make_user("carol")
    eid = uuid.UUID((await create_event(client, alice, participantIds=[bob.id, carol.id]))["id"])
    room = f"event:{eid}"

    @asynccontextmanager
    async def as_user(who: Account) -> AsyncIterator[Context]:
        async with backend.state.sessionmaker.begin() as db:
            user = await db.get(User, uuid.UUID(who.id))
            assert user is not None
            yield Context(db=db, user=user, now=datetime.now(UTC))

    async with as_user(bob) as ctx:
        declined = await participants.update_participant(
            ctx, eid, uuid.UUID(bob.id), participants.ParticipantUpdate(status=ParticipantStatus.DECLINED))
    assert [(r.topic, r.user_id, r.reason) for r in declined.remove] == [(room, uuid.UUID(bob.id), "revoked")]
    assert [(m.topic, m.event) for m in declined.publish] == [(room, "participant.updated")]
    async with as_user(alice) as ctx:
        removed = await participants.remove_participant(ctx, eid, uuid.UUID(carol.id))
        confirmed = await participants.update_participant(
            ctx, eid, uuid.UUID(alice.id), participants.ParticipantUpdate(status=ParticipantStatus.CONFIRMED))
    assert [(r.user_id, r.reason) for r in removed.remove] == [(uuid.UUID(carol.id), "revoked")]
    assert removed.publish[0].data == {"eventId": str(eid), "userId": carol.id}
    assert confirmed.remove == []
    async with as_user(alice) as ctx:
        deleted = await events.delete_event(ctx, eid)
    assert [(r.topic, r.user_id, r.reason) for r in deleted.remove] == [(room, None, "deleted")]
    assert [(m.topic, m.event, m.data) for m in deleted.publish] == [(room, "event.deleted", {"id": str(eid)})]
