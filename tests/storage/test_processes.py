"""Files across machines: two `conversme serve` processes and a `conversme worker` sharing PostgreSQL, Redis and a
bucket (moto's S3 server process), each with a data directory of its own. A file uploaded through one instance is
served by the other and processed by a worker that never saw either's disk; `conversme storage migrate` copies
an instance's local files into the bucket."""

from __future__ import annotations

import subprocess
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import REDIS_URL, SECRET, fresh_pg_database
from tests.jobs import media_files
from tests.jobs.conftest import FAST, JobProcess
from tests.realtime.harness import BIN, ServerProcess, migrate, person, server_env
from tests.storage.s3server import S3Server
from tests.waiting import eventually

pytestmark = pytest.mark.slow


@dataclass
class Machines:
    a: ServerProcess
    b: ServerProcess
    worker: JobProcess
    dirs: list[Path]
    s3: S3Server
    bucket: str


def _own(env: dict[str, str], data_dir: Path) -> dict[str, str]:
    data_dir.mkdir(parents=True, exist_ok=True)
    return {**env, "DATA_DIR": str(data_dir)}


@pytest.fixture(scope="module")
async def storage_db() -> AsyncIterator[str]:
    async with fresh_pg_database("conversme_storage") as url:
        yield url


@pytest.fixture(scope="module")
def machines(storage_db: str, s3_server: S3Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Machines]:
    root = tmp_path_factory.mktemp("machines")
    bucket = s3_server.new_bucket()
    # One REDIS_PREFIX for the three (server_env draws it), one bucket; a data directory each.
    env = server_env(storage_db, REDIS_URL, root / "a", **FAST, **s3_server.env(bucket, "prod"))
    migrate(_own(env, root / "a"))
    dirs = [root / "a", root / "b", root / "worker"]
    a = ServerProcess(_own(env, dirs[0])).start()
    b = ServerProcess(_own(env, dirs[1])).start()
    worker = JobProcess("worker", _own(env, dirs[2])).start()
    try:
        yield Machines(a, b, worker, dirs, s3_server, bucket)
    finally:
        worker.stop()
        b.stop()
        a.stop()


def _local_files(machines: Machines) -> list[Path]:
    """Files any of the three wrote to its own disk, their logs aside."""
    return [p for d in machines.dirs for p in d.rglob("*") if p.is_file() and p.suffix != ".log"]


async def _from(api: httpx.AsyncClient, url: str, headers: dict[str, str] | None = None) -> httpx.Response:
    r = await api.get(url, headers=headers)
    assert r.status_code == 307, r.text
    async with httpx.AsyncClient(timeout=30) as direct:
        return await direct.get(r.headers["location"])


async def test_upload_through_one_instance_is_served_by_the_other_and_processed_by_the_worker(
        machines: Machines) -> None:
    async with httpx.AsyncClient(base_url=machines.a.url, timeout=30) as a, \
            httpx.AsyncClient(base_url=machines.b.url, timeout=30) as b:
        ann = await person(a, "ann")
        uploads: dict[str, tuple[bytes, dict[str, Any]]] = {}
        for name, data in (("image", media_files.image(320, 180)), ("video", media_files.video(64, 48))):
            r = await a.post("/media/upload", headers=ann.headers, files={"file": (name, data, "x/y")})
            assert r.status_code == 201, r.text
            uploads[name] = (data, r.json())

        async def ready_on_b() -> dict[str, dict[str, Any]] | None:
            out = {k: (await b.get(f"/media/{m['id']}", headers=ann.headers)).json() for k, (_, m) in uploads.items()}
            return out if all(m["status"] != "processing" for m in out.values()) else None

        media = await eventually(ready_on_b, what="the worker to process both uploads")
        for name, (data, _) in uploads.items():
            m = media[name]
            assert m["status"] == "ready", m
            assert (await _from(b, m["url"])).content == data  # B serves what A received
            thumb = await _from(b, m["thumbnailUrl"])
            assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"
        assert media["image"]["aspectRatio"] == "16:9" and media["video"]["duration"] == "0:02"
        poster = await _from(a, media["video"]["mediaMetadata"]["posterUrl"])
        assert poster.status_code == 200 and poster.content[:3] == b"\xff\xd8\xff"
        # Everything is in the bucket, nothing on any machine's disk. A redelivered run that lost to the first
        # (under load a run can outlast JOB_REDELIVER_SECONDS) may still hold its own files for a moment: it
        # removes them as it ends, so the bucket settles on the five the rows name.
        def five() -> list[str] | None:
            found = machines.s3.objects(machines.bucket)
            return found if len(found) == 5 else None

        keys = await eventually(five, what="the bucket to hold the two uploads and their three derived images")
        assert all(k.startswith("prod/uploads/media/") for k in keys)
        assert _local_files(machines) == []
        # Deleting through B removes the files (after its commit) that A stored and the worker derived.
        for _, m in uploads.values():
            assert (await b.delete(f"/media/{m['id']}", headers=ann.headers)).status_code == 200
        assert await eventually(lambda: machines.s3.objects(machines.bucket) == [], what="an empty bucket")


