"""Search: case-insensitive substring match over what the caller may see (never other users' emails)."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, BeforeValidator, Field

from handlers import access
from handlers.context import Context
from handlers.events.tags import TopicOut, topic_out
from handlers.events.views import EventHit
from handlers.links import ServedLink
from handlers.posts.manage import PostOut, post_outs
from handlers.posts.visibility import post_visible_clause
from handlers.schema import UTC, In, Limit, Out, PageQuery
from persistence import search as matches
from persistence.errors import Invalid

Kind = Literal["users", "events", "processes", "posts", "topics"]
KINDS: tuple[Kind, ...] = ("users", "events", "processes", "posts", "topics")
_SINGULAR = {"user": "users", "event": "events", "process": "processes", "post": "posts", "topic": "topics"}


def _kinds(value: Any) -> Any:
    """`types=users,events`, repeated `types=…`, singular names, or `all`."""
    if value is None:
        return None
    parts = value if isinstance(value, list) else [value]
    names = [n.strip().lower() for p in parts for n in str(p).split(",") if n.strip()]
    if "all" in names:
        return list(KINDS)
    return [_SINGULAR.get(n, n) for n in names]


class _Text(In):
    q: str | None = Field(default=None, max_length=200)
    """the text to search for"""
    query: str | None = Field(default=None, max_length=200)
    """the text to search for (when `q` is absent)"""

    def text(self) -> str:
        text = (self.q or self.query or "").strip()
        if not text:
            raise Invalid("a search text is required (q or query)")
        return text


class SearchQuery(_Text):
    types: Annotated[list[Kind] | None, BeforeValidator(_kinds)] = Field(
        default=None, validation_alias=AliasChoices("types", "type", "entity_type", "entityType"))
    """kinds to search, comma-separated (users, events, processes, posts, topics); default all (also `type`,
    `entityType`)"""
    limit: Limit = 10
    """results per kind"""


class SearchPageQuery(_Text, PageQuery):
    limit: Limit = 20
    """results per page"""


class UserHit(Out):
    """A hit of the original `/search/users`: a public card, never an email."""

    id: uuid.UUID
    name: str
    handle: str
    profile_image: ServedLink
    bio: str | None


class ProcessHit(Out):
    """A hit of the original `/search/processes`: the process's own columns, without steps or instances."""

    id: uuid.UUID
    title: str
    description: str | None
    category: str | None
    color: str | None
    is_template: bool
    template_id: uuid.UUID | None
    directory_id: uuid.UUID | None
    created_by_id: uuid.UUID | None
    created_at: UTC
    updated_at: UTC | None


class SearchResults(Out):
    users: list[UserHit] = Field(default_factory=list)
    events: list[EventHit] = Field(default_factory=list)
    processes: list[ProcessHit] = Field(default_factory=list)
    posts: list[PostOut] = Field(default_factory=list)
    topics: list[TopicOut] = Field(default_factory=list)


async def search_users(ctx: Context, text: str, offset: int, limit: int) -> list[UserHit]:
    rows = await matches.users(ctx.db, text, offset=offset, limit=limit)
    return [UserHit(id=u.id, name=u.name, handle=u.handle, profile_image=u.profile_image, bio=u.bio) for u in rows]


async def search_events(ctx: Context, text: str, offset: int, limit: int) -> list[EventHit]:
    rows = await matches.events(ctx.db, access.visible_events(ctx.user_id), text, offset=offset, limit=limit)
    return [EventHit(id=e.id, title=e.title, description=e.description, start_time=e.start_time,
                     end_time=e.end_time, status=e.status, color=e.color, process_id=e.process_id,
                     created_by_id=e.created_by_id) for e in rows]


async def search_processes(ctx: Context, text: str, offset: int, limit: int) -> list[ProcessHit]:
    rows = await matches.processes(ctx.db, access.process_visible_clause(ctx.user_id), text, offset=offset,
                                 limit=limit)
    return [ProcessHit(id=p.id, title=p.title, description=p.description, category=p.category, color=p.color,
                       is_template=p.is_template, template_id=p.template_id, directory_id=p.directory_id,
                       created_by_id=p.created_by_id, created_at=p.created_at, updated_at=p.updated_at)
            for p in rows]


async def search_posts(ctx: Context, text: str, offset: int, limit: int) -> list[PostOut]:
    rows = await matches.posts(ctx.db, post_visible_clause(ctx.user_id), text, offset=offset, limit=limit)
    return await post_outs(ctx, rows)


async def search_topics(ctx: Context, text: str, offset: int, limit: int) -> list[TopicOut]:
    return [topic_out(t) for t in await matches.topics(ctx.db, text, offset=offset, limit=limit)]


Search = Callable[[Context, str, int, int], Awaitable[list[Any]]]
SEARCHES: dict[str, Search] = {"users": search_users, "events": search_events, "processes": search_processes,
                               "posts": search_posts, "topics": search_topics}


async def search_all(ctx: Context, query: SearchQuery) -> SearchResults:
    """Up to `limit` hits of each requested kind (every kind by default)."""
    text = query.text()
    limit = min(query.limit, ctx.limits.max_page_size)
    found: dict[str, Any] = {}
    for kind in dict.fromkeys(query.types or KINDS):
        found[kind] = await SEARCHES[kind](ctx, text, 0, limit)
    return SearchResults(**found)


async def search_one(ctx: Context, kind: Kind, query: SearchPageQuery) -> list[Any]:
    offset, limit = query.window(ctx.limits.max_page_size)
    hits: list[Any] = await SEARCHES[kind](ctx, query.text(), offset, limit)
    return hits
