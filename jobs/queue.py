"""What every job queue offers (`JobQueue`, its `Depth`), and how both queues turn a task and its arguments into
a taskiq message: labels carry when the job was enqueued and, for a delayed one, when it may run."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Protocol

from taskiq import AsyncBroker, TaskiqMessage
from taskiq.kicker import AsyncKicker
from taskiq.labels import prepare_label
from taskiq.message import BrokerMessage

from jobs.receiving import ReceiveStatus


@dataclass(frozen=True)
class Depth:
    waiting: int
    running: int
    delayed: int


class JobQueue(Protocol):
    url: str
    status: ReceiveStatus

    @property
    def broker(self) -> AsyncBroker: ...

    async def startup(self) -> None: ...

    async def shutdown(self) -> None: ...

    async def enqueue(self, task: str, kwargs: dict[str, Any], *, delay: float = 0.0, task_id: str | None = None,
                      labels: dict[str, Any] | None = None) -> str: ...

    async def promote_due(self) -> int: ...

    async def depth(self) -> Depth: ...

    async def count_delivery(self, key: str) -> int:
        """How many times the job run `key` has been delivered, this time included."""


async def kick_now(broker: Any, task: str, kwargs: dict[str, Any], job_id: str,
                    labels: dict[str, Any] | None) -> str:
    """Send a job to run as soon as a worker is free (both queues do this the same way)."""
    kicker: AsyncKicker[Any, Any] = AsyncKicker(task, broker, job_labels(labels, None))
    await kicker.with_task_id(job_id).kiq(**kwargs)
    return job_id


def job_labels(base: dict[str, Any] | None, not_before: float | None) -> dict[str, Any]:
    labels = dict(base or {})
    labels["enqueued_at"] = time.time()
    if not_before is not None:
        labels["not_before"] = not_before
    return labels


def job_message(broker: AsyncBroker, task: str, kwargs: dict[str, Any], task_id: str,
             labels: dict[str, Any]) -> BrokerMessage:
    values: dict[str, str] = {}
    types: dict[str, int] = {}
    for key, value in labels.items():
        values[key], types[key] = prepare_label(value)
    return broker.formatter.dumps(TaskiqMessage(task_id=task_id, task_name=task, labels=values,
                                                labels_types=types, args=[], kwargs=kwargs))
