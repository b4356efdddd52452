"""Posts: the feed and event-room posts with their author and media; @mentions notify who can see the post."""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any, TypeVar

from pydantic import BeforeValidator, Field, model_validator

from channels import topics
from handlers import access, catalogue
from handlers.accounts.users import UserBrief, brief
from handlers.context import Context, Message, Outcome
from handlers.links import Link, ServedLink
from handlers.media.records import FileCleanup, MediaOut, media_by_post, media_out, stored_files_of_posts
from handlers.notifications.send import notify
from handlers.posts.visibility import can_see, post_for_author, post_for_viewer, post_visible_clause
from handlers.schema import UTC as UTCStamp
from handlers.schema import In, Limit, Out, PageQuery
from persistence import accounts
from persistence import media as media_rows
from persistence import posts as posts_rows
from persistence.enums import MediaStatus, MediaType, NotificationType, Visibility
from persistence.errors import Invalid
from persistence.models import Media, Post

P = TypeVar("P")

MAX_CONTENT = 10_000
MAX_MENTIONS = 20
GUEST_ALIAS = "guest-id"
# "@handle" not preceded by a word character (so e-mail addresses are not mentions); handles end on a
# letter, digit or underscore, so "@bob." at the end of a sentence mentions "bob".
MENTION_RE = re.compile(r"(?<![\w@.-])@([A-Za-z0-9_](?:[A-Za-z0-9_.-]{0,48}[A-Za-z0-9_])?)")


def _blank_id(value: Any) -> Any:
    # Clients send these for "no id" (JS null/undefined stringified, Python None).
    if isinstance(value, str) and value.strip() in ("", "null", "undefined", "None"):
        return None
    return value


OptionalId = Annotated[uuid.UUID | None, BeforeValidator(_blank_id)]
DateOrTime = Annotated[date | datetime, Field(union_mode="left_to_right")]


class PostIn(In):
    content: str = Field(min_length=1, max_length=MAX_CONTENT)
    """the post's text; @handles mention (and notify) people who can see it"""
    visibility: Visibility | None = Field(default=None, description="null means public")
    event_id: OptionalId = None
    """post in this event's room (the caller must take part); none: the feed"""

    @model_validator(mode="before")
    @classmethod
    def _one_event(cls, data: Any) -> Any:
        # The frontend sends the same value as `eventId` and `event_id`; two different values are a bug.
        if isinstance(data, dict):
            given = {str(_blank_id(data[k])) for k in ("eventId", "event_id") if _blank_id(data.get(k)) is not None}
            if len(given) > 1:
                raise ValueError("eventId and event_id name different events")
        return data


class PostUpdate(In):
    """Partial: an omitted or null field keeps its value."""

    content: str | None = Field(default=None, min_length=1, max_length=MAX_CONTENT)
    """the post's new text"""
    visibility: Visibility | None = None
    """public, private or team"""


class PostQuery(PageQuery):
    limit: Limit = 20
    """posts per page"""
    event_id: OptionalId = None
    """only the posts of this event's room"""
    author_id: str | None = Field(default=None, max_length=200, description="a user id, a handle or guest-id")
    feed: bool = False
    """accepted for the original client: the same visible set"""


class MyPostsQuery(PageQuery):
    limit: Limit = 20
    """posts per page"""
    start_date: DateOrTime | None = None
    """only posts from this time on (a date: from 00:00 UTC that day)"""
    end_date: DateOrTime | None = Field(default=None, description="a date includes that whole day (UTC)")


class MediaAttach(In):
    type: MediaType
    """video, image, audio, quote or event"""
    url: Link
    """an http(s) or /uploads/ link to the media"""
    title: str | None = Field(default=None, max_length=300)
    """a caption"""


class PostOut(Out):
    id: uuid.UUID
    content: str
    visibility: str
    author_id: uuid.UUID
    event_id: uuid.UUID | None
    created_at: UTCStamp
    updated_at: UTCStamp | None
    author: UserBrief
    # Flat copies of `author` for the original frontend's event page (useRoom.tsx), which reads only these
    # and shows "Unknown User" without them.
    author_name: str
    author_handle: str
    author_image: ServedLink = None
    media: list[MediaOut]


