"""The hub: one ordered, bounded log per topic, fanned out to this process's connections; presence and
removals. Picked by URL: `memory://` (one process, the embedded default) or `redis://` (many instances).

Contract for both backends:
- `publish` appends to the topic's log and returns the new offset; offsets are 1, 2, 3 … per epoch, and
  every subscriber on every instance sees one topic's entries in the same order.
- A listener subscribed to a topic receives every entry published after `subscribe` returned, in order,
  with no gap (a backend that loses entries calls `on_resync` instead — never a silent gap).
- `history(topic, after)` returns every entry with offset > after, or None when some are gone.
- Presence is per topic and user; entries of an instance that dies expire on their own.
- Durable topics (`channels.topics.is_durable`) are sequenced by the database, not the hub: the caller appends
  to the `TopicLog` inside its transaction and, after the commit, hands the entries to `publish_entries`. The
  hub then only fans out, reads positions and history from the log, and relays what a dead or cut-off
  instance committed but never published (`relay_once`, polled), so nothing committed is lost.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from channels.messages import LeftReason
from channels.redis_client import is_redis

HISTORY_SIZE = 1000
HISTORY_SECONDS = 600
PRESENCE_TTL = 30.0


class Listener(Protocol):
    """One local connection's view of the topics it joined. Calls are synchronous and must not block."""

    user_id: str

    def on_msg(self, topic: str, offset: int, frame: str) -> None: ...

    def on_presence(self, topic: str, frame: str) -> None: ...

    def on_removed(self, topic: str, user_id: str, reason: LeftReason) -> None: ...

    def on_resync(self, topic: str) -> None: ...


@dataclass(frozen=True)
class Entry:
    offset: int
    frame: str


@dataclass(frozen=True)
class Position:
    epoch: str
    offset: int


class TopicLog(Protocol):
    """The durable log of event and user topics, kept by the database (server/topic_log.py)."""

    async def position(self, topic: str) -> Position:
        """The topic's epoch and last committed offset (a topic never written has offset 0)."""

    async def history(self, topic: str, epoch: str, after: int) -> list[Entry] | None:
        """Every committed entry with offset > after, or None when some are gone or the epoch differs."""

    async def moved_since(self, seconds: float) -> list[tuple[str, Position]]:
        """Topics whose head moved in the last `seconds`, with their head now."""


class Hub(Protocol):
    async def start(self) -> None: ...

    def attach_log(self, log: TopicLog) -> None:
        """Durable topics' positions and history come from `log` from now on."""

    async def publish_entries(self, topic: str, epoch: str, entries: Sequence[Entry]) -> None:
        """Fan out entries the durable log already holds (committed, offsets assigned): to this process's
        listeners at once, and to the other instances. Idempotent: an offset a listener has is skipped."""

    async def relay_once(self) -> int:
        """Deliver to this process's listeners whatever the log committed that they have not received (an
        instance died before publishing, or Redis was away); returns the number of entries delivered."""

    async def close(self) -> None: ...

    async def publish(self, topic: str, event: str, data: Any) -> int:
        """Append `data` (encoded once here) to the topic's log; return its offset."""

    async def subscribe(self, topic: str, listener: Listener) -> None: ...

    async def unsubscribe(self, topic: str, listener: Listener) -> None: ...

    async def position(self, topic: str) -> Position: ...

    async def history(self, topic: str, epoch: str, after: int) -> list[Entry] | None: ...

    async def remove_user(self, topic: str, user_id: str, reason: LeftReason) -> None:
        """Take `user_id`'s connections off `topic` on every instance (they get `left`)."""

    async def track(self, topic: str, connection_id: str, user_id: str, meta: dict[str, Any]) -> dict[str, Any]:
        """Present `connection_id` (of `user_id`, shown as `meta`) on `topic`; who is present now, this one among
        them (as `presence` would answer, without asking again)."""

    async def untrack(self, topic: str, connection_id: str, user_id: str) -> None: ...

    async def presence(self, topic: str) -> dict[str, Any]: ...

    def local_stats(self) -> dict[str, int]: ...


def create_hub(url: str, instance_id: str, prefix: str = "cm:") -> Hub:
    """The hub for `url`; the server attaches the database's `TopicLog` (`attach_log`) once it has one."""
    if is_redis(url):
        from channels.redis_hub import RedisHub

        return RedisHub(url, instance_id, prefix=prefix)
    if url in ("", "memory://") or url.startswith("memory://"):
        from channels.memory_hub import MemoryHub

        return MemoryHub()
    raise ValueError(f"unsupported hub URL {url!r}: use memory:// or redis://")
