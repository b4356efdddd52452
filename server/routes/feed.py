"""REST routes: the feed of readable posts and event status changes, keyset-paginated."""

from __future__ import annotations

from handlers.posts import feed
from handlers.posts.feed import FeedPage, FeedQuery
from server.routing import ApiRouter, Call

router = ApiRouter("feed")


@router.get("/feed")
async def home_feed(call: Call[None, FeedQuery]) -> FeedPage:
    """Posts the caller may read and status changes of the caller's events, newest first."""
    return await feed.home_feed(call.ctx, call.query)


@router.get("/feed/activity")
async def activity_feed(call: Call[None, FeedQuery]) -> FeedPage:
    """The caller's own posts and the status changes of the caller's events."""
    return await feed.activity_feed(call.ctx, call.query)


@router.get("/feed/user/{user_id}")
async def user_feed(call: Call[None, FeedQuery]) -> FeedPage:
    """One user's posts the caller may read and their status changes on the caller's events."""
    return await feed.user_feed(call.ctx, call.id("user_id"), call.query)


@router.get("/feed/event/{event_id}")
async def event_feed(call: Call[None, FeedQuery]) -> FeedPage:
    """An event's posts and status changes (members only)."""
    return await feed.event_feed(call.ctx, call.id("event_id"), call.query)
