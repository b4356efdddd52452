"""The hub's one pub/sub connection: the channels of the topics this process has listeners for (sharded
pub/sub on a cluster: SSUBSCRIBE on the node that owns each topic's slot), and the loop reading it. When Redis
goes away the loop reconnects with backoff, subscribes every topic again and tells the hub, which catches the
topics up from their history."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, cast

from redis.asyncio.client import PubSub
from redis.exceptions import RedisError

from channels.redis_client import RedisClient
from channels.redis_scripts import KeyLayout

log = logging.getLogger("conversme.hub")


class Subscriptions:
    def __init__(self, layout: KeyLayout, own: str, topics: Callable[[], Iterable[str]],
                 on_message: Callable[[dict[str, Any]], Awaitable[None]],
                 on_reconnect: Callable[[], Awaitable[None]]) -> None:
        self._layout = layout
        self._own = own  # a subscription of our own keeps the connection valid while no topic is subscribed
        self._topics = topics
        self._on_message = on_message
        self._on_reconnect = on_reconnect
        self._redis: RedisClient | None = None
        self._pubsub: PubSub | None = None

    async def open(self, redis: RedisClient) -> None:
        self._redis = redis
        self._pubsub = redis.pubsub()
        if self._layout.cluster:
            await self._pubsub.ssubscribe(self._own)
            for topic in self._topics():  # one SSUBSCRIBE per topic: each may live on another node
                await self._pubsub.ssubscribe(self._layout.channel(topic))
        else:
            await self._pubsub.subscribe(self._own, *[self._layout.channel(t) for t in self._topics()])

    async def add(self, topic: str) -> None:
        assert self._pubsub is not None
        if self._layout.cluster:
            await self._pubsub.ssubscribe(self._layout.channel(topic))
        else:
            await self._pubsub.subscribe(self._layout.channel(topic))

    async def remove(self, topic: str) -> None:
        if self._pubsub is not None:
            with contextlib.suppress(RedisError, OSError):
                if self._layout.cluster:
                    await self._pubsub.sunsubscribe(self._layout.channel(topic))
                else:
                    await self._pubsub.unsubscribe(self._layout.channel(topic))

    async def close(self) -> None:
        if self._pubsub is not None:
            with contextlib.suppress(Exception):
                await self._pubsub.aclose()

    async def read(self) -> None:
        backoff = 0.1
        while True:  # until the hub cancels it
            try:
                assert self._pubsub is not None
                if self._layout.cluster:
                    message = await cast(Any, self._pubsub).get_sharded_message(timeout=1.0)
                else:
                    message = await self._pubsub.get_message(timeout=1.0)
                backoff = 0.1
                if message is not None:
                    await self._on_message(message)
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError, RuntimeError) as exc:
                # RuntimeError: redis-py dropped the pub/sub connection after an error ("connection not set").
                log.warning("hub lost Redis (%s); reconnecting in %.1f s", exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 2.0)
                try:
                    await self._reconnect()
                except Exception as again:
                    log.info("Redis still unreachable: %s", again)
            except Exception:
                log.exception("hub reader failed on a message")
                await asyncio.sleep(0.01)  # never spin without yielding

    async def _reconnect(self) -> None:
        await self.close()
        assert self._redis is not None
        await self.open(self._redis)
        await self._on_reconnect()
