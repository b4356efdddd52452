"""REST routes: topics (everyone reads; administrators change)."""

from __future__ import annotations

from handlers.events import tags as topics
from handlers.events.tags import TopicCreate, TopicOut, TopicQuery, TopicUpdate
from server.routing import ApiRouter, Call

router = ApiRouter("topics")


@router.get("/topics")
async def list_topics(call: Call[None, TopicQuery]) -> list[TopicOut]:
    """Topics, optionally of one `category` (`skip`, `limit`)."""
    return await topics.list_topics(call.ctx, call.query)


@router.get("/topics/{topic_id}")
async def get_topic(call: Call) -> TopicOut:
    """One topic."""
    return await topics.get_topic(call.ctx, call.id("topic_id"))


@router.post("/topics", status=201, admin=True)
async def create_topic(call: Call[TopicCreate]) -> TopicOut:
    """Create a topic (administrators; names are unique, ignoring case)."""
    return await topics.create_topic(call.ctx, call.body)


@router.put("/topics/{topic_id}", admin=True, extra_methods=("PATCH",))
async def update_topic(call: Call[TopicUpdate]) -> TopicOut:
    """Change a topic (administrators)."""
    return await topics.update_topic(call.ctx, call.id("topic_id"), call.body)


@router.delete("/topics/{topic_id}", admin=True)
async def delete_topic(call: Call) -> None:
    """Delete a topic; it is removed from every event (administrators)."""
    await topics.delete_topic(call.ctx, call.id("topic_id"))