async def post_outs(ctx: Context, posts: Sequence[Post]) -> list[PostOut]:
    """Posts with authors and media, in two batched queries."""
    authors = await accounts.users_by_id(ctx.db, {p.author_id for p in posts})
    media = await media_by_post(ctx, [p.id for p in posts])
    briefs = {user_id: brief(user) for user_id, user in authors.items()}
    return [
        PostOut(id=p.id, content=p.content, visibility=p.visibility, author_id=p.author_id, event_id=p.event_id,
                created_at=p.created_at, updated_at=p.updated_at, author=briefs[p.author_id],
                author_name=briefs[p.author_id].name, author_handle=briefs[p.author_id].handle,
                author_image=briefs[p.author_id].profile_image, media=media[p.id])
        for p in posts
    ]


async def post_out(ctx: Context, post: Post) -> PostOut:
    return (await post_outs(ctx, [post]))[0]


def room_messages(post: Post | PostOut, event: catalogue.Event[P], data: P) -> list[Message]:
    """A room post's change goes to its event topic; a feed post has no room to tell."""
    if post.event_id is None:
        return []
    return [event.message(topics.for_event(post.event_id), data)]


async def _resolve_author(ctx: Context, author: str) -> uuid.UUID | None:
    """A user id, a handle (with or without "@"), or `guest-id`: the calling guest, nobody for others."""
    author = author.strip()
    if author == GUEST_ALIAS:
        return ctx.user_id if ctx.user.is_guest else None
    try:
        return uuid.UUID(author)
    except ValueError:
        handle = author.removeprefix("@").lower()
        user = await accounts.user_by_handle(ctx.db, handle)
        return user.id if user is not None else None


async def list_posts(ctx: Context, query: PostQuery) -> list[PostOut]:
    """Newest first, only what the caller may see. `feed=true` is the same visible set (accepted for the
    frontend); `event_id` narrows to one room, which is empty for a room the caller is not in."""
    offset, limit = query.window(ctx.limits.max_page_size)
    author_id = None
    if query.author_id:
        author_id = await _resolve_author(ctx, query.author_id)
        if author_id is None:
            return []
    rows = await posts_rows.page(ctx.db, post_visible_clause(ctx.user_id), event_id=query.event_id,
                                 author_id=author_id, offset=offset, limit=limit)
    return await post_outs(ctx, rows)


def _instant(value: date | datetime, name: str) -> datetime:
    if isinstance(value, datetime):
        try:
            return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
        except OverflowError:  # year 1 ahead of UTC, year 9999 behind it
            raise Invalid(f"{name} is out of range") from None
    return datetime.combine(value, time.min, tzinfo=UTC)


def _until(value: date | datetime) -> datetime | None:
    """Exclusive upper bound: a date includes its whole (UTC) day, a timestamp includes itself; none past the end
    of the calendar (9999-12-31 includes everything after it)."""
    step = timedelta(microseconds=1) if isinstance(value, datetime) else timedelta(days=1)
    try:
        return _instant(value, "end_date") + step
    except OverflowError:
        return None


async def my_posts(ctx: Context, query: MyPostsQuery) -> list[PostOut]:
    offset, limit = query.window(ctx.limits.max_page_size)
    start = _instant(query.start_date, "start_date") if query.start_date is not None else None
    until = _until(query.end_date) if query.end_date is not None else None
    if start is not None and until is not None and start >= until:
        raise Invalid("start_date is after end_date")
    rows = await posts_rows.by_author(ctx.db, ctx.user_id, start=start, until=until, offset=offset, limit=limit)
    return await post_outs(ctx, rows)


async def get_post(ctx: Context, post_id: uuid.UUID) -> PostOut:
    return await post_out(ctx, await post_for_viewer(ctx, post_id))


def mentioned_handles(content: str) -> list[str]:
    return list(dict.fromkeys(h.lower() for h in MENTION_RE.findall(content)))


