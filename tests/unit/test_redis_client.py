"""Redis URLs: one server as always, `redis+cluster://` seeds and options, hash-tagged key names on a cluster
only, and a REDIS_PREFIX with braces refused on a cluster (it would become every key's tag)."""

from __future__ import annotations

from pathlib import Path

import pytest

from channels.redis_client import cluster_seeds, is_cluster, is_redis, key
from server.settings import ConfigError, load_settings


def test_schemes() -> None:
    for url in ("redis://h:6379/0", "rediss://h", "unix:///tmp/r.sock", "redis+cluster://h:7000"):
        assert is_redis(url)
    assert not is_redis("memory://") and not is_cluster("redis://h")
    assert is_cluster("rediss+cluster://h:7000")


def test_cluster_seeds_and_options() -> None:
    seeds, options = cluster_seeds("rediss+cluster://user:p%40ss@10.0.0.1:7000,10.0.0.2:7001,[::1]:7002,host")
    assert seeds == [("10.0.0.1", 7000), ("10.0.0.2", 7001), ("::1", 7002), ("host", 6379)]
    assert options == {"ssl": True, "username": "user", "password": "p@ss"}
    assert cluster_seeds("redis+cluster://h:7000")[1] == {"ssl": False}


def test_key_names_carry_the_tag_only_on_a_cluster() -> None:
    assert key("cm:", "o:", "event:1", cluster=False) == "cm:o:event:1"
    assert key("cm:", "o:", "event:1", cluster=True) == "cm:o:{event:1}"


def test_braces_in_the_prefix_are_refused_on_a_cluster(tmp_path: Path) -> None:
    base = {"SECRET_KEY": "k" * 40, "DATA_DIR": str(tmp_path), "REDIS_PREFIX": "{app}:"}
    assert load_settings({**base, "REDIS_URL": "redis://h"}, env_file=None).redis_prefix == "{app}:"
    with pytest.raises(ConfigError, match="REDIS_PREFIX"):
        load_settings({**base, "REDIS_URL": "redis+cluster://h:7000"}, env_file=None)
