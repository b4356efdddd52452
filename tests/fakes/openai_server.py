"""A local OpenAI-compatible server for tests and benchmarks: it streams real SSE chunks the way the API does.

`POST /v1/chat/completions` with `stream: true` answers `data: {chat.completion.chunk}` lines: a first chunk
with the role, content deltas (one per token), tool-call deltas split across chunks (id and name in the
first, the arguments in pieces), a last choice chunk with `finish_reason`, a usage chunk when
`stream_options.include_usage`, then `data: [DONE]`. Without `stream` it answers one `chat.completion`
(structured output: the scripted JSON). `POST /v1/audio/transcriptions` answers `{text}`.

Behaviour is chosen per request by markers in the last user message:
  [slow]            tokens at `slow_rate` per second        [rate:N]   N tokens per second
  [n:N]             N tokens ("tok0 tok1 …")                [stall]    two tokens, then silence, connection open
  [429] [500] [401] [400]  that HTTP error                  [drop]     a few tokens, then the connection is cut
  [tools]           text, then a suggest_process_actions call with the scripted (or default) arguments
  [toolsonly]       only the tool call (the follow-up request, which carries the tool result, gets text)
  [script:NAME]     the script registered as NAME (text, tool arguments, JSON content)
  [id:X]            a tag recorded with the request (benchmarks match chunks to receipts with it)
  [hold:NAME]       the first token, then SSE comments (the client's read timeout stays quiet) until the test
                    calls `release(NAME)`: a stream that is surely still under way while the test acts
Every request is recorded (body, chunk send times, whether the client closed it before the end), so tests
can assert that cancelling a stream closed the upstream request, and wait for a request to arrive
(`wait_started`) instead of sleeping.

The SSE framing is the shipped stand-in's (`ai/standin.py`, `conversme ai-standin`); this fake keeps what
only tests need: the markers above, scripts, holds and the recording.

In tests: `FakeOpenAI().start()` runs it in a thread; as a process: `python -m tests.fakes.openai_server
--port 8765 --rate 50` (recorded requests at `GET /_control/requests`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import socket
import threading
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from ai.standin import DONE, Chunks, completion, error, last_user_text, words

DEFAULT_TEXT = "Step one looks done. Mark it complete, then move on to step two and check the valve."
MARKER = re.compile(r"\[([a-z0-9_]+)(?::([^\]]*))?\]", re.I)


@dataclass
class Script:
    text: str = DEFAULT_TEXT
    tool_arguments: dict[str, Any] | None = None
    json_content: dict[str, Any] | None = None


@dataclass
class Recorded:
    id: str
    path: str
    body: dict[str, Any]
    markers: dict[str, str]
    started: float
    chunks_sent: int = 0
    send_times: list[float] = field(default_factory=list)
    finished: bool = False
    closed_early: bool = False
    ended: float | None = None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class FakeOpenAI:
    def __init__(self, *, port: int | None = None, delay: float = 0.002, slow_rate: float = 20.0,
                 transcript: str = "check the valve on step two") -> None:
        self.port = port or _free_port()
        self.delay = delay
        self.slow_rate = slow_rate
        self.transcript = transcript
        self.scripts: dict[str, Script] = {}
        self.requests: list[Recorded] = []
        self._gates: dict[str, threading.Event] = {}  # [hold:NAME]; set from the test's thread
        self.app = Starlette(routes=[
            Route("/v1/chat/completions", self._chat, methods=["POST"]),
            Route("/v1/audio/transcriptions", self._transcribe, methods=["POST"]),
            Route("/_control/requests", self._list, methods=["GET"]),
        ])
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    # ---- running ----------------------------------------------------------------------------------

    def start(self) -> FakeOpenAI:
        # "critical": the [drop] mode cuts connections by raising, which uvicorn would log as an error.
        config = uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="critical",
                                lifespan="off")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="fake-openai", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("fake OpenAI server did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(10)

    def script(self, name: str, **values: Any) -> str:
        self.scripts[name] = Script(**values)
        return f"[script:{name}]"

    def find(self, tag: str) -> list[Recorded]:
        """Requests whose last user message carried `tag`."""
        return [r for r in list(self.requests) if tag in last_user_text(r.body)]

    def release(self, name: str) -> None:
        """Lets streams held by `[hold:name]` (now or later) go on."""
        self._gate(name).set()

    def _gate(self, name: str) -> threading.Event:
        return self._gates.setdefault(name, threading.Event())

    async def wait_started(self, tag: str, timeout: float = 30.0) -> Recorded:
        """The first request tagged `tag` once it reached this server (a liveness timeout, not a time bound)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.find(tag)
            if found:
                return found[0]
            await asyncio.sleep(0.02)
        raise AssertionError(f"no request tagged {tag} arrived")

    async def wait_closed(self, tag: str, timeout: float = 5.0) -> Recorded:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [r for r in self.find(tag) if r.ended is not None]
            if found:
                return found[-1]
            await asyncio.sleep(0.02)
        raise AssertionError(f"no finished request tagged {tag}")

    # ---- endpoints --------------------------------------------------------------------------------

    async def _list(self, request: Request) -> Response:
        return JSONResponse([asdict(r) for r in self.requests])

    async def _transcribe(self, request: Request) -> Response:
        async with request.form() as form:
            upload = form.get("file")
            size = len(await upload.read()) if upload is not None and not isinstance(upload, str) else 0
            record = Recorded(uuid.uuid4().hex, "/v1/audio/transcriptions",
                              {"model": form.get("model"), "bytes": size,
                               "filename": getattr(upload, "filename", None)}, {}, time.time(), finished=True,
                              ended=time.time())
        self.requests.append(record)
        return JSONResponse({"text": self.transcript})

    async def _chat(self, request: Request) -> Response:
        body = await request.json()
        markers = {m.group(1).lower(): (m.group(2) or "") for m in MARKER.finditer(last_user_text(body))}
        record = Recorded(uuid.uuid4().hex, "/v1/chat/completions", body, markers, time.time())
        self.requests.append(record)
        for status, kind in ((429, "requests"), (500, "server_error"), (401, "invalid_request_error"),
                             (400, "invalid_request_error")):
            if str(status) in markers:
                record.finished, record.ended = True, time.time()
                if status == 429:
                    return error(429, "Rate limit reached for requests", kind, "rate_limit_exceeded",
                                  {"retry-after": "7"})
                if status == 401:
                    return error(401, "Incorrect API key provided", kind, "invalid_api_key")
                if status == 400:
                    return error(400, "This model's maximum context length is exceeded", kind,
                                  "context_length_exceeded")
                return error(500, "The server had an error while processing your request", kind)
        script = self.scripts.get(markers.get("script", ""), Script())
        if not body.get("stream"):
            return JSONResponse(self._completion(record, body, script))
        return StreamingResponse(self._stream(record, body, script), media_type="text/event-stream",
                                 headers={"cache-control": "no-cache"})

    def _completion(self, record: Recorded, body: dict[str, Any], script: Script) -> dict[str, Any]:
        record.finished, record.ended = True, time.time()
        content = json.dumps(script.json_content) if script.json_content is not None else script.text
        return completion(f"chatcmpl-{record.id}", body.get("model", "fake"), content, 100, 20, "fp_fake")

    def _tokens(self, record: Recorded, script: Script) -> list[str]:
        if "n" in record.markers:
            return [f"tok{i} " for i in range(int(record.markers["n"] or 10))]
        return words(script.text)

    async def _stream(self, record: Recorded, body: dict[str, Any], script: Script) -> AsyncIterator[bytes]:
        markers = record.markers
        chunks = Chunks(f"chatcmpl-{record.id}", body.get("model", "fake"),
                        bool((body.get("stream_options") or {}).get("include_usage")), "fp_fake", int(time.time()))

        rate = float(markers["rate"]) if markers.get("rate") else self.slow_rate if "slow" in markers else 0.0
        delay = 1.0 / rate if rate > 0 else self.delay
        follow_up = any(m.get("role") == "tool" for m in body.get("messages") or [])
        tool_only = "toolsonly" in markers and not follow_up
        with_tools = ("tools" in markers or tool_only or script.tool_arguments is not None) and not follow_up
        tokens = [] if tool_only else (["Noted. ", "Suggestions ", "are ", "shown."] if follow_up
                                        else self._tokens(record, script))
        try:
            yield chunks.role()
            for i, token in enumerate(tokens):
                await asyncio.sleep(delay)
                record.send_times.append(time.time())
                record.chunks_sent += 1
                yield chunks.chunk({"content": token})
                if "hold" in markers and i == 0:
                    gate = self._gate(markers["hold"])
                    while not gate.is_set():
                        yield b": held\n\n"
                        await asyncio.sleep(0.05)
                if "stall" in markers and i == 1:
                    await asyncio.sleep(3600)  # silence with the connection open, until the client gives up
                if "drop" in markers and i == 2:
                    raise ConnectionResetError("fake upstream drops the connection")
            finish = "stop"
            extra = 0
            if with_tools:
                arguments = json.dumps(script.tool_arguments if script.tool_arguments is not None else {
                    "is_process_related": True, "suggested_operations": []})
                frames = chunks.tool_call(f"call_{record.id[:12]}", "suggest_process_actions", arguments)
                yield frames[0]
                for frame in frames[1:]:  # the arguments arrive in pieces
                    await asyncio.sleep(delay / 4)
                    yield frame
                finish, extra = "tool_calls", 20
            yield chunks.chunk({}, finish)
            if chunks.usage_wanted:
                yield chunks.usage(120, len(tokens) + extra)
            yield DONE
            record.finished = True
        finally:
            record.closed_early = not record.finished
            record.ended = time.time()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--rate", type=float, default=0.0, help="default tokens per second (0: as fast as it can)")
    args = parser.parse_args()
    fake = FakeOpenAI(port=args.port, delay=1.0 / args.rate if args.rate > 0 else 0.002)
    uvicorn.run(fake.app, host="127.0.0.1", port=args.port, log_level="critical", lifespan="off")


if __name__ == "__main__":
    main()