async def test_report_built_by_the_worker_is_downloaded_from_the_other_instance(machines: Machines) -> None:
    async with httpx.AsyncClient(base_url=machines.a.url, timeout=30) as a, \
            httpx.AsyncClient(base_url=machines.b.url, timeout=30) as b:
        ann, bob = await person(a, "ann"), await person(a, "bob")
        r = await a.post("/reports/generate", headers=ann.headers, json={"reportType": "quarterly"})
        assert r.status_code == 202, r.text

        async def listed() -> list[dict[str, Any]]:
            found: list[dict[str, Any]] = (await b.get("/reports/me", headers=ann.headers)).json()
            return found

        [report] = await eventually(listed, what="the worker to build the report")
        url = f"/reports/{report['id']}/download"
        assert (await b.get(url, headers=bob.headers)).status_code == 404
        got = await _from(b, url, ann.headers)
        assert got.status_code == 200 and got.headers["content-type"].startswith("text/html")
        assert b"<h1>Q" in got.content
        assert _local_files(machines) == []


def test_storage_migrate_copies_local_files_once(s3_server: S3Server, tmp_path: Path) -> None:
    data = tmp_path / "data"
    for rel, content in (("uploads/media/a.png", b"png"), ("uploads/media/derived/a-1-thumb.jpg", b"jpg"),
                         ("uploads/profile/p.gif", b"gif"), ("reports/u1/r-1.csv", b"a,b"),
                         ("reports/u1/r-1.html", b"<h1>")):
        (data / rel).parent.mkdir(parents=True, exist_ok=True)
        (data / rel).write_bytes(content)
    bucket = s3_server.new_bucket()
    env = {"PATH": "/usr/bin:/bin", "SECRET_KEY": SECRET, "DATA_DIR": str(data), **s3_server.env(bucket)}

    def run() -> str:
        r = subprocess.run([str(BIN), "storage", "migrate"], env=env, capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        return r.stdout

    out = run()
    assert "uploads: 3 copied (9 bytes), 0 already in the bucket" in out
    assert "reports: 2 copied (7 bytes), 0 already in the bucket" in out
    assert s3_server.objects(bucket) == ["reports/u1/r-1.csv", "reports/u1/r-1.html", "uploads/media/a.png",
                                         "uploads/media/derived/a-1-thumb.jpg", "uploads/profile/p.gif"]
    (data / "uploads/media/b.webp").write_bytes(b"webp")
    out = run()  # again: only what is new
    assert "uploads: 1 copied (4 bytes), 3 already in the bucket" in out
    assert "reports: 0 copied (0 bytes), 2 already in the bucket" in out
    assert len(s3_server.objects(bucket)) == 6
    r = subprocess.run([str(BIN), "storage", "migrate"], env={**env, "STORAGE_URL": ""}, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 2 and "STORAGE_URL must name the bucket" in r.stderr
