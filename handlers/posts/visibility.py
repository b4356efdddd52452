"""Who may see and change which post (and so the media attached to it).

Rules:
- the author always sees their own posts;
- `private`: the author only;
- a post in an event room (`event_id` set) is seen only by that event's members (creator and participants
  who have not declined, as in `handlers.access`), whether `public` or `team`;
- outside a room, `public` is seen by every signed-in user (guests included) and `team` by the author only:
  with no event there is no defined team, and showing it to fewer people is the safe reading;
- only the author edits or deletes a post or attaches media to it.
A post the caller may not see answers 404; one they may see but not change answers 403.
"""

from __future__ import annotations

import uuid

from sqlalchemy import ColumnElement, and_, exists, or_

from handlers.access import member_clause
from handlers.context import Context
from persistence import posts
from persistence.enums import Visibility
from persistence.errors import Forbidden, NotFound
from persistence.models import Event, Post


def post_visible_clause(user_id: uuid.UUID) -> ColumnElement[bool]:
    """SQL condition: `user_id` may see the post (see the module docstring)."""
    room_member = exists().where(Event.id == Post.event_id, member_clause(user_id))
    return or_(
        Post.author_id == user_id,
        and_(
            Post.visibility != Visibility.PRIVATE.value,
            or_(
                and_(Post.event_id.is_(None), Post.visibility == Visibility.PUBLIC.value),
                and_(Post.event_id.is_not(None), room_member),
            ),
        ),
    )


async def can_see(ctx: Context, post_id: uuid.UUID, user_id: uuid.UUID) -> bool:
    return await posts.is_visible(ctx.db, post_id, post_visible_clause(user_id))


async def post_for_viewer(ctx: Context, post_id: uuid.UUID) -> Post:
    post = await posts.find(ctx.db, post_id, post_visible_clause(ctx.user_id))
    if post is None:
        raise NotFound("post", post_id)
    return post


async def post_for_author(ctx: Context, post_id: uuid.UUID, *, for_update: bool = False) -> Post:
    post = await post_for_viewer(ctx, post_id)
    if post.author_id != ctx.user_id:
        raise Forbidden("only the post's author may do this")
    if for_update:
        # Re-read under a row lock so two edits of one post apply one after the other.
        locked = await posts.lock(ctx.db, post_id)
        if locked is None:
            raise NotFound("post", post_id)
        return locked
    return post
