"""The media processing job: read the uploaded file, measure it, store a thumbnail (and a poster frame for
video), then move the item from `processing` to `ready` — or to `failed` with a reason.

Each run writes its derived files under fresh keys and only a conditional update (`WHERE status =
'processing'`) makes them the item's; a run that loses (the item was deleted, another delivery finished
first) or fails removes what it wrote, so nothing is ever half-written and a redelivery does the work once.
Writing and adopting the derived files runs to its end even when the job's timeout cancels the run: an object
store can finish a write after its caller was cancelled, which used to leave a stray thumbnail behind.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any

from sqlalchemy import select, update

from channels import topics
from handlers.catalogue import JOB_PROGRESS, MEDIA_FAILED, MEDIA_PROCESS, MEDIA_READY, Event, JobProgress
from handlers.context import Outcome
from handlers.media.records import MediaOut, media_out
from handlers.unit_of_work import unit_of_work
from jobs.media_probe import Analysis, Unreadable, analyze, clock
from jobs.runtime import JobRuntime, job
from persistence.enums import MediaStatus, MediaType
from persistence.models import Media, Post

log = logging.getLogger("conversme.jobs.media")
_SETTLING: set[asyncio.Future[Media | None]] = set()


async def _target(rt: JobRuntime, row: Media) -> tuple[uuid.UUID | None, uuid.UUID | None]:
    """(event topic owner, uploader): the event of the item or of its room post."""
    event_id = row.event_id
    if event_id is None and row.post_id is not None:
        async with rt.sessionmaker() as db:
            event_id = await db.scalar(select(Post.event_id).where(Post.id == row.post_id))
    return event_id, row.created_by_id


async def _progress(rt: JobRuntime, uploader: uuid.UUID | None, media_id: uuid.UUID, stage: str,
                    progress: float, error: str | None = None) -> None:
    if uploader is None:
        return
    data: JobProgress = {"task": MEDIA_PROCESS.name, "mediaId": str(media_id), "stage": stage, "progress": progress}
    if error is not None:
        data["error"] = error
    try:
        # The user topic's log sequences it like every other entry.
        async with unit_of_work(rt.sessionmaker, rt.clock(), rt.announce) as work:
            work.add(Outcome(None, publish=[JOB_PROGRESS.message(topics.for_user(uploader), data)]))
    except Exception:  # progress is a courtesy; the result is announced with its commit
        log.warning("could not record progress of %s", media_id, exc_info=True)


def _planned(media_id: uuid.UUID, found: Analysis) -> dict[str, tuple[str, bytes]]:
    """{kind: (key, data)} of the derived images, under keys unique to this run."""
    run = uuid.uuid4().hex[:8]
    images = {"thumbnail": ("thumb", found.thumbnail), "poster": ("poster", found.poster)}
    return {kind: (f"media/derived/{media_id}-{run}-{name}.jpg", data)
            for kind, (name, data) in images.items() if data is not None}


async def _remove(rt: JobRuntime, keys: list[str]) -> None:
    results = await asyncio.gather(*(rt.storage.delete(key) for key in keys), return_exceptions=True)
    for key, result in zip(keys, results, strict=True):
        if isinstance(result, BaseException):
            log.warning("could not remove derived file %s", key, exc_info=result)


async def _adopted(rt: JobRuntime, media_id: uuid.UUID, keys: list[str]) -> bool:
    """Whether the item's row names `keys` as its derived files — after a failure that may have come after the
    commit. Unknown (the database unreachable) counts as adopted: a stray file costs storage, a row naming a
    removed file breaks the page that shows it."""
    try:
        async with rt.sessionmaker() as db:
            meta = await db.scalar(select(Media.media_metadata).where(Media.id == media_id))
    except Exception:
        log.warning("could not tell whether %s adopted %s; leaving them", media_id, keys, exc_info=True)
        return True
    return meta is not None and sorted(meta.get("derivedKeys") or []) == keys


async def _adopt(rt: JobRuntime, media_id: uuid.UUID, row_meta: dict[str, Any], found: Analysis,
                 event_id: uuid.UUID | None) -> Media | None:
    """Write the derived images and make them the item's, or remove them — and nothing else.

    Runs to its end even when the job's timeout cancels the run (the caller shields it): a cancelled write
    to an object store can still land after the cancel, and a cancelled commit may already have happened, so
    only a section that runs to its end knows which of its files the item holds."""
    planned = _planned(media_id, found)
    keys = sorted(key for key, _ in planned.values())
    try:
        for key, data in planned.values():
            await rt.storage.save(key, data)
        written = {kind: key for kind, (key, _) in planned.items()}
        done = await _finish(rt, media_id, _values(row_meta, found, written, rt), event_id, MEDIA_READY)
    except BaseException:
        if not await _adopted(rt, media_id, keys):
            await _remove(rt, keys)
        raise
    if done is None:
        await _remove(rt, keys)  # another delivery won, or the item is gone
    return done


def _values(row_meta: dict[str, Any], found: Analysis, written: dict[str, str], rt: JobRuntime) -> dict[str, Any]:
    meta = {**row_meta, **found.metadata}
    meta.pop("error", None)
    if "poster" in written:
        meta["posterUrl"] = rt.storage.url_for(written["poster"])
    meta["derivedKeys"] = sorted(written.values())
    return {"status": MediaStatus.READY, "media_metadata": meta, "aspect_ratio": found.aspect_ratio,
            "duration": clock(found.duration) if found.duration is not None else None,
            "thumbnail_url": rt.storage.url_for(written["thumbnail"]) if "thumbnail" in written else None,
            "updated_at": rt.clock()}


async def _finish(rt: JobRuntime, media_id: uuid.UUID, values: dict[str, Any], event_id: uuid.UUID | None,
                  event: Event[MediaOut]) -> Media | None:
    """Move the item out of `processing` and announce `event` on its event's topic, in one unit of work."""
    async with unit_of_work(rt.sessionmaker, rt.clock(), rt.announce) as work:
        done = await work.db.scalar(update(Media).where(Media.id == media_id,
                                                        Media.status == MediaStatus.PROCESSING)
                                    .values(**values).returning(Media))
        if done is not None and event_id is not None:
            work.add(Outcome(None, publish=[event.message(topics.for_event(event_id), media_out(done))]))
    return done


