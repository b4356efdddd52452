"""REST routes of the live AI feature: a non-streaming turn (`POST /live/message`, the original's shape),
speech to text (`POST /live/transcribe`), and a session's messages for its members.

A model call never runs inside the request's database transaction: the route stores what it must (the
user's message, the reserved stream), and returns an `AfterCommit` response that the machinery sends only
after the commit — it runs the model call then, and still answers errors with their own status."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from ai.model import HOW_TO_CONFIGURE
from ai.runner import Generations
from handlers.context import Outcome
from handlers.live import contexts as live_contexts
from handlers.live import prompts as live_ai
from handlers.live.contexts import LiveMessageOut
from handlers.live.prompts import LiveMessageRequest
from handlers.live.suggestions import SuggestedOperation
from handlers.schema import In, Limit, Out, to_wire
from persistence.errors import AIUnavailable, DomainError
from server.responses import ORJSONResponse, error_response
from server.routing import ApiRouter, Call, SomeCall
from server.state import AppState
from server.uploads import ReceivedFile, read_file

log = logging.getLogger("conversme.ai")
router = ApiRouter("live")


class AfterCommit(Response):
    """A JSON response produced after the route's transaction committed (see the module docstring)."""

    def __init__(self, produce: Callable[[], Awaitable[Any]], response_type: Any) -> None:
        super().__init__(status_code=200)
        self._produce = produce
        self._type = response_type

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request_id = scope.get("state", {}).get("request_id")
        reply: Response
        try:
            reply = ORJSONResponse(to_wire(await self._produce(), self._type))
        except DomainError as exc:
            reply = error_response(exc, request_id)
        except Exception:
            log.exception("AI request failed")
            reply = ORJSONResponse({"detail": "internal server error", "code": "internal", "requestId": request_id},
                                   status_code=500)
        await reply(scope, receive, send)


def _generations(call: SomeCall) -> Generations:
    if call.state.generations is None:
        raise AIUnavailable(HOW_TO_CONFIGURE)
    return call.state.generations


class LiveMessageReply(Out):
    response: str
    context_id: uuid.UUID
    suggested_operations: list[SuggestedOperation]
    process_modifications: None = None
    metadata: dict[str, Any]


class TranscriptOut(Out):
    text: str


class AIStatusOut(Out):
    configured: bool
    model: str | None


class MessagesQuery(In):
    limit: Limit = 100
    """the most recent messages to list (oldest first)"""


@router.get("/live/ai")
async def ai_status(call: Call) -> AIStatusOut:
    """Whether this server has an AI model configured (and which), so a client can say so before a prompt."""
    # Read-only and cheap: the same flag every AI call checks before it answers `ai_unavailable`.
    llm = call.state.generations.llm if call.state.generations is not None else None
    if llm is None or not llm.configured:
        return AIStatusOut(configured=False, model=None)
    return AIStatusOut(configured=True, model=llm.model)


@router.post("/live/message", response=LiveMessageReply)
async def live_message(call: Call[LiveMessageRequest]) -> Outcome[Response]:
    """One AI turn answered in the original's shape; creates a session when `contextId` is absent.

    Members joined to the session's topic still see it stream. 409 while another answer is being generated."""
    generations = _generations(call)
    accepted = await live_ai.accept_message(call.ctx, generations, call.body)
    turn = accepted.value
    extra = dict(call.body.metadata or {})

    async def answer() -> LiveMessageReply:
        result = await generations.run_to_end(turn)
        if result.error is not None:
            raise result.error
        return LiveMessageReply(
            response=result.text, context_id=turn.context_id, suggested_operations=result.operations,
            metadata={**extra, "streamId": result.stream_id, "status": result.status, "usage": result.usage,
                      "model": generations.llm.model, "userMessageId": str(turn.message.id),
                      "messageId": str(result.message_id) if result.message_id else None})

    return Outcome(AfterCommit(answer, LiveMessageReply), publish=accepted.publish)


async def receive_recording(request: Request, state: AppState) -> ReceivedFile:
    return await read_file(request, state.settings.max_audio_bytes)


@router.post("/live/transcribe", raw_body=True, prepare=receive_recording, response=TranscriptOut)
async def transcribe(call: Call[None, None, ReceivedFile]) -> AfterCommit:
    """Speech to text through the configured transcription model (multipart `file`; typed by content)."""
    received = call.prepared
    kind = live_ai.recording_type(received.data)
    llm = _generations(call).llm
    if not llm.configured:
        raise AIUnavailable(HOW_TO_CONFIGURE)

    async def answer() -> TranscriptOut:
        return TranscriptOut(text=await llm.transcribe(received.data, f"recording.{kind.extension}",
                                                       kind.mime_type))

    return AfterCommit(answer, TranscriptOut)


@router.get("/live/contexts/{context_id}/messages")
async def list_messages(call: Call[None, MessagesQuery]) -> list[LiveMessageOut]:
    """A session's most recent messages, oldest first, for any member (the owner, or the linked event's)."""
    return await live_contexts.list_messages(call.ctx, call.id("context_id"), min(call.query.limit,
                                                                                  call.state.limits.max_page_size))
