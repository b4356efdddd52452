"""The join matrix of `/ws`: every topic kind by every role, in process, on the world of tests/access.

Expected answers come from docs/realtime.md §4 ("Topics and who may join") and the contract
(shared/design/realtime-protocol.md): event rooms are their members', a live session its owner's and the linked
event's members', a user topic that user's only; events and sessions the caller may not see answer `not_found`
exactly like missing ones, another user's topic `forbidden`. Without a valid token the connection closes 4001
before anything is joined. A topic kind in the code without an entry here fails the suite."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from channels import topics
from handlers import realtime
from tests.access.inprocess_ws import websocket
from tests.access.world import ROLES, Role, World

JOINED = "joined"
UNAUTHENTICATED = 4001  # the close code: no (valid) token


def roles(anonymous: int, outsider: str, participant: str, organizer: str, creator: str,
          admin: str) -> dict[Role, str | int]:
    return dict(zip(ROLES, (anonymous, outsider, participant, organizer, creator, admin), strict=True))


@dataclass(frozen=True)
class JoinCase:
    topic: Callable[[World], str]
    expect: dict[Role, str | int]


def _id(world: World, key: str) -> uuid.UUID:
    return uuid.UUID(world.ids[key])


JOINS: dict[str, JoinCase] = {
    # the event's room: its creator and its participants who have not declined
    "event": JoinCase(lambda w: topics.for_event(_id(w, "event_id")),
                      roles(UNAUTHENTICATED, "not_found", JOINED, JOINED, JOINED, "not_found")),
    # the creator's live session about the event: its owner, and the members of the linked event
    "live": JoinCase(lambda w: topics.for_live(_id(w, "context_id")),
                     roles(UNAUTHENTICATED, "not_found", JOINED, JOINED, JOINED, "not_found")),
    # the creator's own topic: that user only, administrators included
    "user": JoinCase(lambda w: topics.for_user(_id(w, "user_id")),
                     roles(UNAUTHENTICATED, "forbidden", "forbidden", "forbidden", JOINED, "forbidden")),
}


def kinds_in_code() -> set[str]:
    """The kinds the server parses (handlers.realtime) and the kinds it names topics of (channels.topics)."""
    named = {name.removeprefix("for_") for name in vars(topics) if name.startswith("for_")}
    return set(realtime._KINDS) | named


def test_every_topic_kind_has_an_entry_and_every_entry_a_kind() -> None:
    assert set(JOINS) == kinds_in_code()
    for kind, case in JOINS.items():
        assert set(case.expect) == set(ROLES), kind


async def _join_as(world: World, role: Role, topic: str) -> str:
    async with websocket(world.app) as ws:
        await ws.send({"op": "auth", "ref": "1", "token": world.people[role].token})
        auth = await ws.reply("1")
        assert auth["ok"] is True and auth["data"]["userId"] == world.people[role].id, auth
        await ws.send({"op": "join", "ref": "2", "topic": topic})
        reply = await ws.reply("2")
        if not reply["ok"]:
            code: str = reply["error"]["code"]
            return code
        data = reply["data"]
        assert isinstance(data["offset"], int) and data["epoch"] and data["recovered"] is False, reply
        assert world.people[role].id in data["presence"], reply
        return JOINED


async def _anonymous(world: World, topic: str) -> list[int | str]:
    """Every way of arriving without a valid token: the join as first frame, an `auth` frame with a bad token,
    a bad `Authorization` header on the upgrade. Each must end in the close code, and nothing joined."""
    codes: list[int | str] = []
    async with websocket(world.app) as ws:
        await ws.send({"op": "join", "ref": "1", "topic": topic})
        codes.append(await ws.close_code())
    async with websocket(world.app) as ws:
        await ws.send({"op": "auth", "ref": "1", "token": "not.a.token"})
        await ws.send({"op": "join", "ref": "2", "topic": topic})
        codes.append(await ws.close_code())
    async with websocket(world.app, {"Authorization": "Bearer not.a.token"}) as ws:
        await ws.send({"op": "join", "ref": "1", "topic": topic})
        codes.append(await ws.close_code())
    return codes


@pytest.mark.parametrize("kind", sorted(JOINS))
async def test_join(world: World, kind: str) -> None:
    case = JOINS[kind]
    topic = case.topic(world)
    wrong: list[str] = []
    for role in ROLES:
        want = case.expect[role]
        if role is Role.ANONYMOUS:
            got = await _anonymous(world, topic)
            if got != [want] * len(got):
                wrong.append(f"{topic} as anonymous: {got} (expected close {want} each time)")
            continue
        answer = await _join_as(world, role, topic)
        if answer != want:
            wrong.append(f"{topic} as {role.value}: {answer} (expected {want})")
    assert not wrong, "\n".join(wrong)
