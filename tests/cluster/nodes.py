"""A private Redis Cluster for tests: three masters, each with one replica, on free loopback ports in a temporary
directory, created with `redis-cli --cluster create`. Tests kill *these* processes (a master, to see its
replica take over), never the shared Redis.

A short `cluster-node-timeout` makes the replicas notice a dead master (and take over) within a few seconds.
Waits are on the cluster's own answers (CLUSTER INFO, ROLE), bounded by the liveness timeout, never fixed."""

from __future__ import annotations

import random
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import redis

from tests.faults.services import _wait
from tests.realtime.harness import track

NODE_TIMEOUT_MS = 1500


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def cluster_port() -> int:
    """A free port whose cluster bus port (+10000) is free too; Redis refuses ports above 55535 in cluster mode."""
    while True:
        port = random.randint(20000, 55535)
        if _free(port) and _free(port + 10000):
            return port


class ClusterNode:
    def __init__(self, root: Path) -> None:
        self.port = cluster_port()
        self.dir = root / str(self.port)
        self.dir.mkdir(parents=True)
        self.proc: subprocess.Popen[bytes] | None = None

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, socket_timeout=5, decode_responses=True)

    def start(self) -> None:
        binary = shutil.which("redis-server")
        assert binary, "redis-server (7 or newer) is required for the cluster tests"
        args = [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.dir),
                "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                "--cluster-node-timeout", str(NODE_TIMEOUT_MS), "--save", "", "--appendonly", "no",
                "--daemonize", "no", "--logfile", "redis.log",
                # A replica syncs at once (not after the default 5 s wait for more replicas), so it can take over.
                "--repl-diskless-sync-delay", "0"]
        self.proc = track(subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        _wait(lambda: self.answers() or self._exited(), f"cluster node on {self.port}")
        assert self.answers(), f"redis-server on {self.port} exited: see {self.dir / 'redis.log'}"

    def _exited(self) -> bool:
        return self.proc is not None and self.proc.poll() is not None

    def answers(self) -> bool:
        try:
            with self.client() as c:
                return bool(c.ping())
        except redis.RedisError:
            return False

    def role(self) -> str:
        with self.client() as c:
            return str(c.execute_command("ROLE")[0])

    def synced(self) -> bool:
        """A master, or a replica whose link to its master is up (only a synced replica may take over)."""
        with self.client() as c:
            info = c.info("replication")
            return bool(info.get("role") == "master" or info.get("master_link_status") == "up")

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL: gone at once, nothing written, no failover handshake."""
        if self.alive():
            assert self.proc is not None
            self.proc.kill()
            self.proc.wait(10)


class PrivateCluster:
    def __init__(self, masters: int = 3, replicas: int = 1) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="cmtest-cluster-"))
        self.masters, self.replicas = masters, replicas
        self.nodes = [ClusterNode(self.root) for _ in range(masters * (1 + replicas))]

    @property
    def url(self) -> str:
        """What REDIS_URL is set to: every node as a seed (any one that answers will do)."""
        return "redis+cluster://" + ",".join(f"127.0.0.1:{n.port}" for n in self.nodes)

    def start(self) -> PrivateCluster:
        for node in self.nodes:
            node.start()
        cli = shutil.which("redis-cli")
        assert cli, "redis-cli is required for the cluster tests"
        result = subprocess.run([cli, "--cluster", "create", *[f"127.0.0.1:{n.port}" for n in self.nodes],
                                 "--cluster-replicas", str(self.replicas), "--cluster-yes"],
                                capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
        _wait(lambda: self.healthy() and all(n.synced() for n in self.nodes),
              "the cluster to cover every slot on every node, with every replica in sync")
        return self

    def healthy(self) -> bool:
        """Every live node says the cluster is ok (all slots served) and agrees on the masters' count."""
        for node in self.nodes:
            if not node.alive():
                continue
            try:
                with node.client() as c:
                    info = c.execute_command("CLUSTER INFO")  # redis-py answers both as dictionaries
                    if info.get("cluster_state") != "ok":
                        return False
                    masters = [n for n in c.execute_command("CLUSTER NODES").values()
                               if "master" in n["flags"] and "fail" not in n["flags"] and n["slots"]]
                    if len(masters) != self.masters:
                        return False
            except redis.RedisError:
                return False
        return True

    def master_for(self, key: str) -> ClusterNode:
        """The live node serving `key`'s slot now."""
        found = self._serving(key)
        assert found is not None, f"no node serves {key}"
        return found

    def _serving(self, key: str) -> ClusterNode | None:
        with next(n for n in self.nodes if n.alive()).client() as c:
            slot = int(c.execute_command("CLUSTER KEYSLOT", key))
            for address, node in c.execute_command("CLUSTER NODES").items():
                if "master" not in node["flags"] or "fail" in node["flags"]:
                    continue
                if any(int(r[0]) <= slot <= int(r[-1]) for r in node["slots"]):
                    port = int(address.split(":")[1].split("@")[0])
                    return next(n for n in self.nodes if n.port == port)
        return None  # a node that has not heard of a failover yet

    def kill_master_of(self, key: str) -> ClusterNode:
        """SIGKILL the master of `key`'s slot and wait until its replica took over (the cluster is ok again)."""
        victim = self.master_for(key)
        victim.kill()
        _wait(lambda: self.healthy() and (self._serving(key) or victim).port != victim.port,
              f"a replica to take over from the killed master {victim.port}")
        return victim

    def stop(self) -> None:
        for node in self.nodes:
            node.kill()
        shutil.rmtree(self.root, ignore_errors=True)