async def _mention(ctx: Context, post: Post, handles: Sequence[str]) -> list[Message]:
    """Notify the mentioned users who can see the post (never the author)."""
    handles = list(handles)[:MAX_MENTIONS]
    if not handles:
        return []
    users = await posts_rows.user_ids_by_handles(ctx.db, handles, except_id=ctx.user_id)
    recipients = [uid for uid in users if await can_see(ctx, post.id, uid)]
    excerpt = post.content if len(post.content) <= 200 else post.content[:199] + "…"
    metadata = {"postId": str(post.id), "eventId": str(post.event_id) if post.event_id else None}
    return await notify(ctx, recipients, NotificationType.MENTION, f"{ctx.user.name} mentioned you", excerpt,
                        reference_id=post.id, reference_type="post", metadata=metadata)


async def create_post(ctx: Context, data: PostIn) -> Outcome[PostOut]:
    if data.event_id is not None:
        await access.event_for_member(ctx, data.event_id)
    post = Post(content=data.content, visibility=(data.visibility or Visibility.PUBLIC).value,
                author_id=ctx.user_id, event_id=data.event_id, created_at=ctx.now)
    await posts_rows.save(ctx.db, post)
    out = await post_out(ctx, post)
    publish = room_messages(post, catalogue.POST_CREATED, out)
    publish += await _mention(ctx, post, mentioned_handles(post.content))
    return Outcome(out, publish=publish)


async def update_post(ctx: Context, post_id: uuid.UUID, change: PostUpdate) -> Outcome[PostOut]:
    """Author only. Users newly @mentioned by an edit are notified (earlier mentions are not repeated)."""
    post = await post_for_author(ctx, post_id, for_update=True)
    given = {k: v for k, v in change.given().items() if v is not None}
    before = set(mentioned_handles(post.content))
    if "content" in given:
        post.content = given["content"]
    if "visibility" in given:
        post.visibility = Visibility(given["visibility"]).value
    if given:
        post.updated_at = ctx.now
    await posts_rows.save(ctx.db, post)
    out = await post_out(ctx, post)
    publish = room_messages(post, catalogue.POST_UPDATED, out) if given else []
    publish += await _mention(ctx, post, [h for h in mentioned_handles(post.content) if h not in before])
    return Outcome(out, publish=publish)


async def delete_post(ctx: Context, post_id: uuid.UUID) -> Outcome[FileCleanup[None]]:
    """Author only. Its media rows go with it (ON DELETE CASCADE); their uploaded files are returned
    for removal after commit."""
    post = await post_for_author(ctx, post_id, for_update=True)
    files = await stored_files_of_posts(ctx, [post.id])
    ref: catalogue.EventItemRef = {"id": str(post.id), "eventId": str(post.event_id)}
    publish = room_messages(post, catalogue.POST_DELETED, ref)
    await posts_rows.remove(ctx.db, post)
    return Outcome(FileCleanup(None, files), publish=publish)


async def attach_media(ctx: Context, post_id: uuid.UUID, data: MediaAttach) -> Outcome[MediaOut]:
    """Author only. When `url` is one of the caller's own uploads not yet attached to a post, that record is
    attached (keeping its measured type, size and MIME type) instead of a second row for the same file."""
    post = await post_for_author(ctx, post_id)
    row = await media_rows.unattached_upload(ctx.db, url=data.url, user_id=ctx.user_id)
    if row is not None:
        row.post_id = post.id
        row.event_id = post.event_id
        if data.title is not None:
            row.title = data.title
        row.updated_at = ctx.now
    else:
        # A link to a file we did not receive: nothing about it was measured, so nothing is claimed.
        row = Media(type=data.type, title=data.title, url=data.url, status=MediaStatus.READY, media_metadata={},
                    post_id=post.id, event_id=post.event_id, created_by_id=ctx.user_id, created_at=ctx.now)
    await media_rows.save(ctx.db, row)
    out = media_out(row)
    publish = room_messages(post, catalogue.POST_UPDATED, await post_out(ctx, post)) if post.event_id else []
    return Outcome(out, publish=publish)

