"""Waiting in tests: for an event, never for a length of time.

- `eventually(check)` polls a condition until it holds. Its deadline is for liveness only (a hung test fails
  instead of hanging), generous enough for a loaded machine; how fast something happens is for the benches.
- An assertion that something did *not* arrive needs a barrier: publish a sentinel after it, wait for the
  sentinel, then assert on what came before. One topic's log is delivered in order, and everything one socket
  was sent before the sentinel reaches it first, so by then anything the earlier step sent has arrived:
  `chat_sentinel` does that on an event room through the socket itself, `notification_sentinel` on a user's
  own `user:` topic through REST.
"""

from __future__ import annotations

import asyncio
import inspect
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx

from channels.client import RealtimeClient

# A liveness bound only (a test that waits longer is stuck, not slow): generous, since two suite runs may share
# this machine's two cores, and a server process then takes tens of seconds to start.
LIVENESS = 90.0

Frame = dict[str, Any]


async def eventually(check: Callable[[], Any], timeout: float = LIVENESS, what: str = "",
                     interval: float = 0.05) -> Any:
    """The first truthy value of `check()` (a plain or an async function), polled until `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what or check}")
        await asyncio.sleep(interval)


def is_msg(frame: Frame, topic: str, event: str | None = None) -> bool:
    return frame.get("op") == "msg" and frame.get("topic") == topic and (event is None or frame.get("event") == event)


async def frames_until(client: RealtimeClient, match: Callable[[Frame], bool], timeout: float = LIVENESS,
                       what: str = "") -> list[Frame]:
    """Every frame `client` receives from now on, up to and including the first one `match` accepts."""
    frames: list[Frame] = []
    try:
        async with asyncio.timeout(timeout):
            while True:
                frame = await client.next(timeout=timeout, op=None)
                frames.append(frame)
                if match(frame):
                    return frames
    except TimeoutError:
        raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what or 'a frame'}; "
                             f"got {frames[-5:]}") from None


def sentinel_text() -> str:
    return f"sentinel-{uuid.uuid4().hex[:8]}"


async def chat_sentinel(client: RealtimeClient, topic: str) -> tuple[list[Frame], Frame]:
    """Send a chat message on the event room `topic` through `client` (which has joined it) and wait for it to
    come back: returns the frames received before it, and its own `msg`."""
    text = sentinel_text()
    await client.push(topic, "chat.send", {"text": text})
    frames = await frames_until(client, lambda f: is_msg(f, topic, "chat.message") and f["data"]["text"] == text,
                                what=f"the sentinel on {topic}")
    return frames[:-1], frames[-1]


async def post_notification_sentinel(api: httpx.AsyncClient, headers: dict[str, str]) -> str:
    """The user (`headers`) creates a notification for themselves, published on their `user:` topic; returns
    its text, for `is_notification_sentinel`."""
    text = sentinel_text()
    r = await api.post("/notifications", headers=headers, json={"title": "sentinel", "message": text})
    assert r.status_code == 201, r.text
    return text


def is_notification_sentinel(frame: Frame, user_id: str, text: str) -> bool:
    return is_msg(frame, f"user:{user_id}", "notification.created") and frame["data"].get("message") == text


async def notification_sentinel(api: httpx.AsyncClient, headers: dict[str, str], user_id: str,
                                *clients: RealtimeClient) -> list[list[Frame]]:
    """Publish a sentinel on `user:<user_id>` (see `post_notification_sentinel`) and wait until each of
    `clients` (joined to that topic) has it. Returns, per client, the frames received before it."""
    text = await post_notification_sentinel(api, headers)
    out = []
    for client in clients:
        frames = await frames_until(client, lambda f: is_notification_sentinel(f, user_id, text),
                                    what=f"the sentinel on user:{user_id}")
        out.append(frames[:-1])
    return out
