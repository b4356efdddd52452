"""Publishing committed changes reliably: a change is already in the database when it is announced, so a
publish that fails (Redis restarting) is kept and retried in order instead of being dropped.

Per topic the order of announcements is kept: once a topic has a backlog, later messages for it queue
behind it. The backlog is bounded in age; what cannot be published within `max_age` is logged and dropped
(clients that missed it are told `recovered:false` when the hub's epoch changed, or reload on resync)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict, deque
from typing import Any

from channels.hub import Hub

log = logging.getLogger("conversme.outbox")


class Outbox:
    def __init__(self, hub: Hub, max_age: float = 300.0, max_items: int = 100_000) -> None:
        self.hub = hub
        self.max_age = max_age
        self.max_items = max_items
        self._backlog: OrderedDict[str, deque[tuple[float, str, Any]]] = OrderedDict()
        self._size = 0
        self._task: asyncio.Task[None] | None = None
        self.retried = 0
        self.dropped = 0

    @property
    def pending(self) -> int:
        return self._size

    async def publish(self, topic: str, event: str, data: Any) -> None:
        if topic not in self._backlog:
            try:
                await self.hub.publish(topic, event, data)
                return
            except Exception as exc:
                log.warning("publish of %s on %s failed (%s); will retry", event, topic, exc)
        self._queue(topic, event, data)

    def _queue(self, topic: str, event: str, data: Any) -> None:
        if self._size >= self.max_items:
            self.dropped += 1
            log.error("outbox full; dropping %s on %s", event, topic)
            return
        self._backlog.setdefault(topic, deque()).append((time.monotonic(), event, data))
        self._size += 1
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._drain())

    async def _drain(self) -> None:
        delay = 0.1
        while self._backlog:
            progressed = False
            for topic in list(self._backlog):
                queue = self._backlog[topic]
                while queue:
                    queued_at, event, data = queue[0]
                    if time.monotonic() - queued_at > self.max_age:
                        queue.popleft()
                        self._size -= 1
                        self.dropped += 1
                        log.error("gave up publishing %s on %s after %.0f s", event, topic, self.max_age)
                        continue
                    try:
                        await self.hub.publish(topic, event, data)
                    except Exception:
                        break
                    queue.popleft()
                    self._size -= 1
                    self.retried += 1
                    progressed = True
                if not queue:
                    del self._backlog[topic]
            if self._backlog:
                delay = 0.1 if progressed else min(delay * 2, 2.0)
                await asyncio.sleep(delay)

    async def close(self, grace: float = 5.0) -> None:
        if self._task is not None and not self._task.done():
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(asyncio.shield(self._task), grace)
            self._task.cancel()
        if self._size:
            log.error("%d messages left unpublished at shutdown", self._size)
