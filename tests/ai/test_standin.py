"""`conversme ai-standin`, the local stand-in for the AI service: the real `openai` client (and the server's LLM
port) against the command's process, and a live prompt on a real server configured with it."""

from __future__ import annotations

import json
import socket
import subprocess
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from openai import AsyncOpenAI, AsyncStream
from openai.types import CompletionUsage
from openai.types.chat import ChatCompletionChunk

from ai.model import LLMConfig, OpenAILLM, TextDelta, ToolCall, Usage
from ai.standin import bind
from channels.client import RealtimeClient
from handlers.live.prompts import SYSTEM_PROMPT, describe_checklist
from handlers.live.suggestions import TOOL, Checklist, StepSnapshot, validate
from persistence.errors import AIRejected
from persistence.models import Process, Step, SubStep
from tests.ai.conftest import PROMPT, ai_frames, deltas, live_session, until_end
from tests.realtime.harness import BIN, ServerProcess, run_embedded, track
from tests.waiting import LIVENESS

pytestmark = pytest.mark.slow  # a real server process and the stand-in's


@pytest.fixture(scope="module")
def standin() -> Iterator[str]:
    """The command as documented, on a port it picks; its first line names the URL to use."""
    proc = track(subprocess.Popen([str(BIN), "ai-standin", "--port", "0", "--rate", "0"], stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT))
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline().decode()
        assert "listening on http://127.0.0.1:" in first, first + proc.stdout.read().decode()
        url = first.rsplit(" ", 1)[-1].strip()
        hint = proc.stdout.readline().decode() + proc.stdout.readline().decode()
        assert f"OPENAI_BASE_URL={url} OPENAI_API_KEY=standin ./scripts/serve.sh" in hint
        yield url
    finally:
        proc.terminate()
        proc.wait(LIVENESS)


def test_the_port_printed_accepts_connections_before_the_server_runs() -> None:
    # `conversme ai-standin` prints its URL, then starts uvicorn (seconds on a loaded machine): a client that
    # connects in between must wait for it, not be refused.
    sock = bind(0)
    try:
        with socket.create_connection(sock.getsockname(), timeout=LIVENESS):
            pass
    finally:
        sock.close()


def _process() -> Process:
    """A checklist as the server describes it to the model: step 1 done, step 2 open (with a substep)."""
    return Process(id=uuid.uuid4(), title="Valve check", description="Keep the line safe", steps=[
        Step(id=uuid.uuid4(), content="Close the valve", completed=True, sub_steps=[]),
        Step(id=uuid.uuid4(), content="Vent the line", completed=False,
             sub_steps=[SubStep(id=uuid.uuid4(), content="Open the vent", completed=False)]),
        Step(id=uuid.uuid4(), content="Log the pressure", completed=False, sub_steps=[])])


def _messages(process: Process | None, question: str) -> list[dict[str, str]]:
    procedure = describe_checklist(process) if process else "## Procedure\nNo procedure is linked to this session."
    return [{"role": "system", "content": f"{SYSTEM_PROMPT}\n\n{procedure}"},
            {"role": "user", "content": f"Ada Lovelace (@ada): {question}", "name": "ada"}]


async def test_the_openai_client_streams_an_answer_and_a_suggestion_for_the_next_open_step(standin: str) -> None:
    process = _process()
    client = AsyncOpenAI(base_url=standin, api_key="standin")
    try:
        # Plain dicts, as the server sends them (the SDK's TypedDict overloads add nothing here).
        create: Any = client.chat.completions.create
        stream: AsyncStream[ChatCompletionChunk] = await create(
            model="gpt-4o-mini", messages=_messages(process, "what next?"), stream=True, tools=[TOOL],
            tool_choice="auto", stream_options={"include_usage": True})
        texts: list[str] = []
        arguments: list[str] = []
        names: list[str] = []
        finishes: list[str] = []
        usage: CompletionUsage | None = None
        async with stream:
            async for chunk in stream:
                usage = chunk.usage or usage
                for choice in chunk.choices:
                    if choice.delta.content:
                        texts.append(choice.delta.content)
                    for call in choice.delta.tool_calls or []:
                        if call.function and call.function.name:
                            names.append(call.function.name)
                        if call.function and call.function.arguments:
                            arguments.append(call.function.arguments)
                    if choice.finish_reason:
                        finishes.append(choice.finish_reason)
    finally:
        await client.close()
    text = "".join(texts)
    assert len(texts) > 10  # word by word, not one block
    assert "what next?" in text and "Ada" not in text  # the question, without the author prefix
    assert "1 of 3 steps are done" in text and "step 2: Vent the line" in text
    assert names == ["suggest_process_actions"] and finishes == ["tool_calls"] and len(arguments) > 1
    assert usage is not None and usage.total_tokens == usage.prompt_tokens + usage.completion_tokens > 0
    # What the server makes of the call: one valid suggestion, completing step 2 by its real id.
    checklist = Checklist(process.id, tuple(StepSnapshot(s.id, s.completed, tuple(x.id for x in s.sub_steps))
                                            for s in process.steps))
    [op] = validate(json.loads("".join(arguments)), checklist)
    assert (op.operation, op.step_id) == ("complete_step", process.steps[1].id)


