"""Posts: create/read/update/delete, visibility (public, team, private, event rooms), filters, mentions."""

from __future__ import annotations

import uuid

import httpx
import pytest
from sqlalchemy import func, select

from handlers.context import Message
from persistence.enums import ParticipantStatus
from persistence.models import Media, Notification, Post
from tests.api.postkit import make_event, make_guest, record_published
from tests.conftest import Account, Backend, MakeUser

POST_KEYS = {"id", "content", "visibility", "authorId", "eventId", "createdAt", "updatedAt", "author", "media",
             "authorName", "authorHandle", "authorImage"}
MEDIA_KEYS = {"id", "type", "title", "url", "duration", "aspectRatio", "fileSize", "mimeType", "thumbnailUrl",
              "mediaMetadata", "postId", "eventId", "createdById", "createdAt", "updatedAt", "status"}


@pytest.fixture
def published(backend: Backend, monkeypatch: pytest.MonkeyPatch) -> list[Message]:
    return record_published(backend, monkeypatch)


async def post(client: httpx.AsyncClient, who: Account, content: str = "hello", **extra: object) -> dict[str, object]:
    r = await client.post("/posts", json={"content": content, **extra}, headers=who.headers)
    assert r.status_code == 201, r.text
    body: dict[str, object] = r.json()
    return body


async def ids(client: httpx.AsyncClient, who: Account, **params: str | int) -> list[str]:
    r = await client.get("/posts", params=params, headers=who.headers)
    assert r.status_code == 200, r.text
    return [p["id"] for p in r.json()]


async def count(backend: Backend, model: type[Post] | type[Media] | type[Notification]) -> int:
    async with backend.state.sessionmaker() as db:
        return int(await db.scalar(select(func.count()).select_from(model)) or 0)


async def test_create_and_read_post_shape(client: httpx.AsyncClient, make_user: MakeUser) -> None:
    a, b = await make_user("ann"), await make_user("bob")
    # The frontend sends visibility null and both eventId and event_id (null).
    r = await client.post("/posts", json={"content": "  first post  ", "visibility": None, "eventId": None,
                                          "event_id": None}, headers={**a.headers, "X-Debug-Info": "x"})
    assert r.status_code == 201, r.text
    body = r.json()
    assert set(body) == POST_KEYS
    assert body["content"] == "first post" and body["visibility"] == "public"
    assert body["authorId"] == a.id and body["eventId"] is None and body["media"] == []
    assert body["author"] == {"id": a.id, "name": "Ann", "handle": a.handle, "profileImage": None}
    assert (body["authorName"], body["authorHandle"], body["authorImage"]) == ("Ann", a.handle, None)
    assert body["createdAt"].endswith("Z")
    r = await client.get(f"/posts/{body['id']}", headers=b.headers)
    assert r.status_code == 200 and r.json() == body
    assert await ids(client, b) == [body["id"]]


async def test_list_is_newest_first_and_paginated(client: httpx.AsyncClient, make_user: MakeUser) -> None:
    a = await make_user("ann")
    made = [(await post(client, a, f"p{i}"))["id"] for i in range(5)]
    newest_first = list(reversed(made))
    assert await ids(client, a) == newest_first
    assert await ids(client, a, skip=1, limit=2) == newest_first[1:3]
    assert await ids(client, a, offset=4, limit=10) == newest_first[4:]
    assert await ids(client, a, feed="true", limit=3) == newest_first[:3]
    r = await client.get("/posts", params={"limit": 0}, headers=a.headers)
    assert r.status_code == 422


async def test_private_post_is_author_only(client: httpx.AsyncClient, make_user: MakeUser) -> None:
    a, b = await make_user("ann"), await make_user("bob")
    private = await post(client, a, "secret", visibility="private")
    public = await post(client, a, "open")
    assert await ids(client, a) == [public["id"], private["id"]]
    assert await ids(client, b) == [public["id"]]
    assert await ids(client, b, author_id=a.id) == [public["id"]]
    r = await client.get(f"/posts/{private['id']}", headers=b.headers)
    assert r.status_code == 404 and "secret" not in r.text
    assert (await client.get(f"/posts/{private['id']}/media", headers=b.headers)).status_code == 404
    assert (await client.get(f"/posts/{private['id']}", headers=a.headers)).status_code == 200


