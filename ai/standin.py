"""A stand-in for the AI service: `conversme ai-standin` runs an OpenAI-compatible chat-completions server on
loopback, so that a new user sees live AI answers stream (and a suggested checklist operation) with no API key
and no model. Point the server at it with `OPENAI_BASE_URL=http://127.0.0.1:8765/v1 OPENAI_API_KEY=standin`.

It is not a model: the answer is built from what the server sends on each turn (`handlers.live.prompts.build_turn`):
the question (the last user message, its `Name (@handle): ` prefix dropped) and the procedure section of the
system prompt (`describe_checklist`: `N. [done|pending] text (step_id: …)`). It says which step is open next
and, when the request offers the `suggest_process_actions` tool, calls it to suggest completing that step — so
the whole path (deltas, the tool call split across chunks, the check against the real step ids, a suggestion
the console can apply) runs as it does with a real model. Words stream at `--rate` per second, slow enough to
watch.

What it cannot do it refuses the way an OpenAI-compatible server would, so the server's fallbacks show:
structured output (`POST /plan/generate` then answers with its heuristic) and transcription answer HTTP 400.

The SSE framing (`Chunks`, `DONE`, `completion`, `error`) is shared with the test fake
(`tests/fakes/openai_server.py`), whose scripted failure modes and request recording have no place here.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from handlers.live.suggestions import TOOL_NAME

DEFAULT_RATE = 25.0  # words per second: fast enough not to bore, slow enough to see the answer stream
QUOTE_CHARS = 200
DONE = b"data: [DONE]\n\n"

# One line per step of the procedure section handlers.live.prompts.describe_checklist writes.
STEP_LINE = re.compile(r"^(\d+)\. \[(done|pending)\] (.*) \(step_id: ([0-9a-fA-F-]{36})\)$", re.M)
PROCESS_TITLE = re.compile(r"^## Procedure\nTitle: (.*)$", re.M)
AUTHOR_PREFIX = re.compile(r"^[^\n]{1,200}? \(@[^)\s]+\): ")


# ---- the wire: OpenAI's chat-completion shapes ------------------------------------------------------------

def _sse(data: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(data).encode() + b"\n\n"


@dataclass(frozen=True)
class Chunks:
    """The `data:` frames of one streamed chat completion, as OpenAI sends them."""

    completion_id: str
    model: str
    usage_wanted: bool  # the request's stream_options.include_usage
    fingerprint: str = "fp_standin"
    created: int = 0

    def chunk(self, delta: dict[str, Any], finish: str | None = None) -> bytes:
        data: dict[str, Any] = {
            "id": self.completion_id, "object": "chat.completion.chunk", "created": self.created,
            "model": self.model, "system_fingerprint": self.fingerprint,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}
        if self.usage_wanted:
            data["usage"] = None  # as OpenAI: null on every chunk but the last
        return _sse(data)

    def role(self) -> bytes:
        return self.chunk({"role": "assistant", "content": "", "refusal": None})

    def tool_call(self, call_id: str, name: str, arguments: str, piece: int = 16) -> list[bytes]:
        """The id and name in one chunk, then the arguments in pieces (clients must join them)."""
        frames = [self.chunk({"tool_calls": [{"index": 0, "id": call_id, "type": "function",
                                              "function": {"name": name, "arguments": ""}}]})]
        frames += [self.chunk({"tool_calls": [{"index": 0, "function": {"arguments": arguments[i:i + piece]}}]})
                   for i in range(0, len(arguments), piece)]
        return frames

    def usage(self, prompt_tokens: int, completion_tokens: int) -> bytes:
        return _sse({"id": self.completion_id, "object": "chat.completion.chunk", "created": self.created,
                     "model": self.model, "choices": [],
                     "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                               "total_tokens": prompt_tokens + completion_tokens}})


def completion(completion_id: str, model: str, content: str, prompt_tokens: int, completion_tokens: int,
               fingerprint: str = "fp_standin") -> dict[str, Any]:
    """A non-streamed `chat.completion`."""
    return {"id": completion_id, "object": "chat.completion", "created": int(time.time()), "model": model,
            "system_fingerprint": fingerprint,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content, "refusal": None},
                         "logprobs": None, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                      "total_tokens": prompt_tokens + completion_tokens}}


def error(status: int, message: str, kind: str, code: str | None = None,
          headers: dict[str, str] | None = None) -> Response:
    """OpenAI's error body, which the `openai` client turns into its typed exceptions."""
    return JSONResponse({"error": {"message": message, "type": kind, "param": None, "code": code}},
                        status_code=status, headers=headers)


