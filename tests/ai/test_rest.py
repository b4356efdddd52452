"""The AI routes over REST, in-process on SQLite and PostgreSQL, with the real `openai` client talking to the
fake upstream: POST /live/message (the original's shape), POST /live/transcribe, POST /plan/generate with the
model, and a session's messages for its members."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY
from starlette.applications import Starlette

from persistence import migrate
from server.app import create_app
from server.state import AppState
from tests.conftest import Account, make_settings, sign_up
from tests.fakes.openai_server import FakeOpenAI

WAV = b"RIFF\x24\x00\x00\x00WAVEfmt \x10\x00\x00\x00\x01\x00\x01\x00\x40\x1f\x00\x00" + b"\x00" * 64
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
BUDGET = 300


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
async def api(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, pg_db: str,
              fake_openai: FakeOpenAI) -> AsyncIterator[httpx.AsyncClient]:
    tmp = tmp_path_factory.mktemp(f"ai-rest-{request.param}")
    url = f"sqlite:///{tmp / 'ai.db'}" if request.param == "sqlite" else pg_db
    settings = make_settings(url, tmp, openai_api_key="test", openai_base_url=fake_openai.url,
                             openai_model="fake-model", openai_timeout=2.0, ai_tokens_per_minute_user=BUDGET,
                             max_audio_bytes=64 * 1024, login_rate_per_ip=10_000, login_rate_per_account=1000)
    app: Starlette = create_app(settings)
    async with app.router.lifespan_context(app):
        state: AppState = app.state.conversme
        if not settings.is_sqlite:
            await migrate.upgrade(state.engine)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test",
                                     timeout=30) as client:
            yield client


async def _event_with_checklist(api: httpx.AsyncClient, owner: Account) -> tuple[dict[str, Any], list[Any]]:
    r = await api.post("/templates", headers=owner.headers, json={
        "title": "Checklist", "steps": [{"content": "one", "subSteps": [{"content": "a"}]}, {"content": "two"}]})
    assert r.status_code == 201, r.text
    r = await api.post("/events", headers=owner.headers, json={
        "title": "Standup", "startTime": "2030-01-01T09:00:00Z", "endTime": "2030-01-01T10:00:00Z",
        "templateProcessId": r.json()["id"]})
    assert r.status_code == 201, r.text
    event = r.json()
    steps = (await api.get(f"/processes/{event['processId']}/steps", headers=owner.headers)).json()
    return event, steps


def _generations(outcome: str) -> float:
    return REGISTRY.get_sample_value("conversme_ai_generations_total", {"outcome": outcome}) or 0.0


async def test_live_message_answers_in_the_original_shape_and_keeps_the_history(api: httpx.AsyncClient) -> None:
    alice = await sign_up(api, "alice")
    completed = _generations("completed")
    first_tokens = REGISTRY.get_sample_value("conversme_ai_time_to_first_token_seconds_count") or 0.0
    r = await api.post("/live/message", headers=alice.headers, json={"message": "hello [n:4]",
                                                                      "metadata": {"client": "web"}})
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"response", "contextId", "suggestedOperations", "processModifications", "metadata"}
    assert body["response"] == "tok0 tok1 tok2 tok3 " and body["suggestedOperations"] == []
    assert body["processModifications"] is None
    assert body["metadata"]["client"] == "web" and body["metadata"]["status"] == "completed"
    assert body["metadata"]["usage"]["totalTokens"] == 124 and body["metadata"]["model"] == "fake-model"
    assert _generations("completed") == completed + 1
    assert REGISTRY.get_sample_value("conversme_ai_time_to_first_token_seconds_count") == first_tokens + 1
    # ... and /metrics serves them.
    scraped = (await api.get("/metrics")).text
    assert f'conversme_ai_generations_total{{outcome="completed"}} {completed + 1}' in scraped
    assert "conversme_ai_tokens_per_second_count" in scraped
    # snake_case input continues the same session.
    r = await api.post("/live/message", headers=alice.headers, json={"message": "more [n:2]",
                                                                      "context_id": body["contextId"]})
    assert r.status_code == 200, r.text
    assert r.json()["contextId"] == body["contextId"]
    context = (await api.get(f"/live/contexts/{body['contextId']}", headers=alice.headers)).json()
    assert [(m["role"], m["content"]) for m in context["messages"]] == [
        ("user", "hello [n:4]"), ("assistant", "tok0 tok1 tok2 tok3 "), ("user", "more [n:2]"),
        ("assistant", "tok0 tok1 ")]


async def test_live_message_offers_only_real_operations(api: httpx.AsyncClient, fake_openai: FakeOpenAI) -> None:
    alice = await sign_up(api, "alice")
    event, steps = await _event_with_checklist(api, alice)
    marker = fake_openai.script(uuid.uuid4().hex, text="Done with one?", tool_arguments={
        "is_process_related": True, "suggested_operations": [
            {"operation": "complete_step", "priority": "high", "description": "one", "step_id": steps[0]["id"]},
            {"operation": "complete_step", "priority": "high", "description": "fake", "step_id": str(uuid.uuid4())},
        ]})
    r = await api.post("/live/message", headers=alice.headers, json={"message": f"status? {marker}",
                                                                      "eventId": event["id"]})
    assert r.status_code == 200, r.text
    [op] = r.json()["suggestedOperations"]
    assert op["stepId"] == steps[0]["id"] and op["processId"] == event["processId"]
    # ... which POST /live/operation accepts as it is.
    r = await api.post("/live/operation", headers=alice.headers, json=op)
    assert r.status_code == 200 and r.json()["details"]["completed"] is True


async def test_ai_status_says_whether_a_model_is_configured(api: httpx.AsyncClient,
                                                             client: httpx.AsyncClient) -> None:
    """GET /live/ai: the console shows "AI off" before anyone types a prompt (signed-in callers only)."""
    assert (await api.get("/live/ai")).status_code == 401
    alice = await sign_up(api, "alice")
    r = await api.get("/live/ai", headers=alice.headers)
    assert r.status_code == 200 and r.json() == {"configured": True, "model": "fake-model"}
    # `client` is the plain test app: no OPENAI_API_KEY, so prompts there answer ai_unavailable.
    bob = await sign_up(client, "bob")
    r = await client.get("/live/ai", headers=bob.headers)
    assert r.status_code == 200 and r.json() == {"configured": False, "model": None}
    r = await api.post("/live/message", headers=alice.headers, json={"message": "still answers [n:1]"})
    assert r.status_code == 200
    r = await client.post("/live/message", headers=bob.headers, json={"message": "nobody answers"})
    assert r.status_code == 503 and r.json()["code"] == "ai_unavailable"


async def test_live_message_refuses_what_is_not_the_callers(api: httpx.AsyncClient) -> None:
    alice, mallory = await sign_up(api, "alice"), await sign_up(api, "mallory")
    r = await api.post("/live/message", headers=alice.headers, json={"message": "mine [n:1]"})
    context_id = r.json()["contextId"]
    r = await api.post("/live/message", headers=mallory.headers, json={"message": "x", "contextId": context_id})
    assert r.status_code == 404
    r = await api.get(f"/live/contexts/{context_id}/messages", headers=mallory.headers)
    assert r.status_code == 404 and "mine" not in r.text
    for bad in ({}, {"message": ""}, {"message": "x", "contextId": "not-a-uuid"}, {"message": "x" * 9000}):
        assert (await api.post("/live/message", headers=alice.headers, json=bad)).status_code == 422
    r = await api.get(f"/live/contexts/{context_id}/messages", headers=alice.headers)
    assert [m["content"] for m in r.json()] == ["mine [n:1]", "tok0 "]


@pytest.mark.parametrize(("marker", "status", "code"), [
    ("[429]", 429, "rate_limited"), ("[500]", 503, "ai_unavailable"), ("[400]", 502, "ai_rejected"),
    ("[stall]", 504, "timeout"),
])
async def test_live_message_upstream_errors_are_not_200(api: httpx.AsyncClient, marker: str, status: int,
                                                        code: str) -> None:
    alice = await sign_up(api, "alice")
    r = await api.post("/live/message", headers=alice.headers, json={"message": f"x {marker}"})
    errors = _generations("error")
    r = await api.post("/live/message", headers=alice.headers, json={"message": f"again {marker}"})
    assert r.status_code == status and r.json()["code"] == code, r.text
    assert _generations("error") == errors + 1
    if status == 429:
        assert r.headers["retry-after"] == "7"


async def test_one_answer_at_a_time_and_token_budgets(api: httpx.AsyncClient, fake_openai: FakeOpenAI) -> None:
    alice = await sign_up(api, "alice")
    first = await api.post("/live/message", headers=alice.headers, json={"message": "a [n:1]"})
    context_id = first.json()["contextId"]
    gate = uuid.uuid4().hex
    held = asyncio.create_task(api.post("/live/message", headers=alice.headers,
                                        json={"message": f"b [hold:{gate}] [n:20]", "contextId": context_id}))
    try:
        # Upstream asked (so the session's lease is taken) and held there until released: surely under way.
        await fake_openai.wait_started(f"[hold:{gate}]")
        r = await api.post("/live/message", headers=alice.headers, json={"message": "c", "contextId": context_id})
        assert r.status_code == 409 and r.json()["code"] == "conflict"
    finally:
        fake_openai.release(gate)
    assert (await held).status_code == 200
    # 121 + 140 tokens used in the last 60 s; the budget is 300: one more turn fits, then none.
    assert (await api.post("/live/message", headers=alice.headers, json={"message": "d [n:1]"})).status_code == 200
    r = await api.post("/live/message", headers=alice.headers, json={"message": "e [n:1]"})
    assert r.status_code == 429 and r.json()["code"] == "rate_limited" and int(r.headers["retry-after"]) >= 1


async def test_transcribe_returns_the_text_of_a_recording(api: httpx.AsyncClient, fake_openai: FakeOpenAI) -> None:
    alice = await sign_up(api, "alice")
    r = await api.post("/live/transcribe", headers=alice.headers,
                       files={"file": ("clip.bin", WAV, "application/octet-stream")})
    assert r.status_code == 200, r.text
    assert r.json() == {"text": fake_openai.transcript}
    sent = [q for q in fake_openai.requests if q.path == "/v1/audio/transcriptions"][-1]
    assert sent.body == {"model": "whisper-1", "bytes": len(WAV), "filename": "recording.wav"}
    r = await api.post("/live/transcribe", headers=alice.headers, files={"file": ("x.wav", PNG, "audio/wav")})
    assert r.status_code == 415
    r = await api.post("/live/transcribe", headers=alice.headers,
                       files={"file": ("big.wav", WAV + b"\x00" * 70_000, "audio/wav")})
    assert r.status_code == 413
    r = await api.post("/live/transcribe", headers=alice.headers, data={"other": "x"},
                       files={"nofile": ("a", b"x", "text/plain")})
    assert r.status_code == 422
    assert (await api.post("/live/transcribe", files={"file": ("a.wav", WAV, "audio/wav")})).status_code == 401


def _next_monday() -> datetime:
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return today + timedelta(days=(7 - today.weekday()) % 7 or 7)


async def test_plan_generate_uses_the_model_and_falls_back_to_the_heuristic(api: httpx.AsyncClient,
                                                                            fake_openai: FakeOpenAI) -> None:
    alice = await sign_up(api, "alice")
    folder = (await api.post("/directories", headers=alice.headers, json={"name": "Work"})).json()
    r = await api.post("/templates", headers=alice.headers, json={
        "title": "Review", "directoryId": folder["id"], "steps": [{"content": "read"}, {"content": "write"}]})
    template = r.json()["id"]
    tuesday = (_next_monday() + timedelta(days=1)).date().isoformat()
    marker = fake_openai.script(uuid.uuid4().hex, json_content={"summary": "Reviews on Tuesday.", "events": [
        {"title": "Review", "description": "go", "templateId": template, "day": tuesday, "start": "10:00",
         "minutes": 60},
        {"title": "Stray", "description": "", "templateId": str(uuid.uuid4()), "day": tuesday, "start": "12:00",
         "minutes": 30},
        {"title": "Night", "description": "", "templateId": None, "day": tuesday, "start": "23:30", "minutes": 30},
    ]})
    body = {"description": f"my week {marker}", "templateIds": [template], "hoursAllocation": 5}
    r = await api.post("/plan/generate", headers=alice.headers, json=body)
    assert r.status_code == 200, r.text
    plan = r.json()
    assert plan["generator"] == "model" and plan["summary"].startswith("Reviews on Tuesday.")
    [event] = plan["events"]
    assert event["processId"] == template and event["startTime"] == f"{tuesday}T10:00:00Z"
    assert event["endTime"] == f"{tuesday}T11:00:00Z"
    # The model fails: the heuristic answers and says why.
    r = await api.post("/plan/generate", headers=alice.headers, json={**body, "description": "x [500]"})
    assert r.json()["generator"] == "heuristic" and "could not plan" in r.json()["summary"]
    assert [e["processId"] for e in r.json()["events"]] == [template]
