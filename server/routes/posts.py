"""REST routes: posts, and the media attached to a post."""

from __future__ import annotations

from starlette.responses import Response

from handlers.context import Outcome
from handlers.media import records as media
from handlers.media.records import MediaOut
from handlers.posts import manage as posts
from handlers.posts.manage import MediaAttach, MyPostsQuery, PostIn, PostOut, PostQuery, PostUpdate
from server.routing import ApiRouter, Call
from server.uploads import respond_then_remove

router = ApiRouter("posts")


@router.get("/posts")
async def list_posts(call: Call[None, PostQuery]) -> list[PostOut]:
    """Posts the caller may see, newest first; filter by event_id, author_id (id, handle or guest-id)."""
    return await posts.list_posts(call.ctx, call.query)


@router.get("/posts/me")
async def my_posts(call: Call[None, MyPostsQuery]) -> list[PostOut]:
    """The caller's own posts, newest first, optionally between start_date and end_date."""
    return await posts.my_posts(call.ctx, call.query)


@router.post("/posts", status=201)
async def create_post(call: Call[PostIn]) -> Outcome[PostOut]:
    """Create a post (in an event room when eventId is given; the caller must be a member)."""
    return await posts.create_post(call.ctx, call.body)


@router.get("/posts/{post_id}")
async def get_post(call: Call) -> PostOut:
    """One post the caller may see."""
    return await posts.get_post(call.ctx, call.id("post_id"))


@router.put("/posts/{post_id}")
async def update_post(call: Call[PostUpdate]) -> Outcome[PostOut]:
    """Change a post's content or visibility (author only)."""
    return await posts.update_post(call.ctx, call.id("post_id"), call.body)


@router.delete("/posts/{post_id}")
async def delete_post(call: Call) -> Outcome[Response]:
    """Delete a post with its media (author only)."""
    outcome = await posts.delete_post(call.ctx, call.id("post_id"))
    return respond_then_remove(call.state.storage, outcome, status=204)


@router.get("/posts/{post_id}/media")
async def list_post_media(call: Call) -> list[MediaOut]:
    """The media of a post the caller may see."""
    return await media.list_post_media(call.ctx, call.id("post_id"))


@router.post("/posts/{post_id}/media", status=201)
async def attach_media(call: Call[MediaAttach]) -> Outcome[MediaOut]:
    """Attach media to a post by URL (author only); an own earlier upload keeps its measured facts."""
    return await posts.attach_media(call.ctx, call.id("post_id"), call.body)
