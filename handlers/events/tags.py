"""Topics: the shared tag vocabulary for events. Everyone reads; administrators curate."""

from __future__ import annotations

import uuid

from pydantic import Field

from handlers.context import Context
from handlers.schema import UTC, In, Out, PageQuery
from persistence import tags
from persistence.errors import Conflict, Invalid, NotFound
from persistence.models import Topic


class TopicOut(Out):
    id: uuid.UUID
    name: str
    category: str | None
    color: str | None
    created_at: UTC
    updated_at: UTC | None


class TopicQuery(PageQuery):
    category: str | None = Field(default=None, max_length=100)
    """only topics of this category"""


class TopicCreate(In):
    name: str = Field(min_length=1, max_length=100)
    """the topic's name (unique)"""
    category: str | None = Field(default=None, max_length=100)
    """a category label"""
    color: str | None = Field(default=None, max_length=32)
    """a display colour, e.g. `#3b82f6`"""


class TopicUpdate(In):
    name: str | None = Field(default=None, min_length=1, max_length=100)
    """the topic's new name (unique)"""
    category: str | None = Field(default=None, max_length=100)
    """a category label"""
    color: str | None = Field(default=None, max_length=32)
    """a display colour, e.g. `#3b82f6`"""


def topic_out(t: Topic) -> TopicOut:
    return TopicOut(id=t.id, name=t.name, category=t.category, color=t.color, created_at=t.created_at,
                    updated_at=t.updated_at)


async def _name_taken(ctx: Context, name: str, exclude: uuid.UUID | None = None) -> bool:
    # Case-insensitive, so "Design" and "design" cannot both exist.
    return await tags.topic_name_taken(ctx.db, name, exclude)


async def _topic(ctx: Context, topic_id: uuid.UUID) -> Topic:
    topic = await ctx.db.get(Topic, topic_id)
    if topic is None:
        raise NotFound("topic", topic_id)
    return topic


async def list_topics(ctx: Context, q: TopicQuery) -> list[TopicOut]:
    offset, limit = q.window(ctx.limits.max_page_size)
    return [topic_out(t) for t in await tags.topics_page(ctx.db, q.category, offset, limit)]


async def get_topic(ctx: Context, topic_id: uuid.UUID) -> TopicOut:
    return topic_out(await _topic(ctx, topic_id))


async def create_topic(ctx: Context, data: TopicCreate) -> TopicOut:
    if await _name_taken(ctx, data.name):
        raise Conflict(f"a topic named {data.name!r} already exists")
    topic = Topic(name=data.name, category=data.category, color=data.color, created_at=ctx.now)
    ctx.db.add(topic)
    await ctx.db.flush()
    return topic_out(topic)


async def update_topic(ctx: Context, topic_id: uuid.UUID, data: TopicUpdate) -> TopicOut:
    topic = await _topic(ctx, topic_id)
    given = data.given()
    if "name" in given:
        if given["name"] is None:
            raise Invalid("name cannot be empty")
        if await _name_taken(ctx, given["name"], exclude=topic.id):
            raise Conflict(f"a topic named {given['name']!r} already exists")
        topic.name = given["name"]
    if "category" in given:
        topic.category = given["category"]
    if "color" in given:
        topic.color = given["color"]
    topic.updated_at = ctx.now
    await ctx.db.flush()
    return topic_out(topic)


async def delete_topic(ctx: Context, topic_id: uuid.UUID) -> None:
    # Links to events go with it (event_topics cascades).
    await tags.delete_topic(ctx.db, await _topic(ctx, topic_id))
    await ctx.db.flush()
