"""Chat in an event room: stored lines, announced as `chat.message` on the event topic."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from pydantic import Field
from sqlalchemy.ext.asyncio import AsyncSession

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
# And per line of a group (persistence.events.add_chat_lines).
_CHAT_LINES = events.chat_lines_statement(access.member_clause(events.CHAT_LINE_SENDER))


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


@dataclass(frozen=True, slots=True)
class ChatSend:
    """One line of `send_many`: who sends what to which room, and when (the line's time, not the group's)."""

    user: User
    event_id: uuid.UUID
    data: ChatIn
    now: datetime


async def send_many(db: AsyncSession, sends: Sequence[ChatSend],
                    now: datetime) -> list[Outcome[ChatMessageOut] | NotFound] | None:
    """`send` for lines that arrived together, in one statement (a group commit): per line, in the order given, its
    outcome, or NotFound when its sender is not a member of its room (that line alone is refused; nothing of it is
    stored). Per room the lines take consecutive offsets in the order given. None where this is not PostgreSQL (send
    them one by one). Raises when the statement fails (a line's room deleted meanwhile breaks a constraint): none of
    the lines is stored then, and the caller sends each with `send`, so only the line at fault fails."""
    outs: list[ChatMessageOut] = []
    lines: list[events.ChatLine] = []
    for s in sends:
        out = ChatMessageOut(id=uuid.uuid4(), event_id=s.event_id, author_id=s.user.id, author=brief(s.user),
                             text=s.data.text, created_at=s.now)
        message = catalogue.CHAT_MESSAGE.message(topics.for_event(s.event_id), out)
        outs.append(out)
        lines.append(events.ChatLine(message.topic, frame_parts(message.topic, message, wire_time(s.now)),
                                     s.event_id, s.user.id, out.id, s.data.text, s.now))
    stored = await events.add_chat_lines(db, lines, now, statement=_CHAT_LINES)
    if stored is None:
        return None
    results: list[Outcome[ChatMessageOut] | NotFound] = []
    for s, out, line, entry in zip(sends, outs, lines, stored, strict=True):
        if entry is None:
            results.append(NotFound("event", s.event_id))
        else:
            epoch, offset, frame = entry
            results.append(Outcome(out, recorded=[Recorded(line.topic, epoch, ((offset, frame),))]))
    return results


async def history(ctx: Context, event_id: uuid.UUID, query: ChatQuery) -> list[ChatMessageOut]:
    """Newest last; `before` pages back in time."""
    await access.event_for_member(ctx, event_id)
    rows = await events.chat_page(ctx.db, event_id, query.before, min(query.limit, ctx.limits.max_page_size))
    return [ChatMessageOut(id=m.id, event_id=m.event_id, author_id=m.author_id, author=brief(u) if u else None,
                           text=m.text, created_at=m.created_at) for m, u in reversed(rows)]