async def test_team_post_without_event_is_author_only(client: httpx.AsyncClient, make_user: MakeUser) -> None:
    a, b = await make_user("ann"), await make_user("bob")
    team = await post(client, a, "team only", visibility="team")
    assert await ids(client, b) == []
    assert (await client.get(f"/posts/{team['id']}", headers=b.headers)).status_code == 404
    assert await ids(client, a) == [team["id"]]


async def test_event_room_posts_are_for_members_only(client: httpx.AsyncClient, make_user: MakeUser,
                                                     backend: Backend, published: list[Message]) -> None:
    owner, member, declined, outsider = [await make_user(n) for n in ("owner", "mem", "dec", "out")]
    event_id = await make_event(backend, owner, guests=((member, ParticipantStatus.INVITED),
                                                       (declined, ParticipantStatus.DECLINED)))
    room = await post(client, member, "in the room", eventId=event_id, event_id=event_id)
    team = await post(client, owner, "team in room", visibility="team", event_id=event_id)
    private = await post(client, owner, "mine", visibility="private", eventId=event_id)
    assert room["eventId"] == event_id
    assert [m.topic for m in published if m.event == "post.created"] == [f"event:{event_id}"] * 3
    created = next(m for m in published if m.event == "post.created")
    assert created.data["id"] == room["id"] and created.data["authorId"] == member.id

    assert set(await ids(client, member, event_id=event_id)) == {room["id"], team["id"]}
    assert set(await ids(client, owner, eventId=event_id)) == {room["id"], team["id"], private["id"]}
    for stranger in (outsider, declined):
        assert await ids(client, stranger) == []
        assert await ids(client, stranger, event_id=event_id) == []
        r = await client.get(f"/posts/{room['id']}", headers=stranger.headers)
        assert r.status_code == 404 and "in the room" not in r.text


async def test_event_page_reads_flat_author_fields(client: httpx.AsyncClient, make_user: MakeUser,
                                                  backend: Backend) -> None:
    """The original event page (useRoom.tsx) asks `GET /posts?event_id=…` and reads only `authorName`,
    `authorHandle` and `authorImage` on each post; without them every post says "Unknown User"."""
    owner, member = await make_user("owner"), await make_user("mem")
    event_id = await make_event(backend, owner, guests=((member, ParticipantStatus.CONFIRMED),))
    r = await client.patch("/users/me", json={"profileImage": "/uploads/me.png"}, headers=member.headers)
    assert r.status_code == 200, r.text
    await post(client, member, "from the member", eventId=event_id)
    await post(client, owner, "from the owner", eventId=event_id)
    r = await client.get("/posts", params={"event_id": event_id}, headers=owner.headers)
    assert r.status_code == 200, r.text
    seen = {(p["content"], p["authorName"], p["authorHandle"], p["authorImage"]) for p in r.json()
            if p["eventId"] == event_id}
    assert seen == {("from the member", "Mem", member.handle, "/uploads/me.png"),
                    ("from the owner", "Owner", owner.handle, None)}


async def test_posting_into_someone_elses_event_is_refused(client: httpx.AsyncClient, make_user: MakeUser,
                                                           backend: Backend) -> None:
    owner, outsider, declined = await make_user("owner"), await make_user("out"), await make_user("dec")
    event_id = await make_event(backend, owner, guests=((declined, ParticipantStatus.DECLINED),))
    for who in (outsider, declined):
        r = await client.post("/posts", json={"content": "let me in", "eventId": event_id}, headers=who.headers)
        assert r.status_code == 404, r.text
    r = await client.post("/posts", json={"content": "x", "eventId": str(uuid.uuid4())}, headers=owner.headers)
    assert r.status_code == 404
    assert await count(backend, Post) == 0


