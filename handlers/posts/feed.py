"""The feed: readable posts and status changes of the caller's events, newest first, with keyset cursors.

Which posts are readable is `handlers.posts.visibility`'s rule, shared with /posts and search.

A cursor is the (createdAt, id) of the last item handed out, base64url-encoded; the next page holds items
strictly older in that order, so concurrent inserts never shift items between pages (no skips, no repeats).
"""

from __future__ import annotations

import base64
import binascii
import uuid
from datetime import datetime
from typing import Any, Literal

import orjson
from pydantic import Field

from handlers import access
from handlers.accounts.users import UserBrief, brief
from handlers.clock import as_utc, time_ago
from handlers.context import Context
from handlers.posts.manage import PostOut, post_outs
from handlers.posts.visibility import post_visible_clause  # the one rule for who reads which post
from handlers.schema import UTC, In, Limit, Out
from persistence import accounts
from persistence import feed as feed_rows
from persistence.enums import EventStatus
from persistence.errors import Invalid, NotFound
from persistence.models import Post, StatusLog, User


class FeedQuery(In):
    cursor: str | None = Field(default=None, max_length=200)
    """the `nextCursor` of the previous page; absent: the newest items"""
    limit: Limit = 20
    """items per page"""


class FeedItem(Out):
    """`type` "post" carries `post`; `type` "activity" (an event status change) carries `activityType`,
    `description` and its target event."""

    id: uuid.UUID
    type: Literal["post", "activity"]
    created_at: UTC
    time_ago: str
    author_id: uuid.UUID | None
    author: UserBrief | None
    post: PostOut | None = None  # the same object GET /posts/{id} returns
    activity_type: str | None = None
    description: str | None = None
    target_id: uuid.UUID | None = None
    target_type: str | None = None
    feed_metadata: dict[str, Any] = Field(default_factory=dict)


class FeedPage(Out):
    items: list[FeedItem]
    has_more: bool
    next_cursor: str | None


# ---- cursors ------------------------------------------------------------------------------------------------

def encode_cursor(created_at: datetime, item_id: uuid.UUID) -> str:
    raw = orjson.dumps([as_utc(created_at).isoformat(), str(item_id)])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        stamp, item_id = orjson.loads(raw)
        return as_utc(datetime.fromisoformat(stamp)), uuid.UUID(item_id)
    except (binascii.Error, orjson.JSONDecodeError, ValueError, TypeError, AttributeError):
        raise Invalid("invalid cursor") from None


# ---- the page -----------------------------------------------------------------------------------------------

async def _page(ctx: Context, query: FeedQuery, *, author_id: uuid.UUID | None = None,
                event_id: uuid.UUID | None = None, actor_id: uuid.UUID | None = None) -> FeedPage:
    """Posts (of `author_id`, in `event_id`'s room) and status changes (made by `actor_id`, of `event_id`)."""
    cursor = decode_cursor(query.cursor) if query.cursor else None
    limit = min(query.limit, ctx.limits.max_page_size)

    # One page is at most `limit` items of either kind; fetching limit+1 of each tells whether more remain.
    posts = await feed_rows.posts(ctx.db, post_visible_clause(ctx.user_id), author_id=author_id,
                                  event_id=event_id, after=cursor, limit=limit + 1)
    logs = await feed_rows.status_changes(ctx.db, access.member_clause(ctx.user_id), user_id=actor_id,
                                          event_id=event_id, after=cursor, limit=limit + 1)

    merged: list[tuple[datetime, uuid.UUID, Post | tuple[StatusLog, str]]] = [
        (p.created_at, p.id, p) for p in posts
    ] + [(log.created_at, log.id, (log, title)) for log, title in logs]
    merged.sort(key=lambda entry: (entry[0], entry[1]), reverse=True)
    page = merged[:limit]

    people = {p.author_id for p in posts} | {log.user_id for log, _ in logs if log.user_id}
    users = await accounts.users_by_id(ctx.db, people)
    page_posts = [entry[2] for entry in page if isinstance(entry[2], Post)]
    outs = {out.id: out for out in await post_outs(ctx, page_posts)}

    items = []
    for _, _, entry in page:
        if isinstance(entry, Post):
            items.append(_post_item(ctx, entry, outs[entry.id]))
        else:
            log, title = entry
            items.append(_status_item(ctx, log, title, users.get(log.user_id) if log.user_id else None))
    has_more = len(merged) > limit
    last = page[-1] if page else None
    return FeedPage(items=items, has_more=has_more,
                    next_cursor=encode_cursor(last[0], last[1]) if has_more and last else None)


def _post_item(ctx: Context, post: Post, out: PostOut) -> FeedItem:
    return FeedItem(
        id=post.id, type="post", created_at=post.created_at, time_ago=time_ago(post.created_at, ctx.now),
        author_id=post.author_id, author=out.author, post=out,
        target_id=post.event_id, target_type="event" if post.event_id else None,
        feed_metadata={"eventId": str(post.event_id)} if post.event_id else {},
    )


def _status_item(ctx: Context, log: StatusLog, title: str, actor: User | None) -> FeedItem:
    name = actor.name if actor else "Someone"
    previous = EventStatus(log.previous_status).value if log.previous_status else None
    new = EventStatus(log.new_status).value
    change = f"from {previous} to {new}" if previous else f"to {new}"
    return FeedItem(
        id=log.id, type="activity", created_at=log.created_at, time_ago=time_ago(log.created_at, ctx.now),
        author_id=log.user_id, author=brief(actor) if actor else None, activity_type="status_change",
        description=f"{name} moved “{title}” {change}", target_id=log.event_id, target_type="event",
        feed_metadata={"eventId": str(log.event_id), "eventTitle": title, "previousStatus": previous,
                       "newStatus": new},
    )


# ---- the four feeds -----------------------------------------------------------------------------------------

async def home_feed(ctx: Context, query: FeedQuery) -> FeedPage:
    """Every post the caller may read and every status change of the caller's events."""
    return await _page(ctx, query)


async def user_feed(ctx: Context, user_id: uuid.UUID, query: FeedQuery) -> FeedPage:
    """One user's readable posts and the status changes they made on events the caller belongs to."""
    if await accounts.user(ctx.db, user_id) is None:
        raise NotFound("user", user_id)
    return await _page(ctx, query, author_id=user_id, actor_id=user_id)


async def event_feed(ctx: Context, event_id: uuid.UUID, query: FeedQuery) -> FeedPage:
    """An event room: its readable posts and its status changes (members only)."""
    await access.event_for_member(ctx, event_id)
    return await _page(ctx, query, event_id=event_id)


async def activity_feed(ctx: Context, query: FeedQuery) -> FeedPage:
    """The caller's own posts and the status changes on the caller's events."""
    return await _page(ctx, query, author_id=ctx.user_id)
