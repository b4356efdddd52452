"""Redis clients by URL, for every part that shares state through Redis (hub, presence, rate limits, AI leases
and budgets, the job queue, stats).

- `redis://`, `rediss://`, `unix://`: one Redis server (`redis.asyncio.Redis`), as always.
- `redis+cluster://HOST:PORT[,HOST:PORT…]` (`rediss+cluster://` for TLS): a Redis Cluster through redis-py's
  cluster client, which learns the slot map from any seed node that answers and follows MOVED/ASK redirects
  and failovers. Managed services with cluster mode (ElastiCache, Azure Managed Redis, Memorystore) take the
  configuration endpoint as the one seed.

On a cluster every multi-key operation (a Lua script, a MULTI) must stay in one hash slot, so the keys of one
topic (or one queue) carry the same hash tag: `key(prefix, "o:", topic)` is `cm:o:{event:…}` on a cluster.
The prefix stays *outside* the tag, so deployments sharing a cluster under different REDIS_PREFIXes still
spread their topics over every slot. On one server the names are unchanged (no braces), so an upgrade keeps
its offsets and epochs."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeAlias
from urllib.parse import unquote, urlsplit

if TYPE_CHECKING:  # the scheme helpers are used by the CLI, which does not load redis-py to print its help
    from redis.asyncio import Redis
    from redis.asyncio.cluster import RedisCluster

SINGLE_SCHEMES = ("redis://", "rediss://", "unix://")
CLUSTER_SCHEMES = ("redis+cluster://", "rediss+cluster://")

RedisClient: TypeAlias = "Redis | RedisCluster"


def is_redis(url: str) -> bool:
    return url.startswith(SINGLE_SCHEMES + CLUSTER_SCHEMES)


def is_cluster(url: str) -> bool:
    return url.startswith(CLUSTER_SCHEMES)


def cluster_seeds(url: str) -> tuple[list[tuple[str, int]], dict[str, Any]]:
    """The seed nodes and connection options of a `redis+cluster://[user:password@]h:p,h:p` URL."""
    parts = urlsplit(url)
    netloc = parts.netloc
    options: dict[str, Any] = {"ssl": parts.scheme.startswith("rediss")}
    if "@" in netloc:
        auth, netloc = netloc.rsplit("@", 1)
        user, _, password = auth.partition(":")
        options["username"] = unquote(user) or None
        options["password"] = unquote(password) or None
    seeds = []
    for item in netloc.split(","):
        host, _, port = item.strip().rpartition(":")
        if not host:
            host, port = port, "6379"
        seeds.append((host.strip("[]"), int(port or 6379)))
    if not seeds:
        raise ValueError(f"no cluster node in {url!r}")
    return seeds, options


def connect(url: str, **kwargs: Any) -> RedisClient:
    """A client for `url` (see the module's docstring); `kwargs` are the usual connection options."""
    from redis.asyncio import Redis
    from redis.asyncio.cluster import ClusterNode, RedisCluster

    if not is_cluster(url):
        return Redis.from_url(url, **kwargs)
    seeds, options = cluster_seeds(url)
    # A failover takes the cluster a few seconds (node timeout + election): redirects and reconnects are retried
    # by the client itself, each command then re-reads the slot map.
    return RedisCluster(startup_nodes=[ClusterNode(h, p) for h, p in seeds], **options, **kwargs)


def key(prefix: str, kind: str, name: str, cluster: bool) -> str:
    """`<prefix><kind><name>`, with `name` as the hash tag on a cluster (so its keys share one slot)."""
    return f"{prefix}{kind}{{{name}}}" if cluster else f"{prefix}{kind}{name}"
