"""Chat in an event room: stored lines, announced as `chat.message` on the event topic."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import Field
from sqlalchemy import select

from channels import topics
from handlers import access, catalogue
from handlers.accounts.users import UserBrief, brief
from handlers.context import Context, Outcome, Recorded
from handlers.recording import frame_parts, wire_time
from handlers.schema import UTC, In, Limit, Out
from persistence import events
from persistence.errors import NotFound
from persistence.models import ChatMessage, User

MAX_CHAT = 4000
# Built once: the member rule compiled into the chat line's one statement (persistence.events.add_chat_line).
_CHAT_LINE = events.chat_line_statement(access.member_clause(events.CHAT_SENDER))


class ChatIn(In):
    text: str = Field(min_length=1, max_length=MAX_CHAT)
    """the chat line"""


class ChatQuery(In):
    before: datetime | None = None
    """only lines sent before this time (ISO 8601): pages back"""
    limit: Limit = 50
    """lines per page"""


class ChatMessageOut(Out):
    id: uuid.UUID
    event_id: uuid.UUID
    author_id: uuid.UUID | None
    author: UserBrief | None
    text: str
    created_at: UTC


async def send(ctx: Context, event_id: uuid.UUID, data: ChatIn) -> Outcome[ChatMessageOut]:
    out = ChatMessageOut(id=uuid.uuid4(), event_id=event_id, author_id=ctx.user_id, author=brief(ctx.user),
                         text=data.text, created_at=ctx.now)
    message = catalogue.CHAT_MESSAGE.message(topics.for_event(event_id), out)
    stored = await events.add_chat_line(ctx.db, message.topic, frame_parts(message.topic, message, wire_time(ctx.now)),
                                        ctx.now, event_id, ctx.user_id, out.id, data.text,
                                        statement=_CHAT_LINE)
    if stored is None:  # not PostgreSQL: the line here, its frame by the unit of work (handlers.recording)
        await access.event_for_member(ctx, event_id)
        ctx.db.add(ChatMessage(id=out.id, event_id=event_id, author_id=ctx.user_id, text=data.text,
                               created_at=ctx.now))
        await ctx.db.flush()
        return Outcome(out, publish=[message])
    epoch, entries = stored
    if not entries:
        raise NotFound("event", event_id)
    return Outcome(out, recorded=[Recorded(message.topic, epoch, tuple(entries))])


async def history(ctx: Context, event_id: uuid.UUID, query: ChatQuery) -> list[ChatMessageOut]:
    """Newest last; `before` pages back in time."""
    await access.event_for_member(ctx, event_id)
    stmt = select(ChatMessage, User).outerjoin(User, User.id == ChatMessage.author_id) \
        .where(ChatMessage.event_id == event_id)
    if query.before is not None:
        stmt = stmt.where(ChatMessage.created_at < query.before)
    limit = min(query.limit, ctx.limits.max_page_size)
    rows = (await ctx.db.execute(stmt.order_by(ChatMessage.created_at.desc()).limit(limit))).all()
    return [ChatMessageOut(id=m.id, event_id=m.event_id, author_id=m.author_id, author=brief(u) if u else None,
                           text=m.text, created_at=m.created_at) for m, u in reversed(rows)]
