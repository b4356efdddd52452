"""The LLM port: the one module that imports `openai`.

`create_llm(...)` builds an `OpenAILLM` (any OpenAI-compatible server: OpenAI, vLLM, Ollama, LM Studio) when a
key is configured, else an `UnconfiguredLLM` whose every call raises `AIUnavailable` with the how-to, so the
server starts and answers without one. OpenAI's exceptions are translated once, here (`translate`), into
domain errors with messages a person can act on; nothing above this module sees an `openai` type.

Streamed chat yields `TextDelta`s as they arrive, then the assembled `ToolCall`s (their ids, names and
argument fragments come split across chunks), then `Usage` and `Finish`.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import openai
from openai import AsyncOpenAI, AsyncStream
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from persistence.errors import AIRejected, AITimeout, AIUnavailable, DomainError, RateLimited

log = logging.getLogger("conversme.llm")

HOW_TO_CONFIGURE = "AI is not configured: set OPENAI_API_KEY (and OPENAI_BASE_URL for a compatible server)"
DEFAULT_RETRY_AFTER = 20.0


@dataclass(frozen=True)
class TextDelta:
    text: str


@dataclass(frozen=True)
class ToolCall:
    id: str
    name: str
    arguments: str  # JSON text as the model wrote it; the caller parses and validates


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


@dataclass(frozen=True)
class Finish:
    reason: str  # stop, length, tool_calls, content_filter


ChatEvent = TextDelta | ToolCall | Usage | Finish
ChatMessage = dict[str, Any]


@dataclass(frozen=True)
class LLMConfig:
    api_key: str = ""
    base_url: str = ""
    model: str = "gpt-4o-mini"
    transcribe_model: str = "whisper-1"
    timeout: float = 30.0
    temperature: float = 0.7


class LLM(Protocol):
    """What the rest of the server asks of a language model."""

    configured: bool
    model: str

    def stream_chat(self, messages: Sequence[ChatMessage], *, tools: Sequence[dict[str, Any]] = (),
                    tool_choice: str = "auto", max_tokens: int = 1000) -> AsyncGenerator[ChatEvent, None]:
        """Stream one chat completion. Closing the iterator (or cancelling its consumer) closes the upstream
        request at once."""

    async def complete_json(self, messages: Sequence[ChatMessage], *, name: str, schema: dict[str, Any],
                            max_tokens: int = 2000) -> dict[str, Any]:
        """One non-streamed completion constrained to `schema` (structured output), parsed."""

    async def transcribe(self, data: bytes, filename: str, mime_type: str) -> str: ...

    async def aclose(self) -> None: ...


def _retry_after(exc: openai.APIStatusError) -> float:
    headers = exc.response.headers
    for key, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        raw = headers.get(key)
        if raw:
            with contextlib.suppress(ValueError):
                return max(1.0, float(raw) * scale)
    return DEFAULT_RETRY_AFTER


def _upstream_message(exc: openai.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and isinstance(inner.get("message"), str):
            return str(inner["message"])[:300]
    return str(exc.message)[:300]


def translate(exc: openai.OpenAIError, timeout: float) -> DomainError:
    """An OpenAI SDK error as a domain error (most specific first). The upstream's own wording is kept where
    it helps the reader (a refused request says why); keys and hostnames never appear."""
    if isinstance(exc, openai.APITimeoutError):
        return AITimeout(f"the AI service did not answer within {timeout:g} s")
    if isinstance(exc, openai.APIConnectionError):
        return AIUnavailable("the AI service could not be reached (or dropped the connection); try again")
    if isinstance(exc, openai.AuthenticationError | openai.PermissionDeniedError):
        return AIUnavailable("the AI key was rejected by the AI service: check OPENAI_API_KEY")
    if isinstance(exc, openai.RateLimitError):
        if isinstance(exc.body, dict) and exc.body.get("code") == "insufficient_quota":
            return AIUnavailable("the AI account has no quota left")
        wait = _retry_after(exc)
        return RateLimited(f"the AI service is busy (rate limited); try again in {wait:.0f} s", wait)
    if isinstance(exc, openai.NotFoundError):
        return AIUnavailable(f"the AI service does not know this model or endpoint: {_upstream_message(exc)}")
    if isinstance(exc, openai.BadRequestError | openai.UnprocessableEntityError | openai.ConflictError):
        return AIRejected(f"the AI service refused the request: {_upstream_message(exc)}")
    if isinstance(exc, openai.APIStatusError):
        return AIUnavailable(f"the AI service failed (HTTP {exc.status_code}); try again")
    if isinstance(exc, openai.APIError):  # an error event inside a stream
        return AIUnavailable(f"the AI service reported an error: {str(exc.message)[:300]}")
    return AIUnavailable("the AI service failed")


@dataclass
class _ToolBuffer:
    id: str = ""
    name: str = ""
    arguments: list[str] = field(default_factory=list)


class OpenAILLM:
    configured = True

    def __init__(self, config: LLMConfig) -> None:
        self.config = config
        self.model = config.model
        # The SDK's own retries stay for plain calls; a stream with an audience fails fast (see stream_chat).
        self._client = AsyncOpenAI(api_key=config.api_key, base_url=config.base_url or None,
                                   timeout=config.timeout, max_retries=1)

    async def aclose(self) -> None:
        await self._client.close()

    def _error(self, exc: openai.OpenAIError) -> DomainError:
        return translate(exc, self.config.timeout)

    async def stream_chat(self, messages: Sequence[ChatMessage], *, tools: Sequence[dict[str, Any]] = (),
                          tool_choice: str = "auto", max_tokens: int = 1000) -> AsyncGenerator[ChatEvent, None]:
        extra: dict[str, Any] = {}
        if tools:
            extra = {"tools": list(tools), "tool_choice": tool_choice}
        try:
            # Messages and tools are plain dicts built by the domain; the SDK's TypedDict overloads add nothing.
            create: Any = self._client.with_options(max_retries=0).chat.completions.create
            stream: AsyncStream[ChatCompletionChunk] = await create(
                model=self.model, messages=list(messages), stream=True, temperature=self.config.temperature,
                max_tokens=max_tokens, stream_options={"include_usage": True}, **extra)
        except openai.OpenAIError as exc:
            raise self._error(exc) from None
        calls: dict[int, _ToolBuffer] = {}
        finish: str | None = None
        usage: Usage | None = None
        try:
            async with stream:
                async for chunk in stream:
                    if chunk.usage is not None:
                        usage = Usage(chunk.usage.prompt_tokens or 0, chunk.usage.completion_tokens or 0,
                                      chunk.usage.total_tokens or 0)
                    for choice in chunk.choices:
                        delta = choice.delta
                        if delta is not None and delta.content:
                            yield TextDelta(delta.content)
                        for part in (delta.tool_calls or []) if delta is not None else []:
                            buf = calls.setdefault(part.index, _ToolBuffer())
                            buf.id = part.id or buf.id
                            if part.function is not None:
                                buf.name = part.function.name or buf.name
                                if part.function.arguments:
                                    buf.arguments.append(part.function.arguments)
                        if choice.finish_reason:
                            finish = choice.finish_reason
        except openai.OpenAIError as exc:
            raise self._error(exc) from None
        if finish is None:
            # The body ended cleanly but the answer did not: treat it as the dropped connection it is.
            raise AIUnavailable("the AI service ended the answer early; try again")
        for index in sorted(calls):
            buf = calls[index]
            if buf.name:
                yield ToolCall(buf.id or f"call_{index}", buf.name, "".join(buf.arguments))
        if usage is not None:
            yield usage
        yield Finish(finish)

    async def complete_json(self, messages: Sequence[ChatMessage], *, name: str, schema: dict[str, Any],
                            max_tokens: int = 2000) -> dict[str, Any]:
        try:
            create: Any = self._client.chat.completions.create
            completion: ChatCompletion = await create(
                model=self.model, messages=list(messages), temperature=0.2, max_tokens=max_tokens,
                response_format={"type": "json_schema",
                                 "json_schema": {"name": name, "schema": schema, "strict": True}})
        except openai.OpenAIError as exc:
            raise self._error(exc) from None
        if not completion.choices or not completion.choices[0].message.content:
            raise AIRejected("the AI service returned no content for a structured answer")
        try:
            parsed = json.loads(completion.choices[0].message.content)
        except ValueError:
            raise AIRejected("the AI service returned invalid JSON for a structured answer") from None
        if not isinstance(parsed, dict):
            raise AIRejected("the AI service returned JSON that is not an object")
        return parsed

    async def transcribe(self, data: bytes, filename: str, mime_type: str) -> str:
        try:
            result = await self._client.audio.transcriptions.create(
                file=(filename, data, mime_type), model=self.config.transcribe_model)
        except openai.OpenAIError as exc:
            raise self._error(exc) from None
        return str(result.text).strip()


class UnconfiguredLLM:
    """No key: the server starts; every AI call says how to configure one."""

    configured = False

    def __init__(self, model: str = "") -> None:
        self.model = model

    def stream_chat(self, messages: Sequence[ChatMessage], *, tools: Sequence[dict[str, Any]] = (),
                    tool_choice: str = "auto", max_tokens: int = 1000) -> AsyncGenerator[ChatEvent, None]:
        raise AIUnavailable(HOW_TO_CONFIGURE)

    async def complete_json(self, messages: Sequence[ChatMessage], *, name: str, schema: dict[str, Any],
                            max_tokens: int = 2000) -> dict[str, Any]:
        raise AIUnavailable(HOW_TO_CONFIGURE)

    async def transcribe(self, data: bytes, filename: str, mime_type: str) -> str:
        raise AIUnavailable(HOW_TO_CONFIGURE)

    async def aclose(self) -> None:
        return None


def create_llm(config: LLMConfig) -> LLM:
    if not config.api_key.strip():
        log.info("OPENAI_API_KEY is not set: AI features answer ai_unavailable")
        return UnconfiguredLLM(config.model)
    return OpenAILLM(config)
