"""The in-process queue (`memory://`, the embedded default): the server runs its own jobs."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncGenerator
from typing import Any

from taskiq import AckableMessage, AsyncBroker
from taskiq.message import BrokerMessage

from jobs.queue import Depth, job_labels, job_message, kick_now
from jobs.receiving import ReceiveStatus


class LocalBroker(AsyncBroker):
    """In-process broker: jobs go on an asyncio queue and this process's own taskiq receiver runs them (the
    same receive path as a worker). Nothing survives the process; the state in the database does, and the
    scheduler's sweeps re-enqueue what a restart lost."""

    def __init__(self) -> None:
        super().__init__()
        self.status = ReceiveStatus()
        self._queue: asyncio.Queue[bytes] = asyncio.Queue()
        self.outstanding = 0
        self._idle = asyncio.Event()
        self._idle.set()

    async def kick(self, message: BrokerMessage) -> None:
        self.outstanding += 1
        self._idle.clear()
        self._queue.put_nowait(message.message)

    async def listen(self) -> AsyncGenerator[AckableMessage, None]:
        self.status.up()  # nothing between this process and its own queue can fail
        while True:
            data = await self._queue.get()
            yield AckableMessage(data=data, ack=self._done)

    def _done(self) -> None:
        self.outstanding -= 1
        if self.outstanding <= 0:
            self.outstanding = 0
            self._idle.set()

    @property
    def waiting(self) -> int:
        return self._queue.qsize()

    async def join(self, timeout: float = 30.0) -> None:
        """Wait until every queued job has finished (tests, shutdown)."""
        await asyncio.wait_for(self._idle.wait(), timeout)


class LocalJobQueue:
    url = "memory://"

    def __init__(self) -> None:
        self.broker = LocalBroker()
        self.status = self.broker.status
        self._timers: set[asyncio.TimerHandle] = set()
        self._pending: set[asyncio.Task[Any]] = set()

    async def startup(self) -> None:
        await self.broker.startup()

    async def shutdown(self) -> None:
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()
        await self.broker.shutdown()

    async def enqueue(self, task: str, kwargs: dict[str, Any], *, delay: float = 0.0, task_id: str | None = None,
                      labels: dict[str, Any] | None = None) -> str:
        job_id = task_id or uuid.uuid4().hex
        if delay <= 0:
            return await kick_now(self.broker, task, kwargs, job_id, labels)
        message = job_message(self.broker, task, kwargs, job_id, job_labels(labels, time.time() + delay))
        loop = asyncio.get_running_loop()

        def fire() -> None:
            self._timers.discard(timer)
            kick = loop.create_task(self.broker.kick(message))
            self._pending.add(kick)
            kick.add_done_callback(self._pending.discard)

        timer = loop.call_later(delay, fire)
        self._timers.add(timer)
        return job_id

    async def promote_due(self) -> int:
        return 0  # delayed jobs are timers in this process

    async def count_delivery(self, key: str) -> int:
        return 1  # nothing is delivered twice inside one process

    async def depth(self) -> Depth:
        waiting = self.broker.waiting
        return Depth(waiting, max(self.broker.outstanding - waiting, 0), len(self._timers))
