"""Stored files: media uploads, profile images, and deleting a media item together with its file.

A file is typed by its bytes (`adapters.sniff`), stored under a random key, and recorded only with what
was measured (size, MIME type). Saving happens before the row is written; if the database work fails
the file is removed again. Files of deleted rows are removed by the route after the commit.

A media upload starts `processing`: after commit a `media.process` job reads the file (dimensions,
duration, codecs, thumbnail, poster frame) and moves it to `ready` or `failed` (`jobs.media`).
"""

from __future__ import annotations

import asyncio
import logging
import uuid

from pydantic import Field

from adapters.sniff import Sniffed, sniff
from adapters.storage import Storage
from channels import topics
from handlers import access, catalogue
from handlers.context import Context, Message, Outcome
from handlers.links import ServedLink
from handlers.media.records import FileCleanup, files_of, media_for_viewer, media_out
from handlers.posts.manage import OptionalId, post_out, room_messages
from handlers.posts.visibility import post_for_author
from handlers.schema import In, Out
from persistence import media as media_rows
from persistence import posts as posts_rows
from persistence.enums import MediaStatus, MediaType, Visibility
from persistence.errors import Forbidden, Invalid, PayloadTooLarge, UnsupportedMediaType
from persistence.models import Media, User

log = logging.getLogger("conversme.uploads")

ACCEPTED = "JPEG, PNG, GIF, WebP, MP4, MOV, WebM, Matroska, Ogg, MP3, WAV, FLAC or M4A"


class UploadFields(In):
    """The text fields that may come with the file."""

    title: str | None = Field(default=None, max_length=300)
    description: str | None = Field(default=None, max_length=5000)
    event_id: OptionalId = None
    post_id: OptionalId = None
    # Accepted for the frontend; a media item is as visible as the post or event it belongs to.
    visibility: Visibility | None = None
    # When the client says what it sends, the bytes must agree.
    type: MediaType | None = None


class UploadOut(Out):
    id: uuid.UUID
    url: ServedLink
    type: MediaType
    title: str | None
    mime_type: str
    file_size: int
    status: MediaStatus = MediaStatus.PROCESSING


class ProfileImageOut(Out):
    profile_image: ServedLink
    url: ServedLink


class MessageOut(Out):
    message: str


def _typed(ctx: Context, data: bytes) -> Sniffed:
    if len(data) > ctx.limits.max_upload_bytes:
        raise PayloadTooLarge(f"the file is larger than {ctx.limits.max_upload_bytes} bytes")
    if not data:
        raise Invalid("the file is empty")
    found = sniff(data)
    if found is None:
        raise UnsupportedMediaType(f"unsupported file type; send {ACCEPTED}")
    return found


async def _discard(storage: Storage, key: str) -> None:
    try:
        # Shielded: a cancelled request still removes the file it stored.
        await asyncio.shield(storage.delete(key))
    except asyncio.CancelledError:
        pass
    except Exception:
        log.warning("could not remove stored file %s after a failed request", key, exc_info=True)


async def upload_media(ctx: Context, storage: Storage, data: bytes, filename: str | None,
                       fields: UploadFields) -> Outcome[UploadOut]:
    """Store a file as a media item, optionally on a post (author only) or in an event (members only)."""
    found = _typed(ctx, data)
    if fields.type is not None and fields.type != found.kind:
        raise UnsupportedMediaType(f"the file is {found.mime_type}, not {fields.type.value}")
    post = await post_for_author(ctx, fields.post_id) if fields.post_id is not None else None
    event_id = fields.event_id
    if post is not None:
        if event_id is not None and event_id != post.event_id:
            raise Invalid("eventId is not the post's event")
        event_id = post.event_id
    elif event_id is not None:
        await access.event_for_member(ctx, event_id)
    title = fields.title or ((filename or "").strip()[:300] or None)
    metadata = {"description": fields.description} if fields.description else {}
    key = f"media/{uuid.uuid4().hex}.{found.extension}"
    url = await storage.save(key, data)
    try:
        row = Media(type=found.kind, title=title, url=url, storage_key=key, mime_type=found.mime_type,
                    file_size=len(data), status=MediaStatus.PROCESSING, media_metadata=metadata,
                    post_id=post.id if post else None, event_id=event_id, created_by_id=ctx.user_id,
                    created_at=ctx.now)
        await media_rows.save(ctx.db, row)
        publish: list[Message] = []
        if post is not None:
            publish = room_messages(post, catalogue.POST_UPDATED, await post_out(ctx, post))
        if event_id is not None:
            publish.append(catalogue.MEDIA_PROCESSING.message(topics.for_event(event_id), media_out(row)))
    except BaseException:
        await _discard(storage, key)
        raise
    out = UploadOut(id=row.id, url=url, type=found.kind, title=title, mime_type=found.mime_type,
                    file_size=len(data), status=row.status)
    return Outcome(out, publish=publish, enqueue=[catalogue.MEDIA_PROCESS.call({"media_id": str(row.id)})])


def _own_key(storage: Storage, url: str | None, folder: str) -> str | None:
    """The storage key behind `url` when it is one of our files in `folder`, else None (seed images and
    external URLs are not ours to delete)."""
    root = storage.url_for("")
    if url and url.startswith(storage.url_for(folder)):
        return url[len(root):]
    return None


async def upload_profile_image(ctx: Context, storage: Storage, data: bytes) -> Outcome[FileCleanup[ProfileImageOut]]:
    """Store an image and make it the caller's profile image; the previous uploaded one is removed after
    commit."""
    found = _typed(ctx, data)
    if found.kind is not MediaType.IMAGE:
        raise UnsupportedMediaType(f"a profile image must be JPEG, PNG, GIF or WebP, not {found.mime_type}")
    key = f"profile/{uuid.uuid4().hex}.{found.extension}"
    url = await storage.save(key, data)
    try:
        # Locked, so two uploads in a row each replace (and remove) the one before.
        user = await ctx.db.get(User, ctx.user_id, with_for_update=True, populate_existing=True)
        if user is None:
            raise Forbidden("the account no longer exists")
        previous = user.profile_image
        user.profile_image = url
        user.updated_at = ctx.now
        await ctx.db.flush()
    except BaseException:
        await _discard(storage, key)
        raise
    old = _own_key(storage, previous, "profile/")
    return Outcome(FileCleanup(ProfileImageOut(profile_image=url, url=url), [old] if old and old != key else []))


async def delete_media(ctx: Context, media_id: uuid.UUID) -> Outcome[FileCleanup[MessageOut]]:
    """The creator only (others who can see it get 403, the rest 404)."""
    row = await media_for_viewer(ctx, media_id, for_update=True)
    if row.created_by_id != ctx.user_id:
        raise Forbidden("only the media's creator may delete it")
    files = files_of(row.storage_key, row.media_metadata)
    post = await posts_rows.get(ctx.db, row.post_id) if row.post_id is not None else None
    event_id = row.event_id
    await media_rows.remove(ctx.db, row)
    publish: list[Message] = []
    if post is not None:
        publish = room_messages(post, catalogue.POST_UPDATED, await post_out(ctx, post))
    elif event_id is not None:
        publish = [catalogue.MEDIA_DELETED.message(topics.for_event(event_id), {"id": str(media_id),
                                                                         "eventId": str(event_id)})]
    return Outcome(FileCleanup(MessageOut(message="media deleted"), files), publish=publish)
