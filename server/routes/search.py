"""REST routes: search across users, events, processes, posts and topics, scoped to what the caller may see."""

from __future__ import annotations

from handlers import search
from handlers.events.tags import TopicOut
from handlers.events.views import EventHit
from handlers.posts.manage import PostOut
from handlers.search import (
    ProcessHit,
    SearchPageQuery,
    SearchQuery,
    SearchResults,
    UserHit,
)
from server.routing import ApiRouter, Call

router = ApiRouter("search")


@router.get("/search")
async def search_all(call: Call[None, SearchQuery]) -> SearchResults:
    """Up to `limit` hits per kind for `q` (or `query`); `types` picks kinds (default: all)."""
    return await search.search_all(call.ctx, call.query)


@router.get("/search/users")
async def search_users(call: Call[None, SearchPageQuery]) -> list[UserHit]:
    """Users by name or handle (no emails)."""
    return await search.search_one(call.ctx, "users", call.query)


@router.get("/search/events")
async def search_events(call: Call[None, SearchPageQuery]) -> list[EventHit]:
    """The caller's events by title or description."""
    return await search.search_one(call.ctx, "events", call.query)


@router.get("/search/processes")
async def search_processes(call: Call[None, SearchPageQuery]) -> list[ProcessHit]:
    """Processes the caller may see, by title or description."""
    return await search.search_one(call.ctx, "processes", call.query)


@router.get("/search/posts")
async def search_posts(call: Call[None, SearchPageQuery]) -> list[PostOut]:
    """Posts the caller may read, by content."""
    return await search.search_one(call.ctx, "posts", call.query)


@router.get("/search/topics")
async def search_topics(call: Call[None, SearchPageQuery]) -> list[TopicOut]:
    """Topics by name or category."""
    return await search.search_one(call.ctx, "topics", call.query)