@pytest.mark.parametrize("body", [
    {},
    {"content": ""},
    {"content": "   "},
    {"content": "x" * 10_001},
    {"content": "ok", "visibility": "everyone"},
    {"content": "ok", "eventId": "not-a-uuid"},
    {"content": "ok", "eventId": "00000000-0000-4000-8000-000000000001",
     "event_id": "00000000-0000-4000-8000-000000000002"},
    {"content": 12},
])
async def test_create_rejects_bad_input(client: httpx.AsyncClient, make_user: MakeUser, backend: Backend,
                                        body: dict[str, object]) -> None:
    a = await make_user()
    r = await client.post("/posts", json=body, headers=a.headers)
    assert r.status_code == 422, r.text
    assert isinstance(r.json()["detail"], str)
    assert await count(backend, Post) == 0


async def test_content_at_the_limit_is_accepted(client: httpx.AsyncClient, make_user: MakeUser) -> None:
    a = await make_user()
    body = await post(client, a, "y" * 10_000, visibility="team")
    assert len(str(body["content"])) == 10_000 and body["visibility"] == "team"


async def test_author_filter_accepts_id_handle_and_guest_id(client: httpx.AsyncClient, make_user: MakeUser,
                                                            backend: Backend) -> None:
    a, b, g = await make_user("ann"), await make_user("bob"), await make_user("gus")
    pa, pb = await post(client, a, "by ann"), await post(client, b, "by bob")
    await make_guest(backend, g)
    pg = await post(client, g, "by guest")
    assert await ids(client, b, author_id=a.id) == [pa["id"]]
    assert await ids(client, b, authorId=a.handle) == [pa["id"]]
    assert await ids(client, b, author_id="@" + a.handle.upper()) == [pa["id"]]
    assert await ids(client, b, author_id="nobody-here") == []
    assert await ids(client, b, author_id=str(uuid.uuid4())) == []
    # guest-id is the calling guest; for a non-guest it is nobody (never "all guests").
    assert await ids(client, g, author_id="guest-id") == [pg["id"]]
    assert await ids(client, b, author_id="guest-id") == []
    assert pb["id"] not in await ids(client, g, author_id="guest-id")


async def test_update_by_author_is_partial(client: httpx.AsyncClient, make_user: MakeUser, backend: Backend,
                                           published: list[Message]) -> None:
    a = await make_user("ann")
    event_id = await make_event(backend, a)
    p = await post(client, a, "draft", visibility="team", eventId=event_id)
    r = await client.put(f"/posts/{p['id']}", json={"content": "final"}, headers=a.headers)
    assert r.status_code == 200, r.text
    assert r.json()["content"] == "final" and r.json()["visibility"] == "team"
    assert r.json()["updatedAt"] is not None
    r = await client.put(f"/posts/{p['id']}", json={"visibility": "public", "content": None}, headers=a.headers)
    assert r.json()["content"] == "final" and r.json()["visibility"] == "public"
    updates = [m for m in published if m.event == "post.updated"]
    assert [m.topic for m in updates] == [f"event:{event_id}"] * 2
    assert updates[-1].data["visibility"] == "public"


async def test_others_cannot_update_or_delete(client: httpx.AsyncClient, make_user: MakeUser,
                                              published: list[Message]) -> None:
    a, b = await make_user("ann"), await make_user("bob")
    public = await post(client, a, "public words")
    private = await post(client, a, "private words", visibility="private")
    for p, status in ((public, 403), (private, 404)):
        r = await client.put(f"/posts/{p['id']}", json={"content": "hijacked", "visibility": "public"},
                             headers=b.headers)
        assert r.status_code == status, r.text
        assert (await client.delete(f"/posts/{p['id']}", headers=b.headers)).status_code == status
        r = await client.get(f"/posts/{p['id']}", headers=a.headers)
        assert r.json()["content"] == p["content"] and r.json()["visibility"] == p["visibility"]
    assert not [m for m in published if m.event.startswith("post.")]


@pytest.mark.parametrize("body", [{"content": ""}, {"content": "x" * 10_001}, {"visibility": "world"},
                                  {"content": ["a"]}])
async def test_update_rejects_bad_input(client: httpx.AsyncClient, make_user: MakeUser,
                                        body: dict[str, object]) -> None:
    a = await make_user()
    p = await post(client, a, "keep me")
    r = await client.put(f"/posts/{p['id']}", json=body, headers=a.headers)
    assert r.status_code == 422, r.text
    assert (await client.get(f"/posts/{p['id']}", headers=a.headers)).json()["content"] == "keep me"