async def fail(rt: JobRuntime, media_id: uuid.UUID, reason: str) -> None:
    async with rt.sessionmaker() as db:
        row = await db.get(Media, media_id)
    if row is None or row.status != MediaStatus.PROCESSING:
        return
    meta = {**(row.media_metadata or {}), "error": reason}
    event_id, uploader = await _target(rt, row)
    done = await _finish(rt, media_id, {"status": MediaStatus.FAILED, "media_metadata": meta,
                                        "updated_at": rt.clock()}, event_id, MEDIA_FAILED)
    if done is not None:
        await _progress(rt, uploader, media_id, "failed", 1.0, error=reason)


async def _on_dead(rt: JobRuntime, kwargs: dict[str, Any], error: str) -> None:
    await fail(rt, uuid.UUID(str(kwargs["media_id"])), f"processing failed repeatedly ({error[:200]})")


@job(MEDIA_PROCESS, timeout=90, on_dead=_on_dead)
async def process(rt: JobRuntime, media_id: str) -> None:
    mid = uuid.UUID(media_id)
    async with rt.sessionmaker() as db:
        row = await db.get(Media, mid)
    if row is None or row.status != MediaStatus.PROCESSING or row.storage_key is None:
        return  # deleted, or already processed by an earlier delivery
    event_id, uploader = await _target(rt, row)
    await _progress(rt, uploader, mid, "reading", 0.1)
    try:
        data = await rt.storage.read(row.storage_key)
    except FileNotFoundError:
        await fail(rt, mid, "the uploaded file is missing from storage")
        return
    await _progress(rt, uploader, mid, "analyzing", 0.3)
    try:
        found = await asyncio.to_thread(analyze, MediaType(row.type), data)
    except Unreadable as exc:
        await fail(rt, mid, str(exc))
        return
    await _progress(rt, uploader, mid, "storing", 0.7)
    adopting = asyncio.ensure_future(_adopt(rt, mid, dict(row.media_metadata or {}), found, event_id))
    _SETTLING.add(adopting)  # a shielded task outlives a cancelled run: held until it ends
    adopting.add_done_callback(_SETTLING.discard)
    done = await asyncio.shield(adopting)
    if done is not None:
        await _progress(rt, uploader, mid, "done", 1.0)
