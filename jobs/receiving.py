"""Whether this process is receiving jobs, and how it waits between attempts when the queue's Redis is away:
capped exponential backoff with jitter, and a status the worker's heartbeat reports."""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field

# Reconnecting after a failed read: 0.2 s, doubling, at most 5 s apart (a restarted Redis is read again within
# seconds, a Redis that stays away costs one attempt per 5 s).
RECONNECT_FIRST = 0.2
RECONNECT_MAX = 5.0


class Backoff:
    """Capped exponential delays with ±25 % jitter, so that workers losing Redis together do not retry in step."""

    def __init__(self, first: float = RECONNECT_FIRST, cap: float = RECONNECT_MAX) -> None:
        self.first, self.cap = first, cap
        self._next = first

    def next(self) -> float:
        delay = self._next
        self._next = min(self._next * 2, self.cap)
        return delay * random.uniform(0.75, 1.25)

    def reset(self) -> None:
        self._next = self.first


@dataclass
class ReceiveStatus:
    """Whether this process is reading jobs from the queue now; the worker's heartbeat reports it. False from
    a failed read (or a receiver that ended) until the next read that works; `reconnects` counts those
    recoveries. `changed` is set on every flip, so the heartbeat can report it at once."""

    receiving: bool = False
    reconnects: int = 0
    since: float = field(default_factory=time.time)
    error: str = ""
    changed: asyncio.Event = field(default_factory=asyncio.Event, repr=False, compare=False)
    _interrupted: bool = field(default=False, init=False, repr=False)

    def up(self) -> None:
        if self.receiving:
            return
        if self._interrupted:  # the first start is not a reconnect
            self.reconnects += 1
        self.receiving, self._interrupted, self.since = True, False, time.time()
        self.changed.set()

    def down(self, error: str) -> None:
        self.error = error[:300]
        self._interrupted = True
        if self.receiving:
            self.receiving, self.since = False, time.time()
            self.changed.set()


def describe(exc: BaseException) -> str:
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:  # taskiq's receiver wraps its loops' errors
        exc = exc.exceptions[0]
    return f"{type(exc).__name__}: {exc}"