async def test_delete_post_takes_its_media(client: httpx.AsyncClient, make_user: MakeUser, backend: Backend,
                                           published: list[Message]) -> None:
    a = await make_user()
    event_id = await make_event(backend, a)
    p = await post(client, a, "with media", eventId=event_id)
    r = await client.post(f"/posts/{p['id']}/media", json={"type": "image", "url": "/image/cat.jpg"},
                          headers=a.headers)
    assert r.status_code == 201
    r = await client.delete(f"/posts/{p['id']}", headers=a.headers)
    assert r.status_code == 204 and r.content == b""
    assert (await client.get(f"/posts/{p['id']}", headers=a.headers)).status_code == 404
    assert (await client.delete(f"/posts/{p['id']}", headers=a.headers)).status_code == 404
    assert await count(backend, Media) == 0
    deleted = [m for m in published if m.event == "post.deleted"]
    assert len(deleted) == 1 and deleted[0].data == {"id": p["id"], "eventId": event_id}


async def test_my_posts_with_date_range(client: httpx.AsyncClient, make_user: MakeUser, backend: Backend) -> None:
    a, b = await make_user("ann"), await make_user("bob")
    mine = await post(client, a, "mine", visibility="private")
    await post(client, b, "theirs")
    r = await client.get("/posts/me", headers=a.headers)
    assert r.status_code == 200 and [p["id"] for p in r.json()] == [mine["id"]]
    day = str(mine["createdAt"])[:10]
    for params, expected in (({"start_date": day, "end_date": day}, [mine["id"]]),
                             ({"startDate": "2000-01-01", "endDate": "2000-01-02"}, []),
                             ({"start_date": f"{day}T00:00:00Z"}, [mine["id"]]),
                             ({"end_date": "2000-01-01T00:00:00+02:00"}, [])):
        r = await client.get("/posts/me", params=params, headers=a.headers)
        assert r.status_code == 200, r.text
        assert [p["id"] for p in r.json()] == expected, params
    r = await client.get("/posts/me", params={"start_date": "2020-02-02", "end_date": "2020-01-01"},
                         headers=a.headers)
    assert r.status_code == 422
    r = await client.get("/posts/me", params={"start_date": "yesterday"}, headers=a.headers)
    assert r.status_code == 422


async def test_my_posts_at_the_ends_of_the_calendar(client: httpx.AsyncClient, make_user: MakeUser) -> None:
    """Found by the REST fuzz (tests/fuzz/test_rest.py): the day after 9999-12-31, and moments that leave the
    calendar on the way to UTC, overflowed into a 500."""
    a = await make_user()
    mine = await post(client, a, "mine", visibility="private")
    for params in ({"end_date": "9999-12-31"}, {"end_date": "9999-12-31T23:59:59.999999Z"},
                   {"start_date": "0001-01-01", "end_date": "9999-12-31"}):
        r = await client.get("/posts/me", params=params, headers=a.headers)
        assert r.status_code == 200 and [p["id"] for p in r.json()] == [mine["id"]], (params, r.text)
    for params in ({"start_date": "9999-12-31T23:59:59-23:59"}, {"end_date": "0001-01-01T00:00:01+23:59"}):
        r = await client.get("/posts/me", params=params, headers=a.headers)
        assert (r.status_code, r.json()["code"]) == (422, "invalid"), (params, r.text)


async def test_attach_media_by_url(client: httpx.AsyncClient, make_user: MakeUser, backend: Backend) -> None:
    a, b = await make_user("ann"), await make_user("bob")
    p = await post(client, a, "look")
    r = await client.post(f"/posts/{p['id']}/media", headers=a.headers,
                          json={"type": "video", "url": "https://cdn.example.com/v.mp4", "title": "clip",
                                "fileSize": 999, "mimeType": "video/mp4", "duration": "3:00"})
    assert r.status_code == 201, r.text
    m = r.json()
    assert set(m) == MEDIA_KEYS
    assert m["type"] == "video" and m["postId"] == p["id"] and m["createdById"] == a.id and m["status"] == "ready"
    # Nothing the server did not measure is claimed.
    assert m["fileSize"] is None and m["mimeType"] is None and m["duration"] is None and m["mediaMetadata"] == {}
    r = await client.get(f"/posts/{p['id']}/media", headers=b.headers)
    assert r.status_code == 200 and [x["id"] for x in r.json()] == [m["id"]]
    assert [x["id"] for x in (await client.get(f"/posts/{p['id']}", headers=b.headers)).json()["media"]] == [m["id"]]
    assert (await client.get(f"/media/{m['id']}", headers=b.headers)).json()["url"] == "https://cdn.example.com/v.mp4"


