"""No stream hangs forever: the instance generating dies (SIGKILL) or stops (SIGTERM) → everyone else gets
`ai.error` code `interrupted` once its lease runs out; and without a key the server starts and says how to add one."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from channels.client import RealtimeClient, ReplyError
from tests.ai.conftest import PROMPT, ai_env, live_session, until_end
from tests.conftest import REDIS_URL
from tests.fakes.openai_server import FakeOpenAI
from tests.realtime.harness import ServerProcess, migrate, server_env
from tests.waiting import LIVENESS

# Real server processes: left out of the quick loop (./scripts/test.sh -m "not slow").
pytestmark = pytest.mark.slow


@pytest.fixture
def two_servers(pg_db: str, fake_openai: FakeOpenAI, tmp_path: Path) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    env = ai_env(server_env(pg_db, REDIS_URL, tmp_path), fake_openai)
    migrate(env)
    a, b = ServerProcess(env).start(), ServerProcess(env).start()
    try:
        yield a, b
    finally:
        a.stop()
        b.stop()


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["killed", "stopped"])
async def test_generation_whose_instance_dies_ends_as_interrupted(two_servers: tuple[ServerProcess, ServerProcess],
                                                                  sig: int) -> None:
    a, b = two_servers
    async with httpx.AsyncClient(base_url=b.url, timeout=30) as api:
        s = await live_session(api)
        async with RealtimeClient(b.ws_url, s.member.token) as bob:
            await bob.join(s.topic)
            alice = RealtimeClient(a.ws_url, s.owner.token, reconnect=False)
            await alice.connect()
            await alice.join(s.topic)
            reply = await alice.push(s.topic, PROMPT, {"text": "a long one [slow] [n:400]"})  # generated on A
            for _ in range(3):
                await bob.next(event="ai.delta", topic=s.topic)
            a.stop(sig)
            # The survivor's watchdog ends it once the lease (AI_LEASE_SECONDS=2) runs out unrefreshed.
            frames = await until_end(bob, s.topic, timeout=LIVENESS)
            end = frames[-1]
            assert end["event"] == "ai.error" and end["data"]["code"] == "interrupted", end
            assert end["data"]["streamId"] == reply["streamId"]
            await alice.close()
            # Exactly one terminal event, and the session is free again on the surviving instance.
            await bob.push(s.topic, PROMPT, {"text": "again [n:3]"})
            rest = await until_end(bob, s.topic)
            assert [f["event"] for f in rest if f.get("event", "").startswith("ai.") and f["event"] != "ai.delta"] \
                == ["ai.started", "ai.completed"]


async def test_without_a_key_the_server_starts_and_says_how_to_configure_one(embedded: ServerProcess) -> None:
    async with httpx.AsyncClient(base_url=embedded.url, timeout=30) as api:
        s = await live_session(api)
        async with RealtimeClient(embedded.ws_url, s.owner.token) as alice:
            await alice.join(s.topic)
            with pytest.raises(ReplyError) as err:
                await alice.push(s.topic, PROMPT, {"text": "hello"})
            assert err.value.code == "ai_unavailable" and "OPENAI_API_KEY" in err.value.message
        r = await api.post("/live/message", headers=s.owner.headers, json={"message": "hi", "contextId": s.context_id})
        assert r.status_code == 503 and "OPENAI_BASE_URL" in r.json()["detail"]
        # Nothing was stored for the refused prompts.
        stored = (await api.get(f"/live/contexts/{s.context_id}/messages", headers=s.owner.headers)).json()
        assert stored == []
