"""The same storage tests on every backend: the local directory, and a bucket on a real S3 server process (moto's,
on loopback) with downloads redirected to presigned URLs or proxied by the app."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from adapters.bucket import BucketStorage
from adapters.storage import LocalStorage, Storage, open_storages
from tests.api.postkit import png
from tests.conftest import sign_up
from tests.jobs import media_files
from tests.storage.conftest import FilesApp
from tests.storage.s3server import S3Server


@pytest.fixture(params=["local", "s3"])
async def store(request: pytest.FixtureRequest, tmp_path: Path, s3_server: S3Server) -> AsyncIterator[Storage]:
    if request.param == "local":
        yield LocalStorage(tmp_path / "files")
    else:
        yield open_storages(s3_server.config(s3_server.new_bucket(), "some/prefix"))[0]


async def test_save_read_list_delete(store: Storage) -> None:
    url = await store.save("media/a.png", b"one")
    assert url == "/uploads/media/a.png" == store.url_for("media/a.png")
    await store.save("media/derived/b.jpg", b"two")
    await store.save("profile/c.gif", b"three")
    await store.save("media/a.png", b"one again")  # replaced whole
    assert await store.read("media/a.png") == b"one again"
    assert [k async for k in store.stored_keys()] == ["media/a.png", "media/derived/b.jpg", "profile/c.gif"]
    assert [k async for k in store.stored_keys("media/")] == ["media/a.png", "media/derived/b.jpg"]
    await store.delete("media/a.png")
    await store.delete("media/a.png")  # already gone: not an error
    with pytest.raises(FileNotFoundError):
        await store.read("media/a.png")
    assert [k async for k in store.stored_keys()] == ["media/derived/b.jpg", "profile/c.gif"]


async def test_bucket_keeps_to_its_prefix_and_area(s3_server: S3Server) -> None:
    bucket = s3_server.new_bucket()
    uploads, reports = open_storages(s3_server.config(bucket, "tenant"))
    await uploads.save("media/x.png", png())
    await reports.save("u/r.csv", b"a,b\n", disposition='attachment; filename="r.csv"')
    assert s3_server.objects(bucket) == ["tenant/reports/u/r.csv", "tenant/uploads/media/x.png"]
    assert [k async for k in reports.stored_keys()] == ["u/r.csv"]


async def _upload(app: FilesApp, headers: dict[str, str], data: bytes, name: str) -> dict[str, str]:
    r = await app.client.post("/media/upload", files={"file": (name, data, "application/octet-stream")},
                              headers=headers)
    assert r.status_code == 201, r.text
    body: dict[str, str] = r.json()
    return body


async def test_upload_is_served_processed_and_removed_after_delete(files_app: FilesApp) -> None:
    a = await sign_up(files_app.client, "ann")
    image = media_files.image(64, 32)
    body = await _upload(files_app, a.headers, image, "pic.bin")
    assert body["url"].startswith("/uploads/media/") and body["url"].endswith(".png")
    served = await files_app.fetch(body["url"])
    assert served.status_code == 200 and served.content == image
    assert served.headers["content-type"] == "image/png"
    await files_app.state.jobs.queue.broker.join()  # type: ignore[attr-defined]  # the memory:// broker
    m = (await files_app.client.get(f"/media/{body['id']}", headers=a.headers)).json()
    assert m["status"] == "ready" and m["aspectRatio"] == "2:1"
    thumb = await files_app.fetch(m["thumbnailUrl"])
    assert thumb.status_code == 200 and thumb.content[:3] == b"\xff\xd8\xff"
    assert thumb.headers["content-type"] == "image/jpeg"
    keys = await files_app.stored()
    assert len(keys) == 2 and all(k in body["url"] + m["thumbnailUrl"] for k in keys)
    r = await files_app.client.delete(f"/media/{body['id']}", headers=a.headers)
    assert r.status_code == 200
    assert await files_app.stored() == []  # removed after the commit, with the derived thumbnail
    assert (await files_app.fetch(body["url"])).status_code == 404


async def test_ranges_are_served_for_seeking(files_app: FilesApp) -> None:
    data = bytes(range(256)) * 40
    await files_app.storage.save("media/clip.mp4", data)
    part = await files_app.fetch("/uploads/media/clip.mp4", headers={"Range": "bytes=100-355"})
    assert part.status_code == 206 and part.content == data[100:356]
    assert part.headers["content-range"] == f"bytes 100-355/{len(data)}"
    tail = await files_app.fetch("/uploads/media/clip.mp4", headers={"Range": f"bytes={len(data) - 10}-"})
    assert tail.status_code == 206 and tail.content == data[-10:]
    beyond = await files_app.fetch("/uploads/media/clip.mp4", headers={"Range": f"bytes={len(data)}-"})
    assert beyond.status_code == 416


async def test_refused_uploads_keep_nothing(files_app: FilesApp) -> None:
    a = await sign_up(files_app.client, "ann")
    r = await files_app.client.post("/media/upload", files={"file": ("x.png", b"<html>", "image/png")},
                                    headers=a.headers)
    assert r.status_code == 415
    assert await files_app.stored() == []


async def test_profile_image_replaces_and_removes_the_previous(files_app: FilesApp) -> None:
    a = await sign_up(files_app.client, "ann")
    urls = []
    for _ in range(2):
        r = await files_app.client.post("/media/upload/profile", files={"file": ("me.png", png(), "image/png")},
                                        headers=a.headers)
        assert r.status_code == 200, r.text
        urls.append(r.json()["url"])
    assert await files_app.stored() == [urls[1].removeprefix("/uploads/")]
    assert (await files_app.fetch(urls[1])).content == png()


async def test_unknown_files_are_attachments_and_missing_ones_404(files_app: FilesApp) -> None:
    await files_app.storage.save("media/stray.html", b"<script>alert(1)</script>")
    r = await files_app.fetch("/uploads/media/stray.html")
    assert r.status_code == 200 and r.headers["content-type"] == "application/octet-stream"
    assert r.headers["content-disposition"] == "attachment"
    assert (await files_app.fetch(f"/uploads/media/{uuid.uuid4().hex}.png")).status_code == 404
    assert (await files_app.client.get("/uploads/media/../../files.db")).status_code == 404


async def test_reports_are_served_to_their_owner_only(files_app: FilesApp) -> None:
    a, b = await sign_up(files_app.client, "ann"), await sign_up(files_app.client, "bob")
    r = await files_app.client.post("/reports/generate", json={"reportType": "weekly"}, headers=a.headers)
    assert r.status_code == 202, r.text
    await files_app.state.jobs.queue.broker.join()  # type: ignore[attr-defined]  # the memory:// broker
    [report] = (await files_app.client.get("/reports/me", headers=a.headers)).json()
    for fmt, kind, disposition in (("html", "text/html", "inline"), ("csv", "text/csv", "attachment")):
        url = f"/reports/{report['id']}/download?format={fmt}"
        # Another user learns nothing: a 404 from the app itself, never a redirect to the file.
        refused = await files_app.client.get(url, headers=b.headers)
        assert refused.status_code == 404
        assert (await files_app.client.get(url)).status_code == 401
        got = await files_app.fetch(url, headers=a.headers)
        assert got.status_code == 200 and got.headers["content-type"].startswith(kind)
        assert got.headers["content-disposition"].startswith(f'{disposition}; filename="report-weekly-week-')
        assert (b"<h1>Week" in got.content) if fmt == "html" else got.content.startswith(b"section,name,value")
    private = [k async for k in files_app.state.reports_storage.stored_keys()]
    assert sorted(k.rsplit(".", 1)[1] for k in private) == ["csv", "html"] and await files_app.stored() == []


@pytest.mark.parametrize("files_app", ["s3"], indirect=True)
async def test_presigned_links_expire_and_leave_no_credentials(files_app: FilesApp) -> None:
    await files_app.storage.save("media/a.png", png())
    r = await files_app.client.get("/uploads/media/a.png")
    assert r.status_code == 307 and r.headers["cache-control"] == "private, max-age=60"
    location = httpx.URL(r.headers["location"])
    assert location.params["X-Amz-Expires"] == "300"
    assert "testing-secret-key" not in str(location)


async def test_presigned_urls_name_the_endpoint_browsers_reach(s3_server: S3Server) -> None:
    """Servers reach the bucket at one address, browsers at another (Compose, a private network): the URL is
    signed for the browsers' one. Signing is local: no request is made."""
    cfg = s3_server.config("files", presign_endpoint="https://files.example.com", presign_seconds=90)
    uploads, reports = open_storages(cfg)
    assert isinstance(uploads, BucketStorage) and isinstance(reports, BucketStorage)
    url = httpx.URL(await uploads.signed_url("media/a.png"))
    assert (url.scheme, url.host, url.path) == ("https", "files.example.com", "/files/uploads/media/a.png")
    assert url.params["X-Amz-Expires"] == "90"
    assert httpx.URL(await reports.signed_url("u/r.html")).path == "/files/reports/u/r.html"
