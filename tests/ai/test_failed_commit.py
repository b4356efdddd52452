"""A prompt whose transaction fails after its stream was reserved: the session's lease is given back at once and
nobody hears of a stream that never existed (before, everyone got `ai.error interrupted` a few seconds later)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import event as sa_event
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session
from starlette.applications import Starlette

from ai.runner import Generations
from server.app import create_app
from server.state import AppState
from tests.conftest import make_settings, sign_up


@pytest.fixture
async def ai_app(tmp_path: Path) -> AsyncIterator[Starlette]:
    # A configured model that is never reached: every prompt here fails before its stream could start.
    settings = make_settings(f"sqlite:///{tmp_path / 'ai.db'}", tmp_path, openai_api_key="sk-test",
                             openai_base_url="http://127.0.0.1:9/v1", ai_lease_seconds=60.0)
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        yield app


class Frames:
    user_id = "observer"

    def __init__(self) -> None:
        self.events: list[str] = []

    def on_msg(self, topic: str, offset: int, frame: str) -> None:
        self.events.append(frame)

    def on_presence(self, topic: str, frame: str) -> None: ...

    def on_removed(self, topic: str, user_id: str, reason: str) -> None: ...

    def on_resync(self, topic: str) -> None: ...


async def test_a_prompt_whose_commit_fails_gives_its_lease_back(ai_app: Starlette) -> None:
    state: AppState = ai_app.state.conversme
    generations = state.generations
    assert isinstance(generations, Generations)
    transport = httpx.ASGITransport(app=ai_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as api:
        alice = await sign_up(api, "alice")
        r = await api.post("/live/contexts", headers=alice.headers, json={"title": "Prep"})
        assert r.status_code == 201, r.text
        context_id = r.json()["id"]
        watcher = Frames()
        await state.hub.subscribe(f"live:{context_id}", watcher)

        def fail_commit(session: Any) -> None:
            raise OperationalError("COMMIT", {}, Exception("the connection was lost during COMMIT"))

        sa_event.listen(Session, "before_commit", fail_commit)
        try:
            r = await api.post("/live/message", headers=alice.headers,
                               json={"message": "what next?", "contextId": context_id})
        finally:
            sa_event.remove(Session, "before_commit", fail_commit)
        assert r.status_code == 503, r.text  # the database went away: retry later, nothing half-done
        # The lease is free at once (it would otherwise be held for AI_LEASE_SECONDS = 60 here) ...
        assert await generations.coordination.holder(context_id) is None
        # ... and the reservation is ended: no instance will announce it as interrupted.
        assert await generations.coordination.expired() == []
        assert watcher.events == []
        # The session takes the next prompt (it reaches the unreachable model, which is another story).
        info_before = generations.active
        r = await api.post("/live/message", headers=alice.headers,
                           json={"message": "again?", "contextId": context_id})
        assert r.status_code != 409, r.text
        assert generations.active == info_before
