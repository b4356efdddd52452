"""Media: uploads typed by content, size limits, storage cleanup, visibility, deletion, profile images."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime

import httpx
import pytest
from sqlalchemy import func, select

from handlers.context import Context, Message
from handlers.media.records import stored_files_of_event
from persistence.enums import ParticipantStatus
from persistence.models import Media, User
from tests.api.postkit import chunks, make_event, multipart, png, record_published, stored_files, wav
from tests.conftest import Account, Backend, MakeUser

UPLOAD_KEYS = {"id", "url", "type", "title", "mimeType", "fileSize", "status"}


@pytest.fixture
def published(backend: Backend, monkeypatch: pytest.MonkeyPatch) -> list[Message]:
    return record_published(backend, monkeypatch)


@pytest.fixture
def small_limit(backend: Backend, monkeypatch: pytest.MonkeyPatch) -> int:
    limit = 2048
    monkeypatch.setattr(backend.state, "limits", dataclasses.replace(backend.state.limits, max_upload_bytes=limit))
    return limit


async def upload(client: httpx.AsyncClient, who: Account, data: bytes, *, filename: str = "pic.png",
                 content_type: str = "image/png", path: str = "/media/upload",
                 **fields: str) -> httpx.Response:
    return await client.post(path, files={"file": (filename, data, content_type)}, data=fields,
                             headers=who.headers)


async def media_rows(backend: Backend) -> int:
    async with backend.state.sessionmaker() as db:
        return int(await db.scalar(select(func.count()).select_from(Media)) or 0)


async def test_upload_png_is_stored_and_served(client: httpx.AsyncClient, make_user: MakeUser,
                                               backend: Backend) -> None:
    a = await make_user()
    data = png()
    r = await upload(client, a, data, title="Sunset")
    assert r.status_code == 201, r.text
    body = r.json()
    assert set(body) == UPLOAD_KEYS
    assert body["type"] == "image" and body["mimeType"] == "image/png" and body["fileSize"] == len(data)
    assert body["title"] == "Sunset"
    assert body["url"].startswith("/uploads/media/") and body["url"].endswith(".png")
    assert body["status"] == "processing"  # the media.process job measures it (run in-process here)
    served = await client.get(body["url"])
    assert served.status_code == 200 and served.content == data
    await backend.state.jobs.queue.broker.join()  # type: ignore[attr-defined]  # the memory:// broker
    r = await client.get(f"/media/{body['id']}", headers=a.headers)
    assert r.status_code == 200
    m = r.json()
    assert m["status"] == "ready" and m["fileSize"] == len(data) and m["mimeType"] == "image/png"
    # Only measured facts: the real dimensions, no invented duration or codec.
    assert m["mediaMetadata"]["width"] == 2 and m["mediaMetadata"]["height"] == 2
    assert m["duration"] is None and m["aspectRatio"] == "1:1"
    assert m["thumbnailUrl"].startswith("/uploads/media/derived/")
    assert m["postId"] is None and m["createdById"] == a.id


async def test_type_comes_from_the_bytes_not_the_client(client: httpx.AsyncClient, make_user: MakeUser) -> None:
    a = await make_user()
    r = await upload(client, a, png(), filename="song.mp3", content_type="audio/mpeg")
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["type"] == "image" and body["mimeType"] == "image/png" and body["url"].endswith(".png")
    assert body["title"] == "song.mp3"  # the filename is only a default title
    r = await upload(client, a, wav(), filename="photo.jpg", content_type="image/jpeg")
    assert r.status_code == 201, r.text
    assert r.json()["type"] == "audio" and r.json()["mimeType"] == "audio/wav" and r.json()["url"].endswith(".wav")


@pytest.mark.parametrize("data", [
    b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n",
    b"<html><script>alert(1)</script></html>",
    b"MZ\x90\x00\x03\x00\x00\x00",
    b"\x89PNX\r\n\x1a\n" + b"\x00" * 20,
])
async def test_disallowed_bytes_are_415_with_nothing_kept(client: httpx.AsyncClient, make_user: MakeUser,
                                                          backend: Backend, data: bytes) -> None:
    a = await make_user()
    before = stored_files(backend)
    r = await upload(client, a, data, filename="cat.png", content_type="image/png")
    assert r.status_code == 415, r.text
    assert isinstance(r.json()["detail"], str)
    assert await media_rows(backend) == 0 and stored_files(backend) == before


async def test_declared_type_must_match_the_bytes(client: httpx.AsyncClient, make_user: MakeUser,
                                                  backend: Backend) -> None:
    a = await make_user()
    r = await upload(client, a, png(), type="video")
    assert r.status_code == 415
    assert await media_rows(backend) == 0


async def test_too_large_upload_is_413_with_nothing_kept(client: httpx.AsyncClient, make_user: MakeUser,
                                                         backend: Backend, small_limit: int) -> None:
    a = await make_user()
    before = stored_files(backend)
    big = png() + b"\x00" * small_limit  # a real PNG signature, padded past the limit
    r = await upload(client, a, big)
    assert r.status_code == 413, r.text
    # Far past the limit: refused on Content-Length before the body is read.
    r = await upload(client, a, big * 200)
    assert r.status_code == 413
    r = await upload(client, a, big, path="/media/upload/profile")
    assert r.status_code == 413
    assert await media_rows(backend) == 0 and stored_files(backend) == before
    # Exactly at the limit is fine.
    r = await upload(client, a, png() + b"\x00" * (small_limit - len(png())))
    assert r.status_code == 201, r.text
    assert r.json()["fileSize"] == small_limit


async def test_streamed_upload_without_length_is_cut_off(client: httpx.AsyncClient, make_user: MakeUser,
                                                         backend: Backend, small_limit: int) -> None:
    a = await make_user()
    before = stored_files(backend)
    body, ctype = multipart({"title": "big"}, ("big.png", png() + b"\x00" * (small_limit * 300), "image/png"))
    r = await client.post("/media/upload", content=chunks(body), headers={**a.headers, "content-type": ctype})
    assert "content-length" not in r.request.headers
    assert r.status_code == 413, r.text
    assert await media_rows(backend) == 0 and stored_files(backend) == before
    body, ctype = multipart({"title": "small"}, ("small.png", png(), "image/png"))
    r = await client.post("/media/upload", content=chunks(body, 7), headers={**a.headers, "content-type": ctype})
    assert r.status_code == 201, r.text
    assert r.json()["title"] == "small"


async def test_malformed_uploads(client: httpx.AsyncClient, make_user: MakeUser, backend: Backend) -> None:
    a = await make_user()
    r = await client.post("/media/upload", json={"file": "x"}, headers=a.headers)
    assert r.status_code == 415
    r = await client.post("/media/upload", data={"title": "no file"}, files={"other": ("a.png", png())},
                          headers=a.headers)
    assert r.status_code == 422
    r = await client.post("/media/upload", content=b"--nope\r\ngarbage",
                          headers={**a.headers, "content-type": "multipart/form-data; boundary=zzz"})
    assert (r.status_code, r.json()["code"]) == (400, "bad_request"), r.text
    r = await client.post("/media/upload", content=b"x", headers={**a.headers, "content-type": "multipart/form-data"})
    assert r.status_code == 400
    r = await client.post("/media/upload", headers=a.headers,
                          files=[("file", ("a.png", png(), "image/png")), ("file", ("b.png", png(), "image/png"))])
    assert r.status_code == 400
    r = await upload(client, a, b"")
    assert r.status_code == 422
    r = await upload(client, a, png(), postId="not-a-uuid")
    assert r.status_code == 422
    r = await upload(client, a, png(), title="t" * 301)
    assert r.status_code == 422
    assert await media_rows(backend) == 0


async def test_upload_onto_post_and_event(client: httpx.AsyncClient, make_user: MakeUser, backend: Backend,
                                          published: list[Message]) -> None:
    a, b, outsider = await make_user("ann"), await make_user("bob"), await make_user("out")
    event_id = await make_event(backend, a, guests=((b, ParticipantStatus.CONFIRMED),))
    p = (await client.post("/posts", json={"content": "room", "eventId": event_id}, headers=a.headers)).json()
    r = await upload(client, a, png(), postId=p["id"])
    assert r.status_code == 201, r.text
    m = (await client.get(f"/media/{r.json()['id']}", headers=b.headers)).json()
    assert m["postId"] == p["id"] and m["eventId"] == event_id
    assert [x["id"] for x in (await client.get(f"/posts/{p['id']}", headers=b.headers)).json()["media"]] == [m["id"]]
    assert [(x.event, x.topic) for x in published[-2:]] == [("post.updated", f"event:{event_id}"),
                                                           ("media.processing", f"event:{event_id}")]
    # Event media without a post: members see it, others do not.
    r = await upload(client, b, wav(), event_id=event_id, description="standup recording", visibility="team")
    assert r.status_code == 201, r.text
    got = await client.get(f"/media/{r.json()['id']}", headers=a.headers)
    assert got.status_code == 200 and got.json()["mediaMetadata"]["description"] == "standup recording"
    assert published[-1].event == "media.processing" and published[-1].data["id"] == r.json()["id"]
    assert (await client.get(f"/media/{r.json()['id']}", headers=outsider.headers)).status_code == 404
    assert (await client.get(f"/media/{m['id']}", headers=outsider.headers)).status_code == 404


async def test_upload_onto_others_post_or_event_keeps_nothing(client: httpx.AsyncClient, make_user: MakeUser,
                                                              backend: Backend) -> None:
    a, b = await make_user("ann"), await make_user("bob")
    public = (await client.post("/posts", json={"content": "pub"}, headers=a.headers)).json()
    private = (await client.post("/posts", json={"content": "p", "visibility": "private"}, headers=a.headers)).json()
    event_id = await make_event(backend, a)
    before = stored_files(backend)
    assert (await upload(client, b, png(), postId=public["id"])).status_code == 403
    assert (await upload(client, b, png(), post_id=private["id"])).status_code == 404
    assert (await upload(client, b, png(), eventId=event_id)).status_code == 404
    other_event = await make_event(backend, a)
    assert (await upload(client, a, png(), postId=public["id"], eventId=other_event)).status_code == 422
    assert await media_rows(backend) == 0 and stored_files(backend) == before


async def test_attaching_an_upload_reuses_its_record(client: httpx.AsyncClient, make_user: MakeUser,
                                                     backend: Backend) -> None:
    a, b = await make_user("ann"), await make_user("bob")
    up = (await upload(client, a, png(), filename="x.png")).json()
    # Not attached yet: only its creator sees it.
    assert (await client.get(f"/media/{up['id']}", headers=b.headers)).status_code == 404
    p = (await client.post("/posts", json={"content": "pic"}, headers=a.headers)).json()
    # The frontend sends the browser's type/size claims; the measured record wins.
    r = await client.post(f"/posts/{p['id']}/media", headers=a.headers,
                          json={"type": "video", "url": up["url"], "title": "Cat", "fileSize": 1, "mimeType": "x/y"})
    assert r.status_code == 201, r.text
    m = r.json()
    assert m["id"] == up["id"] and m["type"] == "image" and m["fileSize"] == up["fileSize"]
    assert m["mimeType"] == "image/png" and m["title"] == "Cat" and m["postId"] == p["id"]
    assert await media_rows(backend) == 1
    assert (await client.get(f"/media/{up['id']}", headers=b.headers)).status_code == 200
    # Someone else linking the same URL gets their own row, not the upload.
    pb = (await client.post("/posts", json={"content": "mine"}, headers=b.headers)).json()
    r = await client.post(f"/posts/{pb['id']}/media", json={"type": "image", "url": up["url"]}, headers=b.headers)
    assert r.status_code == 201 and r.json()["id"] != up["id"] and r.json()["fileSize"] is None


async def test_media_follows_post_visibility(client: httpx.AsyncClient, make_user: MakeUser) -> None:
    a, b = await make_user("ann"), await make_user("bob")
    private = (await client.post("/posts", json={"content": "p", "visibility": "private"}, headers=a.headers)).json()
    m = (await client.post(f"/posts/{private['id']}/media", json={"type": "image", "url": "/i.png"},
                           headers=a.headers)).json()
    r = await client.get(f"/media/{m['id']}", headers=b.headers)
    assert r.status_code == 404 and "/i.png" not in r.text
    assert (await client.get(f"/media/{m['id']}", headers=a.headers)).status_code == 200
    assert (await client.get(f"/media/{uuid.uuid4()}", headers=a.headers)).status_code == 404


async def test_delete_media_removes_row_then_file(client: httpx.AsyncClient, make_user: MakeUser,
                                                  backend: Backend) -> None:
    a, b = await make_user("ann"), await make_user("bob")
    p = (await client.post("/posts", json={"content": "pub"}, headers=a.headers)).json()
    up = (await upload(client, a, png(), postId=p["id"])).json()
    assert (await client.get(up["url"])).status_code == 200
    # Another user who can see it may not delete it; one who cannot gets 404.
    assert (await client.delete(f"/media/{up['id']}", headers=b.headers)).status_code == 403
    private_up = (await upload(client, a, png())).json()
    assert (await client.delete(f"/media/{private_up['id']}", headers=b.headers)).status_code == 404
    assert await media_rows(backend) == 2 and (await client.get(up["url"])).status_code == 200

    r = await client.delete(f"/media/{up['id']}", headers=a.headers)
    assert r.status_code == 200 and set(r.json()) == {"message"}
    assert (await client.get(f"/media/{up['id']}", headers=a.headers)).status_code == 404
    assert (await client.get(up["url"])).status_code == 404
    assert (await client.get(f"/posts/{p['id']}", headers=a.headers)).json()["media"] == []


async def test_deleting_a_post_removes_its_uploaded_files(client: httpx.AsyncClient, make_user: MakeUser,
                                                          backend: Backend) -> None:
    a = await make_user()
    p = (await client.post("/posts", json={"content": "pub"}, headers=a.headers)).json()
    up = (await upload(client, a, png(), postId=p["id"])).json()
    keep = (await upload(client, a, png())).json()
    assert (await client.delete(f"/posts/{p['id']}", headers=a.headers)).status_code == 204
    assert (await client.get(up["url"])).status_code == 404
    assert (await client.get(keep["url"])).status_code == 200
    assert await media_rows(backend) == 1


async def profile_image(backend: Backend, who: Account) -> str | None:
    async with backend.state.sessionmaker() as db:
        user = await db.get(User, uuid.UUID(who.id))
        assert user is not None
        return user.profile_image


async def test_profile_image_upload(client: httpx.AsyncClient, make_user: MakeUser, backend: Backend) -> None:
    a = await make_user()
    r = await upload(client, a, png(), path="/media/upload/profile", filename="me.gif", content_type="image/gif")
    assert r.status_code == 200, r.text
    first = r.json()
    assert set(first) == {"profileImage", "url"} and first["profileImage"] == first["url"]
    assert first["url"].startswith("/uploads/profile/") and first["url"].endswith(".png")
    assert await profile_image(backend, a) == first["url"]
    assert (await client.get(first["url"])).content == png()
    # A new image replaces the old one, whose file goes.
    second = (await upload(client, a, png(3, 1), path="/media/upload/profile")).json()
    assert await profile_image(backend, a) == second["url"]
    assert (await client.get(first["url"])).status_code == 404
    assert (await client.get(second["url"])).status_code == 200


async def test_profile_image_must_be_an_image(client: httpx.AsyncClient, make_user: MakeUser,
                                              backend: Backend) -> None:
    a = await make_user()
    before = stored_files(backend)
    for data in (wav(), b"GIF8 not really"):
        r = await upload(client, a, data, path="/media/upload/profile", filename="me.png", content_type="image/png")
        assert r.status_code == 415, r.text
    assert await profile_image(backend, a) is None and stored_files(backend) == before


async def test_stored_files_of_an_event(client: httpx.AsyncClient, make_user: MakeUser, backend: Backend) -> None:
    a = await make_user()
    event_id = await make_event(backend, a)
    p = (await client.post("/posts", json={"content": "room", "eventId": event_id}, headers=a.headers)).json()
    on_post = (await upload(client, a, png(), postId=p["id"])).json()
    on_event = (await upload(client, a, wav(), eventId=event_id)).json()
    await upload(client, a, png())  # elsewhere
    await backend.state.jobs.queue.broker.join()  # type: ignore[attr-defined]  # the memory:// broker
    thumb = (await client.get(f"/media/{on_post['id']}", headers=a.headers)).json()["thumbnailUrl"]
    assert thumb.startswith("/uploads/media/derived/")
    async with backend.state.sessionmaker() as db:
        user = await db.get(User, uuid.UUID(a.id))
        assert user is not None
        keys = await stored_files_of_event(Context(db, user, datetime.now(UTC)), uuid.UUID(event_id))
    # The uploads and what processing derived from them (the image's thumbnail; audio has none).
    assert sorted("/uploads/" + k for k in keys) == sorted([on_post["url"], on_event["url"], thumb])


async def test_deleting_an_event_removes_its_uploaded_files(client: httpx.AsyncClient, make_user: MakeUser,
                                                            backend: Backend) -> None:
    a = await make_user()
    event_id = await make_event(backend, a)
    post = (await client.post("/posts", headers=a.headers, json={"content": "room", "eventId": event_id})).json()
    on_post = (await upload(client, a, png(), postId=post["id"])).json()
    on_event = (await upload(client, a, wav(), eventId=event_id)).json()
    elsewhere = (await upload(client, a, png())).json()
    assert (await client.get(on_post["url"])).status_code == 200
    r = await client.delete(f"/events/{event_id}", headers=a.headers)
    assert r.status_code == 204
    assert (await client.get(on_post["url"])).status_code == 404
    assert (await client.get(on_event["url"])).status_code == 404
    assert (await client.get(elsewhere["url"])).status_code == 200
