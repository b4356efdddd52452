"""Who is connected to a topic, across instances: a sorted set of members by expiry and a hash of their metas
per topic. Each instance refreshes its own members' expiry and removes the members of instances that died
(their expiry ran out); joins and leaves reach the topic's listeners as presence frames on its channel."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any, cast

import orjson

from channels import messages as m
from channels.batching import Batcher
from channels.redis_client import RedisClient
from channels.redis_scripts import TRACK_MANY, UNTRACK, KeyLayout

log = logging.getLogger("conversme.hub")


class RedisPresence:
    def __init__(self, layout: KeyLayout, presence_ttl: float, topics: Callable[[], Iterable[str]]) -> None:
        self._layout = layout
        self._presence_ttl = presence_ttl
        self._topics = topics  # the topics this instance listens on: it expires their dead members
        self._redis: RedisClient | None = None
        self._mine: dict[tuple[str, str], str] = {}  # (topic, connection id) → user id, refreshed while alive
        # Presence writes and reads of connections joining at the same moment: one round trip for all of them.
        self._tracks: Batcher[tuple[str, str, str, str], dict[str, Any]] = Batcher(self._track_batch)
        # And leaves: a thousand sockets dropping at once (a proxy restart, a network blip) were a thousand
        # concurrent calls, past the client's pool of 100 connections — most failed, and their members stayed
        # present to everyone else, with no leave sent. One pipeline per batch instead.
        self._untracks: Batcher[tuple[str, str, str], bool] = Batcher(self._untrack_batch)
        self._presences: Batcher[str, dict[str, Any]] = Batcher(self._presence_many)

    def start(self, redis: RedisClient) -> None:
        self._redis = redis
        self._untrack = self._layout.script(redis, UNTRACK)
        self._track_many = self._layout.script(redis, TRACK_MANY)

    @property
    def redis(self) -> RedisClient:
        if self._redis is None:
            raise RuntimeError("hub not started")
        return self._redis

    async def close(self) -> None:
        await asyncio.gather(*(self.untrack(topic, conn, user) for (topic, conn), user in list(self._mine.items())),
                             return_exceptions=True)

    async def track(self, topic: str, connection_id: str, user_id: str, meta: dict[str, Any]) -> dict[str, Any]:
        """Who is present on `topic` once this connection is: one dict shared by the connections tracked together."""
        self._mine[(topic, connection_id)] = user_id
        return await self._tracks.get((topic, connection_id, user_id, orjson.dumps(meta).decode())) or {}

    async def _track_batch(self, keys: list[tuple[str, str, str, str]]
                           ) -> dict[tuple[str, str, str, str], dict[str, Any]]:
        now = time.time()
        by_topic: dict[str, list[str]] = {}
        for topic, connection_id, user_id, meta in keys:
            by_topic.setdefault(topic, []).extend(
                [f"{user_id}\t{connection_id}", meta, user_id, orjson.dumps(user_id).decode() + ":" + meta])
        calls = []
        for topic, args in by_topic.items():
            empty = m.presence(topic, {}, {})
            cut = empty.index('"joins":{') + len('"joins":{')
            calls.append((self._layout.presence_keys(topic), [(now + self._presence_ttl) * 1000, now * 1000,
                                                              self._layout.channel(topic), empty[:cut], empty[cut:],
                                                              *args]))
        if self._layout.cluster:
            # The topics' keys live on different nodes: one script call each, all at once (a cluster pipeline
            # does not load scripts on the nodes it reaches).
            replies = await asyncio.gather(*(self._track_many(keys=k, args=a) for k, a in calls))
        else:
            async with self.redis.pipeline(transaction=False) as pipe:
                for k, a in calls:
                    await self._track_many(keys=k, client=pipe, args=a)
                replies = await pipe.execute()
        present = {topic: _present(reply[0::2], reply[1::2]) for topic, reply in zip(by_topic, replies, strict=True)}
        return {key: present[key[0]] for key in keys}

    async def untrack(self, topic: str, connection_id: str, user_id: str) -> None:
        self._mine.pop((topic, connection_id), None)
        await self._untracks.get((topic, f"{user_id}\t{connection_id}", user_id))

    def _untrack_call(self, topic: str, member: str, user_id: str, now_ms: float) -> tuple[list[str], list[Any]]:
        return self._layout.presence_keys(topic), [member, now_ms, f"{user_id}\t", self._layout.channel(topic),
                                                   m.presence(topic, {}, {user_id: {}})]

    async def _untrack_batch(self, keys: list[tuple[str, str, str]]) -> dict[tuple[str, str, str], bool]:
        """UNTRACK per member, in the order asked: a user's last connection to go announces the leave."""
        now_ms = time.time() * 1000
        calls = [self._untrack_call(topic, member, user_id, now_ms) for topic, member, user_id in keys]
        if self._layout.cluster:
            await asyncio.gather(*(self._untrack(keys=k, args=a) for k, a in calls))
        else:
            async with self.redis.pipeline(transaction=False) as pipe:
                for k, a in calls:
                    await self._untrack(keys=k, client=pipe, args=a)
                await pipe.execute()
        return dict.fromkeys(keys, True)

    async def _untrack_member(self, topic: str, member: str, user_id: str) -> None:
        k, a = self._untrack_call(topic, member, user_id, time.time() * 1000)
        await self._untrack(keys=k, args=a)

    async def presence(self, topic: str) -> dict[str, Any]:
        return await self._presences.get(topic) or {}

    async def _presence_many(self, topics: list[str]) -> dict[str, dict[str, Any]]:
        """Who is present in each topic: the live members' metas, read for all topics in one round trip."""
        now_ms = time.time() * 1000
        async with self.redis.pipeline(transaction=False) as pipe:
            for topic in topics:
                zkey, hkey = self._layout.presence_keys(topic)
                pipe.zrangebyscore(zkey, now_ms, "+inf")
                pipe.hgetall(hkey)
            replies = await pipe.execute()
        out: dict[str, dict[str, Any]] = {}
        for i, topic in enumerate(topics):
            members, metas = cast(list[str], replies[2 * i]), cast(dict[str, str], replies[2 * i + 1])
            out[topic] = _present(members, [metas.get(member) for member in members])
        return out

    async def upkeep(self) -> None:
        """Keep our entries alive; expire the entries of instances that died (their TTL ran out)."""
        while True:  # until the hub cancels it
            await asyncio.sleep(self._presence_ttl / 3)
            try:
                now_ms = time.time() * 1000
                expiry = now_ms + self._presence_ttl * 1000
                # One ZADD per topic for all of our members in it (not one per connection): a storm's worth of
                # idle sockets is thousands of members in a few dozen rooms.
                by_topic: dict[str, dict[str, float]] = {}
                for (topic, conn), user in list(self._mine.items()):
                    by_topic.setdefault(topic, {})[f"{user}\t{conn}"] = expiry
                async with self.redis.pipeline(transaction=False) as pipe:
                    for topic, members in by_topic.items():
                        pipe.zadd(self._layout.presence_keys(topic)[0], members, xx=True)
                    await pipe.execute()
                for topic in list(self._topics()):
                    zkey = self._layout.presence_keys(topic)[0]
                    expired = cast(list[str], await self.redis.zrangebyscore(zkey, "-inf", now_ms))
                    for member in expired:
                        await self._untrack_member(topic, member, member.split("\t", 1)[0])
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("presence upkeep failed: %s", exc)


def _present(members: list[str], metas: list[str | None]) -> dict[str, Any]:
    """Presence by user: each live member ("user\tconnection") with its meta (JSON text; none: {})."""
    return {member.split("\t", 1)[0]: orjson.loads(meta) if meta else {}
            for member, meta in zip(members, metas, strict=True)}
