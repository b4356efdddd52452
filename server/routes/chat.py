"""REST routes: event room chat (the same handler as the `chat.send` push)."""

from __future__ import annotations

from handlers.context import Outcome
from handlers.events import chat
from handlers.events.chat import ChatIn, ChatMessageOut, ChatQuery
from server.routing import ApiRouter, Call

router = ApiRouter("chat")


@router.get("/events/{event_id}/chat")
async def chat_history(call: Call[None, ChatQuery]) -> list[ChatMessageOut]:
    """The room's chat, oldest first; `before` pages back."""
    return await chat.history(call.ctx, call.id("event_id"), call.query)


@router.post("/events/{event_id}/chat", status=201)
async def send_chat(call: Call[ChatIn]) -> Outcome[ChatMessageOut]:
    """Send a chat line to the room (announced as `chat.message`)."""
    return await chat.send(call.ctx, call.id("event_id"), call.body)