async def test_the_llm_port_gets_text_only_when_no_tool_is_wanted_and_refusals_for_the_rest(standin: str) -> None:
    llm = OpenAILLM(LLMConfig(api_key="standin", base_url=standin))
    try:
        process = _process()
        for step in process.steps:
            step.completed = True
        events = [e async for e in llm.stream_chat(_messages(process, "done?"), tools=[TOOL])]
        assert not [e for e in events if isinstance(e, ToolCall)]  # nothing left to suggest
        assert "Every step is complete" in "".join(e.text for e in events if isinstance(e, TextDelta))
        events = [e async for e in llm.stream_chat(_messages(_process(), "next?"), tools=[TOOL],
                                                   tool_choice="none")]
        assert not [e for e in events if isinstance(e, ToolCall)] and [e for e in events if isinstance(e, Usage)]
        events = [e async for e in llm.stream_chat(_messages(None, "hello"))]
        assert "No checklist is linked" in "".join(e.text for e in events if isinstance(e, TextDelta))
        # Plans and transcription are refused as an OpenAI-compatible server would: the server's fallbacks show.
        with pytest.raises(AIRejected, match="structured"):
            await llm.complete_json(_messages(None, "plan"), name="plan", schema={"type": "object"})
        with pytest.raises(AIRejected, match="cannot transcribe"):
            await llm.transcribe(b"RIFF....WAVE", "a.wav", "audio/wav")
    finally:
        await llm.aclose()


@pytest.fixture(scope="module")
def embedded_with_standin(standin: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """The embedded default (SQLite, memory://) started with the two settings the stand-in prints."""
    with run_embedded(tmp_path_factory.mktemp("standin"), OPENAI_BASE_URL=standin,
                         OPENAI_API_KEY="standin") as server:
        yield server


async def test_a_live_prompt_streams_deltas_and_completes_with_a_suggestion(
        embedded_with_standin: ServerProcess) -> None:
    server = embedded_with_standin
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as api:
        s = await live_session(api)
        async with RealtimeClient(server.ws_url, s.owner.token) as alice, \
                RealtimeClient(server.ws_url, s.member.token) as bob:
            await alice.join(s.topic)
            await bob.join(s.topic)
            reply = await alice.push(s.topic, PROMPT, {"text": "Where are we?"})
            got_a, got_b = await until_end(alice, s.topic), await until_end(bob, s.topic)
            assert ai_frames(got_a) == ai_frames(got_b)
            ds = deltas(got_a)
            end = got_a[-1]
            assert len(ds) > 10 and end["event"] == "ai.completed" and end["data"]["streamId"] == reply["streamId"]
            assert end["data"]["text"] == "".join(d["data"]["text"] for d in ds)
            assert "Where are we?" in end["data"]["text"] and "0 of 2 steps are done" in end["data"]["text"]
            [op] = end["data"]["suggestedOperations"]
            assert op["operation"] == "complete_step" and op["stepId"] == s.steps[0]["id"]
            # The suggestion applies: the first step is ticked for everyone.
            await bob.push(s.topic, "operation.apply", op)
            applied = await alice.next(event="operation.applied", topic=s.topic)
            assert applied["data"]["operation"] == "complete_step"
        steps = (await api.get(f"/processes/{s.event['processId']}/steps", headers=s.owner.headers)).json()
        assert [step["completed"] for step in steps] == [True, False]

