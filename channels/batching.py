"""One round trip for many callers: what is asked while the previous round trip is in flight waits for the
next one, which answers all of it.

A connection storm asks the same kind of question thousands of times a second (is this session still
standing, may this user join this room); one statement per question means one pool checkout, BEGIN, query and
COMMIT each, and the pool (10 connections by default) becomes the queue. Batched, a burst of 100 joins costs
one checkout and one statement. Nothing waits on a timer: a lone caller's question goes out at once, so a
quiet server answers as fast as before."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class Batcher(Generic[K, V]):
    """`await get(key)` → the value `run(keys)` returned for `key` (None when it returned none). `run` gets
    every distinct key asked since its last call, at most `max_batch` at a time; if it raises, every caller of
    that batch gets the exception."""

    def __init__(self, run: Callable[[list[K]], Awaitable[dict[K, V]]], max_batch: int = 256) -> None:
        self._run = run
        self._max = max_batch
        self._waiting: list[tuple[K, asyncio.Future[V | None]]] = []
        self._task: asyncio.Task[None] | None = None
        self.batches = 0  # statements run, for tests and benchmarks

    async def get(self, key: K) -> V | None:
        future: asyncio.Future[V | None] = asyncio.get_running_loop().create_future()
        self._waiting.append((key, future))
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        await asyncio.sleep(0)  # let the callers woken by the same event loop turn ask too
        while self._waiting:
            batch, self._waiting = self._waiting[:self._max], self._waiting[self._max:]
            keys = list(dict.fromkeys(key for key, _ in batch))
            self.batches += 1
            try:
                found = await self._run(keys)
            except asyncio.CancelledError:
                for _, future in batch + self._waiting:
                    future.cancel()
                raise
            except Exception as exc:  # handed to every caller of the batch
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for key, future in batch:
                if not future.done():
                    future.set_result(found.get(key))