def last_user_text(body: dict[str, Any]) -> str:
    for message in reversed(body.get("messages") or []):
        if message.get("role") == "user":
            content = message.get("content")
            return content if isinstance(content, str) else json.dumps(content)
    return ""


def words(text: str) -> list[str]:
    """The text as stream tokens: one word each, the space kept with the word before it."""
    parts = text.split(" ")
    return [w + (" " if i < len(parts) - 1 else "") for i, w in enumerate(parts)]


def estimate_tokens(text: str) -> int:
    return max(1, len(text) // 4)


# ---- the answer -------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Step:
    number: int
    text: str
    step_id: str
    done: bool


@dataclass(frozen=True)
class Answer:
    text: str
    tool_arguments: dict[str, Any] | None  # suggest_process_actions' arguments, when one is suggested


def _system_text(body: dict[str, Any]) -> str:
    return "\n".join(str(m.get("content") or "") for m in body.get("messages") or [] if m.get("role") == "system")


def read_steps(system: str) -> list[Step]:
    return [Step(int(n), text, step_id, state == "done") for n, state, text, step_id in STEP_LINE.findall(system)]


def answer(body: dict[str, Any]) -> Answer:
    """What the stand-in says to this request, and the operation it suggests."""
    system = _system_text(body)
    question = AUTHOR_PREFIX.sub("", last_user_text(body).strip(), count=1)
    if len(question) > QUOTE_CHARS:
        question = question[:QUOTE_CHARS].rstrip() + "…"
    opening = f"(AI stand-in, no model) You asked: “{question}”."
    steps = read_steps(system)
    title = PROCESS_TITLE.search(system)
    if not steps:
        return Answer(f"{opening} No checklist is linked to this session, so there is no step to suggest. "
                      "Set OPENAI_API_KEY (and OPENAI_BASE_URL) for real answers.", None)
    done = sum(1 for s in steps if s.done)
    where = f"On {title.group(1)}, " if title else ""
    progress = f"{where}{done} of {len(steps)} steps are done."
    following = next((s for s in steps if not s.done), None)
    if following is None:
        return Answer(f"{opening} {progress} Every step is complete: nothing left to suggest.", None)
    offers_tool = any((t.get("function") or {}).get("name") == TOOL_NAME for t in body.get("tools") or [])
    suggest = offers_tool and body.get("tool_choice") != "none"
    text = (f"{opening} {progress} The next open one is step {following.number}: {following.text}. "
            + ("When it is finished, mark it complete: the suggestion below does that." if suggest
               else "When it is finished, mark it complete."))
    if not suggest:
        return Answer(text, None)
    operation = {"operation": "complete_step", "priority": "high",
                 "description": f"Mark step {following.number} complete", "step_id": following.step_id,
                 "rationale": "the next open step of the checklist"}
    return Answer(text, {"is_process_related": True,
                         "current_focus": {"step_index": following.number, "context_notes": following.text},
                         "suggested_operations": [operation]})


# ---- the server ---------------------------------------------------------------------------------------------

class StandIn:
    """The Starlette app; `rate` words per second (0: as fast as it can)."""

    def __init__(self, rate: float | None = None) -> None:
        rate = DEFAULT_RATE if rate is None else rate
        self.delay = 1.0 / rate if rate > 0 else 0.0
        self.app = Starlette(routes=[
            Route("/v1/chat/completions", self._chat, methods=["POST"]),
            Route("/v1/models", self._models, methods=["GET"]),
            Route("/v1/audio/transcriptions", self._transcribe, methods=["POST"]),
        ])

    async def _models(self, request: Request) -> Response:
        return JSONResponse({"object": "list", "data": [
            {"id": "standin", "object": "model", "created": 0, "owned_by": "conversme"}]})

    async def _transcribe(self, request: Request) -> Response:
        return error(400, "the AI stand-in cannot transcribe audio; use a real OpenAI-compatible service",
                     "invalid_request_error", "unsupported")

    async def _chat(self, request: Request) -> Response:
        try:
            body = await request.json()
        except ValueError:
            return error(400, "the body must be JSON", "invalid_request_error")
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
            return error(400, "messages is required", "invalid_request_error")
        if (body.get("response_format") or {}).get("type") == "json_schema":
            return error(400, "the AI stand-in does not write structured (JSON schema) answers",
                         "invalid_request_error", "unsupported")
        reply = answer(body)
        model = str(body.get("model") or "standin")
        completion_id = f"chatcmpl-{uuid.uuid4().hex}"
        prompt_tokens = sum(estimate_tokens(str(m.get("content") or "")) for m in body["messages"])
        if not body.get("stream"):
            return JSONResponse(completion(completion_id, model, reply.text, prompt_tokens,
                                           estimate_tokens(reply.text)))
        chunks = Chunks(completion_id, model, bool((body.get("stream_options") or {}).get("include_usage")),
                        created=int(time.time()))
        return StreamingResponse(self._stream(chunks, reply, prompt_tokens), media_type="text/event-stream",
                                 headers={"cache-control": "no-cache"})

    async def _stream(self, chunks: Chunks, reply: Answer, prompt_tokens: int) -> AsyncIterator[bytes]:
        yield chunks.role()
        for token in words(reply.text):
            await asyncio.sleep(self.delay)
            yield chunks.chunk({"content": token})
        completion_tokens = estimate_tokens(reply.text)
        finish = "stop"
        if reply.tool_arguments is not None:
            arguments = json.dumps(reply.tool_arguments)
            for frame in chunks.tool_call(f"call_{uuid.uuid4().hex[:12]}", TOOL_NAME, arguments):
                yield frame
            completion_tokens += estimate_tokens(arguments)
            finish = "tool_calls"
        yield chunks.chunk({}, finish)
        if chunks.usage_wanted:
            yield chunks.usage(prompt_tokens, completion_tokens)
        yield DONE


def bind(port: int) -> socket.socket:
    """The listening socket on loopback (port 0: any free port), listening before the URL is printed: a client
    that connects at once waits in the backlog until uvicorn accepts, where a socket only bound refused it (a
    test on a loaded machine asked before uvicorn had started)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(("127.0.0.1", port))
        sock.listen(2048)  # uvicorn's backlog; its server listens again on it, to the same effect
    except OSError:
        sock.close()
        raise
    return sock


def how_to_use(port: int) -> str:
    base = f"http://127.0.0.1:{port}/v1"
    return (f"AI stand-in (no model, no key) listening on {base}\n"
            "Start the server with it (in another terminal):\n"
            f"  OPENAI_BASE_URL={base} OPENAI_API_KEY=standin ./scripts/serve.sh\n"
            "Ctrl-C stops the stand-in.")


def run(port: int, rate: float | None) -> int:
    """`conversme ai-standin`: serve until Ctrl-C or SIGTERM."""
    import sys

    import uvicorn

    try:
        sock = bind(port)
    except OSError as exc:
        print(f"conversme: cannot listen on 127.0.0.1:{port}: {exc.strerror}", file=sys.stderr)
        return 2
    print(how_to_use(sock.getsockname()[1]), flush=True)
    # Idle connections stay open for minutes, as a hosted API's do: with uvicorn's 5 s default, a server reusing
    # a pooled connection just as the stand-in closes it gets a connection error (seen on a loaded machine).
    config = uvicorn.Config(StandIn(rate).app, log_level="warning", lifespan="off", server_header=False,
                            timeout_keep_alive=300)
    uvicorn.Server(config).run(sockets=[sock])
    return 0