@pytest.mark.parametrize("body", [
    {"type": "document", "url": "/x.pdf"},
    {"type": "image"},
    {"type": "image", "url": "javascript:alert(1)"},
    {"type": "image", "url": "//evil.example.com/x.png"},
    {"type": "image", "url": "/a b.png"},
])
async def test_attach_media_rejects_bad_input(client: httpx.AsyncClient, make_user: MakeUser, backend: Backend,
                                              body: dict[str, object]) -> None:
    a = await make_user()
    p = await post(client, a)
    r = await client.post(f"/posts/{p['id']}/media", json=body, headers=a.headers)
    assert r.status_code == 422, r.text
    assert await count(backend, Media) == 0


async def test_only_the_author_attaches_media(client: httpx.AsyncClient, make_user: MakeUser,
                                              backend: Backend) -> None:
    a, b = await make_user("ann"), await make_user("bob")
    public, private = await post(client, a, "pub"), await post(client, a, "priv", visibility="private")
    for p, status in ((public, 403), (private, 404)):
        r = await client.post(f"/posts/{p['id']}/media", json={"type": "image", "url": "/i.png"},
                              headers=b.headers)
        assert r.status_code == status
    assert await count(backend, Media) == 0


async def test_mentions_notify_those_who_can_see(client: httpx.AsyncClient, make_user: MakeUser,
                                                 backend: Backend, published: list[Message]) -> None:
    a, b, c = await make_user("ann"), await make_user("bob"), await make_user("cat")
    p = await post(client, a, f"hi @{b.handle.upper()} and @{a.handle}, mail {c.handle}@example.com @nobody.")
    r = await client.get("/notifications", headers=b.headers)
    items = r.json()["items"]
    assert len(items) == 1 and items[0]["type"] == "mention" and items[0]["referenceId"] == p["id"]
    assert items[0]["referenceType"] == "post" and items[0]["senderId"] == a.id
    assert items[0]["sender"]["handle"] == a.handle and items[0]["metadata"]["postId"] == p["id"]
    assert [m.topic for m in published if m.event == "notification.created"] == [f"user:{b.id}"]
    # The author and an e-mail address are not mentions.
    assert (await client.get("/notifications/unread-count", headers=a.headers)).json() == 0
    assert (await client.get("/notifications/unread-count", headers=c.headers)).json() == 0

    # A private post, and a room post for a non-member, notify nobody.
    await post(client, a, f"@{b.handle} secret", visibility="private")
    event_id = await make_event(backend, a, guests=((c, ParticipantStatus.CONFIRMED),))
    await post(client, a, f"@{b.handle} @{c.handle} room", eventId=event_id)
    assert (await client.get("/notifications/unread-count", headers=b.headers)).json() == 1
    assert (await client.get("/notifications/unread-count", headers=c.headers)).json() == 1

    # An edit notifies only the newly mentioned.
    r = await client.put(f"/posts/{p['id']}", json={"content": f"@{b.handle} and now @{c.handle}"},
                         headers=a.headers)
    assert r.status_code == 200
    assert (await client.get("/notifications/unread-count", headers=b.headers)).json() == 1
    assert (await client.get("/notifications/unread-count", headers=c.headers)).json() == 2


async def test_unknown_post_ids(client: httpx.AsyncClient, make_user: MakeUser) -> None:
    a = await make_user()
    missing = str(uuid.uuid4())
    assert (await client.get(f"/posts/{missing}", headers=a.headers)).status_code == 404
    assert (await client.put(f"/posts/{missing}", json={"content": "x"}, headers=a.headers)).status_code == 404
    assert (await client.get("/posts/not-a-uuid", headers=a.headers)).status_code == 422
