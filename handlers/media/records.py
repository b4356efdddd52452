"""Media records as clients see them, and who may see one.

A media item follows what it is attached to: a post's media is visible to whoever sees the post
(`handlers.posts.visibility`); an event's media (no post) to the event's members; an item attached to
neither (an upload not yet attached) to its creator only. The creator always sees their own items.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from handlers import access
from handlers.context import Context
from handlers.links import ServedLink
from handlers.posts.visibility import can_see, post_for_viewer
from handlers.schema import UTC, Out
from persistence import media as media_rows
from persistence.enums import MediaStatus, MediaType
from persistence.errors import NotFound
from persistence.models import Media

T = TypeVar("T")


@dataclass
class FileCleanup(Generic[T]):
    """A handler's answer plus the storage keys of files whose rows it deleted. The route removes the
    files only after the transaction has committed, so a rollback never leaves a row without its file."""

    value: T
    files: list[str] = field(default_factory=list)


class MediaOut(Out):
    id: uuid.UUID
    type: MediaType
    title: str | None
    url: ServedLink
    duration: str | None
    aspect_ratio: str | None
    file_size: int | None
    mime_type: str | None
    thumbnail_url: ServedLink
    media_metadata: dict[str, Any]
    post_id: uuid.UUID | None
    event_id: uuid.UUID | None
    created_by_id: uuid.UUID | None
    created_at: UTC
    updated_at: UTC | None
    status: MediaStatus


def media_out(row: Media) -> MediaOut:
    return MediaOut(
        id=row.id, type=row.type, title=row.title, url=row.url, duration=row.duration,
        aspect_ratio=row.aspect_ratio, file_size=row.file_size, mime_type=row.mime_type,
        thumbnail_url=row.thumbnail_url, media_metadata=dict(row.media_metadata or {}), post_id=row.post_id,
        event_id=row.event_id, created_by_id=row.created_by_id, created_at=row.created_at,
        updated_at=row.updated_at, status=row.status,
    )


async def media_by_post(ctx: Context, post_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, list[MediaOut]]:
    """Every media item of the given posts in one query, oldest first per post."""
    ids = list(dict.fromkeys(post_ids))
    grouped: dict[uuid.UUID, list[MediaOut]] = {pid: [] for pid in ids}
    if not ids:
        return grouped
    for row in await media_rows.of_posts(ctx.db, ids):
        if row.post_id is not None:
            grouped[row.post_id].append(media_out(row))
    return grouped


def files_of(storage_key: str | None, metadata: dict[str, Any] | None) -> list[str]:
    """Every stored file of one media item: the upload and what processing derived from it."""
    derived = [k for k in (metadata or {}).get("derivedKeys", []) if isinstance(k, str)]
    return ([storage_key] if storage_key else []) + derived


def _files(rows: list[media_rows.FileRow]) -> list[str]:
    return [key for storage_key, meta in rows for key in files_of(storage_key, meta)]


async def stored_files_of_posts(ctx: Context, post_ids: Iterable[uuid.UUID]) -> list[str]:
    """Storage keys of the files of the media attached to these posts (their rows go with the posts)."""
    ids = list(post_ids)
    return _files(await media_rows.files_of_posts(ctx.db, ids)) if ids else []


async def stored_files_of_event(ctx: Context, event_id: uuid.UUID) -> list[str]:
    """Storage keys of every file that deleting the event takes with it (its media and its posts' media,
    with their thumbnails and posters). Removed by the caller after the commit."""
    return _files(await media_rows.files_of_event(ctx.db, event_id))


async def can_see_media(ctx: Context, row: Media) -> bool:
    if row.created_by_id == ctx.user_id:
        return True
    if row.post_id is not None:
        return await can_see(ctx, row.post_id, ctx.user_id)
    if row.event_id is not None:
        return await media_rows.in_visible_event(ctx.db, row.event_id, access.member_clause(ctx.user_id))
    return False


async def media_for_viewer(ctx: Context, media_id: uuid.UUID, *, for_update: bool = False) -> Media:
    row = await media_rows.find(ctx.db, media_id, for_update=for_update)
    if row is None or not await can_see_media(ctx, row):
        raise NotFound("media", media_id)
    return row


async def get_media(ctx: Context, media_id: uuid.UUID) -> MediaOut:
    return media_out(await media_for_viewer(ctx, media_id))


async def list_post_media(ctx: Context, post_id: uuid.UUID) -> list[MediaOut]:
    post = await post_for_viewer(ctx, post_id)
    return (await media_by_post(ctx, [post.id]))[post.id]
