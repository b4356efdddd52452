"""A real S3-compatible server for the tests: moto's standalone server (the S3 HTTP API, signatures and all)
started as its own process on a loopback port, one per test session (per xdist worker); each test gets a bucket
of its own."""

from __future__ import annotations

import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from adapters.storage import StorageConfig
from tests.realtime.harness import free_port, track, wait_answering
from tests.waiting import LIVENESS

ACCESS_KEY = "testing-access-key"
SECRET_KEY = "testing-secret-key"
REGION = "us-east-1"


@dataclass
class S3Server:
    proc: subprocess.Popen[bytes]
    port: int

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def new_bucket(self) -> str:
        name = f"cm-{uuid.uuid4().hex[:12]}"
        # moto's server creates a bucket on a plain PUT, as S3 does on a signed one.
        r = httpx.put(f"{self.endpoint}/{name}", timeout=30)
        assert r.status_code == 200, r.text
        return name

    def objects(self, bucket: str) -> list[str]:
        """Every key in the bucket (S3 ListObjectsV2)."""
        r = httpx.get(f"{self.endpoint}/{bucket}", params={"list-type": "2"}, timeout=30)
        assert r.status_code == 200, r.text
        return sorted(part.split("</Key>")[0] for part in r.text.split("<Key>")[1:])

    def env(self, bucket: str, prefix: str = "", **extra: str) -> dict[str, str]:
        """The variables a server, worker or command reads to use the bucket."""
        return {"STORAGE_URL": f"s3://{bucket}{'/' + prefix if prefix else ''}", "AWS_ENDPOINT_URL_S3": self.endpoint,
                "AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY, "AWS_REGION": REGION, **extra}

    def config(self, bucket: str, prefix: str = "", **overrides: Any) -> StorageConfig:
        values: dict[str, Any] = dict(url=f"s3://{bucket}{'/' + prefix if prefix else ''}", endpoint=self.endpoint,
                                      access_key_id=ACCESS_KEY, secret_access_key=SECRET_KEY, region=REGION)
        values.update(overrides)
        return StorageConfig(**values)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def start_s3_server(log_dir: Path) -> S3Server:
    """Start moto's server and return once it answers; fails (never skips) when it cannot start."""
    port = free_port()
    log_path = log_dir / f"moto-{port}.log"
    proc = track(subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                                  stdout=log_path.open("ab"), stderr=subprocess.STDOUT))
    server = S3Server(proc, port)
    try:
        wait_answering(proc, f"{server.endpoint}/moto-api/", log_path, LIVENESS, "moto's S3 server")
    except RuntimeError:
        server.stop()
        raise
    return server
