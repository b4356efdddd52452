"""The LLM port with the real `openai` client against the fake upstream: streamed text, tool calls assembled
from split chunks, usage, every error mapped once, cancellation closing the request, no key."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator

import pytest

from ai.model import (
    HOW_TO_CONFIGURE,
    ChatEvent,
    Finish,
    LLMConfig,
    OpenAILLM,
    TextDelta,
    ToolCall,
    UnconfiguredLLM,
    Usage,
    create_llm,
)
from handlers.live.suggestions import TOOL
from persistence.errors import AIRejected, AITimeout, AIUnavailable, DomainError, RateLimited
from tests.fakes.openai_server import FakeOpenAI, Script
from tests.waiting import LIVENESS


@pytest.fixture
async def llm(fake_openai: FakeOpenAI) -> AsyncIterator[OpenAILLM]:
    port = OpenAILLM(LLMConfig(api_key="test", base_url=fake_openai.url, model="fake-model", timeout=1.5))
    yield port
    await port.aclose()


async def collect(llm: OpenAILLM, text: str, **options: object) -> list[ChatEvent]:
    return [e async for e in llm.stream_chat([{"role": "user", "content": text}], **options)]  # type: ignore[arg-type]


async def test_text_streams_as_deltas_then_usage_and_finish(llm: OpenAILLM, fake_openai: FakeOpenAI) -> None:
    events = await collect(llm, "hello [n:5]")
    assert [e for e in events if isinstance(e, TextDelta)] == [TextDelta(f"tok{i} ") for i in range(5)]
    assert events[-2:] == [Usage(120, 5, 125), Finish("stop")]
    body = fake_openai.find("hello [n:5]")[-1].body
    assert body["model"] == "fake-model" and body["stream_options"] == {"include_usage": True}


async def test_tool_call_fragments_are_assembled(llm: OpenAILLM, fake_openai: FakeOpenAI) -> None:
    arguments = {"is_process_related": True, "suggested_operations": [
        {"operation": "add_step", "priority": "low", "description": "d" * 50, "content": "c" * 40}]}
    marker = fake_openai.script(uuid.uuid4().hex, text="Answer first.", tool_arguments=arguments)
    events = await collect(llm, f"go {marker}", tools=[TOOL])
    calls = [e for e in events if isinstance(e, ToolCall)]
    assert len(calls) == 1 and calls[0].name == "suggest_process_actions" and calls[0].id.startswith("call_")
    assert json.loads(calls[0].arguments) == arguments
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "Answer first."
    assert events[-1] == Finish("tool_calls")


@pytest.mark.parametrize(("marker", "error", "words"), [
    ("[429]", RateLimited, "try again in 7 s"),
    ("[500]", AIUnavailable, "HTTP 500"),
    ("[401]", AIUnavailable, "the AI key was rejected"),
    ("[400]", AIRejected, "maximum context length"),
    ("[drop]", AIUnavailable, "dropped the connection"),
    ("[stall]", AITimeout, "did not answer within 1.5 s"),
])
async def test_upstream_errors_map_to_domain_errors(llm: OpenAILLM, marker: str, error: type[DomainError],
                                                    words: str) -> None:
    with pytest.raises(error) as caught:
        await collect(llm, f"x {marker}")
    assert type(caught.value) is error and words in caught.value.message
    if isinstance(caught.value, RateLimited):
        assert caught.value.retry_after == 7


async def test_cancelling_the_consumer_closes_the_upstream_request(llm: OpenAILLM, fake_openai: FakeOpenAI) -> None:
    tag = f"[id:{uuid.uuid4().hex}]"
    got: list[ChatEvent] = []
    three = asyncio.Event()

    async def consume() -> None:
        async for event in llm.stream_chat([{"role": "user", "content": f"{tag} [slow] [n:100]"}]):
            got.append(event)
            if len(got) == 3:
                three.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(three.wait(), LIVENESS)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    record = await fake_openai.wait_closed(tag, timeout=LIVENESS)
    assert record.closed_early and not record.finished and record.chunks_sent < 100  # closed before its end


async def test_structured_output_and_transcription(llm: OpenAILLM, fake_openai: FakeOpenAI) -> None:
    marker = fake_openai.script(uuid.uuid4().hex, json_content={"summary": "ok", "events": []})
    answer = await llm.complete_json([{"role": "user", "content": marker}], name="plan",
                                     schema={"type": "object"})
    assert answer == {"summary": "ok", "events": []}
    body = fake_openai.find(marker)[-1].body
    assert body["response_format"]["type"] == "json_schema" and body["response_format"]["json_schema"]["strict"]
    assert await llm.transcribe(b"RIFF\0\0\0\0WAVEfmt ", "recording.wav", "audio/wav") == fake_openai.transcript


async def test_without_a_key_every_call_says_how_to_configure() -> None:
    port = create_llm(LLMConfig(api_key="  "))
    assert isinstance(port, UnconfiguredLLM) and not port.configured
    with pytest.raises(AIUnavailable) as caught:
        port.stream_chat([])
    assert caught.value.message == HOW_TO_CONFIGURE
    with pytest.raises(AIUnavailable):
        await port.complete_json([], name="x", schema={})
    with pytest.raises(AIUnavailable):
        await port.transcribe(b"", "a", "audio/wav")


def test_scripts_default_to_a_plain_answer() -> None:
    assert Script().tool_arguments is None and Script().text
