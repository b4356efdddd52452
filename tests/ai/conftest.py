"""Fixtures for the live AI tests: the fake OpenAI-compatible upstream, two real server instances that use it
(PostgreSQL + Redis), and helpers to open a live session shared by an event's members."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from channels.client import RealtimeClient
from tests.conftest import REDIS_URL
from tests.fakes.openai_server import FakeOpenAI
from tests.realtime.conftest import embedded, pg_db  # noqa: F401  (fixtures reused here)
from tests.realtime.harness import Person, ServerProcess, event_with, migrate, person, server_env

# The contract's push names (`ai.prompt` and `ai.cancel` are the same pushes, for noun.verb-only clients).
PROMPT, CANCEL = "prompt", "cancel"
TERMINAL = ("ai.completed", "ai.error", "ai.cancelled")


def ai_env(base: dict[str, str], fake: FakeOpenAI, **extra: str) -> dict[str, str]:
    env = {**base, "OPENAI_API_KEY": "test", "OPENAI_BASE_URL": fake.url, "OPENAI_MODEL": "fake-model",
           "OPENAI_TIMEOUT": "2", "AI_LEASE_SECONDS": "2"}
    env.update(extra)
    return env


@pytest.fixture(scope="session")
def fake_openai() -> Iterator[FakeOpenAI]:
    fake = FakeOpenAI().start()
    try:
        yield fake
    finally:
        fake.stop()


@dataclass
class AICluster:
    a: ServerProcess
    b: ServerProcess
    env: dict[str, str]
    fake: FakeOpenAI

    def api(self, server: ServerProcess | None = None) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=(server or self.a).url, timeout=30)


@pytest.fixture(scope="module")
def ai_cluster(pg_db: str, fake_openai: FakeOpenAI,  # noqa: F811
               tmp_path_factory: pytest.TempPathFactory) -> Iterator[AICluster]:
    env = ai_env(server_env(pg_db, REDIS_URL, tmp_path_factory.mktemp("ai")), fake_openai)
    migrate(env)
    a, b = ServerProcess(env).start(), ServerProcess(env).start()
    try:
        yield AICluster(a, b, env, fake_openai)
    finally:
        a.stop()
        b.stop()


@dataclass
class Session:
    owner: Person
    member: Person
    event: dict[str, Any]
    context_id: str
    steps: list[dict[str, Any]]

    @property
    def topic(self) -> str:
        return f"live:{self.context_id}"

    @property
    def event_topic(self) -> str:
        return f"event:{self.event['id']}"


async def live_session(api: httpx.AsyncClient) -> Session:
    """Alice's session about an event with a two-step checklist; Bob is a confirmed participant."""
    alice, bob = await person(api, "alice"), await person(api, "bob")
    event = await event_with(api, alice, bob)
    r = await api.post("/live/contexts", headers=alice.headers, json={"eventId": event["id"]})
    assert r.status_code == 201, r.text
    steps = (await api.get(f"/processes/{event['processId']}/steps", headers=alice.headers)).json()
    return Session(alice, bob, event, r.json()["id"], steps)


async def until_end(client: RealtimeClient, topic: str, timeout: float = 15.0) -> list[dict[str, Any]]:
    """Every frame of `topic` up to and including the next terminal AI event."""
    frames: list[dict[str, Any]] = []
    while True:
        frame = await client.next(timeout=timeout, op=None, topic=topic)
        frames.append(frame)
        if frame.get("op") == "msg" and frame.get("event") in TERMINAL:
            return frames
        if frame.get("op") == "left":
            return frames


def ai_frames(frames: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [f for f in frames if f.get("op") == "msg" and str(f.get("event", "")).startswith("ai.")]


def deltas(frames: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [f for f in frames if f.get("event") == "ai.delta"]
