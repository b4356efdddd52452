"""The feed over REST: scoping, real timeAgo, keyset pagination that covers everything exactly once."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime, timedelta

import httpx

from handlers.clock import time_ago
from handlers.posts.feed import decode_cursor, encode_cursor
from persistence.enums import EventStatus, ParticipantStatus
from tests.api.factories_insights import make_event, make_post, make_status_log
from tests.conftest import Backend, MakeUser


def test_time_ago() -> None:
    t = datetime(2025, 1, 10, 12, 0, tzinfo=UTC)
    assert time_ago(t, t + timedelta(seconds=30)) == "now"
    assert time_ago(t, t + timedelta(minutes=5, seconds=10)) == "5m"
    assert time_ago(t, t + timedelta(hours=2, minutes=59)) == "2h"
    assert time_ago(t, t + timedelta(days=3)) == "3d"
    assert time_ago(t, t + timedelta(days=15)) == "2w"
    assert time_ago(t, t + timedelta(days=100)) == "3mo"
    assert time_ago(t, t + timedelta(days=800)) == "2y"
    assert time_ago(t, t - timedelta(minutes=1)) == "now"


def test_cursor_round_trip() -> None:
    t, i = datetime(2025, 1, 1, 1, 2, 3, 456789, tzinfo=UTC), uuid.uuid4()
    assert decode_cursor(encode_cursor(t, i)) == (t, i)


async def _walk(client: httpx.AsyncClient, url: str, headers: dict[str, str], limit: int) -> list[str]:
    seen: list[str] = []
    cursor = None
    for _ in range(100):
        params: dict[str, str | int] = {"limit": limit}
        if cursor:
            params["cursor"] = cursor
        r = await client.get(url, headers=headers, params=params)
        assert r.status_code == 200, r.text
        body = r.json()
        assert len(body["items"]) <= limit
        seen += [item["id"] for item in body["items"]]
        if not body["hasMore"]:
            assert body["nextCursor"] is None
            return seen
        cursor = body["nextCursor"]
    raise AssertionError("pagination did not end")


async def test_home_feed_scoping_and_shape(client: httpx.AsyncClient, make_user: MakeUser, backend: Backend) -> None:
    a, b, c = await make_user("alice"), await make_user("bob"), await make_user("carol")
    t0 = datetime.now(UTC)
    shared = await make_event(backend, b.id, "Shared", participants=[(a.id, "participant",
                                                                      ParticipantStatus.CONFIRMED)])
    hidden = await make_event(backend, c.id, "Hidden")
    visible = {
        await make_post(backend, b.id, "b public", created_at=t0 - timedelta(minutes=5, seconds=10)),
        await make_post(backend, a.id, "a private", visibility="private", created_at=t0 - timedelta(hours=2)),
        await make_post(backend, b.id, "team in shared", visibility="team", event_id=shared,
                        created_at=t0 - timedelta(days=3)),
        await make_post(backend, c.id, "c public", created_at=t0 - timedelta(days=4)),
        await make_status_log(backend, shared, b.id, EventStatus.EXECUTION, previous=EventStatus.PLANNING,
                              created_at=t0 - timedelta(minutes=1, seconds=5)),
    }
    invisible = {
        await make_post(backend, b.id, "b private", visibility="private"),
        await make_post(backend, c.id, "team in hidden", visibility="team", event_id=hidden),
        await make_post(backend, c.id, "team without event", visibility="team"),
        await make_status_log(backend, hidden, c.id, EventStatus.DONE),
        # A room's posts, public or not, are for the room's members.
        await make_post(backend, c.id, "public in hidden room", event_id=hidden),
    }
    r = await client.get("/feed", headers=a.headers)
    assert r.status_code == 200, r.text
    body = r.json()
    ids = [item["id"] for item in body["items"]]
    assert set(ids) == {str(v) for v in visible} and not set(ids) & {str(v) for v in invisible}
    assert body["hasMore"] is False and body["nextCursor"] is None
    stamps = [item["createdAt"] for item in body["items"]]
    assert stamps == sorted(stamps, reverse=True)
    by_content = {i["post"]["content"]: i for i in body["items"] if i["type"] == "post"}
    first = by_content["b public"]
    assert first["timeAgo"] == "5m" and first["author"]["handle"] == b.handle and first["authorId"] == b.id
    assert first["post"]["media"] == [] and first["post"]["visibility"] == "public"
    assert by_content["a private"]["timeAgo"] == "2h" and by_content["team in shared"]["timeAgo"] == "3d"
    status = next(i for i in body["items"] if i["type"] == "activity")
    assert status["activityType"] == "status_change" and status["timeAgo"] == "1m"
    assert status["targetId"] == str(shared) and status["targetType"] == "event"
    assert status["feedMetadata"] == {"eventId": str(shared), "eventTitle": "Shared", "previousStatus": "Planning",
                                      "newStatus": "Execution"}
    assert "Shared" in status["description"] and "Execution" in status["description"]


async def test_pagination_covers_everything_once(client: httpx.AsyncClient, make_user: MakeUser,
                                                 backend: Backend) -> None:
    a = await make_user()
    event = await make_event(backend, a.id, "Mine")
    t0 = datetime.now(UTC) - timedelta(hours=1)
    expected = set()
    for i in range(13):
        # Several items share a timestamp, across both kinds, to exercise the id tie-break.
        at = t0 - timedelta(minutes=i // 3)
        expected.add(str(await make_post(backend, a.id, f"p{i}", created_at=at)))
        if i % 2:
            expected.add(str(await make_status_log(backend, event, a.id, EventStatus.REVIEW, created_at=at)))
    for limit in (1, 2, 5, 7, 50):
        seen = await _walk(client, "/feed", a.headers, limit)
        assert len(seen) == len(set(seen)) == len(expected), limit
        assert set(seen) == expected
    # An item added at the top after the first page does not disturb the walk that is under way.
    r = await client.get("/feed", headers=a.headers, params={"limit": 4})
    cursor = r.json()["nextCursor"]
    await make_post(backend, a.id, "newest")
    rest: list[str] = []
    while cursor:
        page = (await client.get("/feed", headers=a.headers, params={"limit": 4, "cursor": cursor})).json()
        rest += [i["id"] for i in page["items"]]
        cursor = page["nextCursor"]
    first = [i["id"] for i in r.json()["items"]]
    assert len(first + rest) == len(set(first + rest)) == len(expected) and set(first + rest) == expected


async def test_user_event_and_activity_feeds(client: httpx.AsyncClient, make_user: MakeUser,
                                             backend: Backend) -> None:
    a, b, c = await make_user("a"), await make_user("b"), await make_user("c")
    shared = await make_event(backend, a.id, "Shared", participants=[(b.id, "participant",
                                                                      ParticipantStatus.CONFIRMED)])
    foreign = await make_event(backend, c.id, "Foreign")
    a_post = await make_post(backend, a.id, "a public")
    b_team = await make_post(backend, b.id, "b team", visibility="team", event_id=shared)
    b_private = await make_post(backend, b.id, "b private", visibility="private", event_id=shared)
    c_public = await make_post(backend, c.id, "c public")
    b_log = await make_status_log(backend, shared, b.id, EventStatus.PLANNING)
    await make_status_log(backend, foreign, c.id, EventStatus.DONE)

    async def ids(url: str, acct: object = a) -> set[str]:
        r = await client.get(url, headers=acct.headers)  # type: ignore[attr-defined]
        assert r.status_code == 200, r.text
        return {i["id"] for i in r.json()["items"]}

    assert await ids(f"/feed/user/{b.id}") == {str(b_team), str(b_log)}
    assert await ids(f"/feed/user/{c.id}") == {str(c_public)}
    assert await ids(f"/feed/event/{shared}") == {str(b_team), str(b_log)}
    assert await ids(f"/feed/event/{shared}", b) == {str(b_team), str(b_private), str(b_log)}
    assert await ids("/feed/activity") == {str(a_post), str(b_log)}
    assert (await client.get(f"/feed/event/{foreign}", headers=a.headers)).status_code == 404
    assert (await client.get(f"/feed/event/{uuid.uuid4()}", headers=a.headers)).status_code == 404
    assert (await client.get(f"/feed/user/{uuid.uuid4()}", headers=a.headers)).status_code == 404


async def test_bad_cursor_and_limit_are_422(client: httpx.AsyncClient, make_user: MakeUser) -> None:
    a = await make_user()
    junk = base64.urlsafe_b64encode(b'{"not": "a list"}').decode()
    for params in ({"cursor": "%%%"}, {"cursor": "abc"}, {"cursor": junk}, {"limit": 0}, {"limit": "many"}):
        for url in ("/feed", "/feed/activity", f"/feed/user/{a.id}"):
            r = await client.get(url, headers=a.headers, params=params)
            assert r.status_code == 422, (url, params, r.text)
            assert isinstance(r.json()["detail"], str)
