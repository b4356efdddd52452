"""The Python client example of docs/realtime.md §17, run as written: against `./scripts/serve.sh` (the embedded
default, its seeded administrator) and against PostgreSQL + Redis (the administrator `conversme init` creates
there, its generated password given through the example's CONVERSME_PASSWORD). And the `client` extra names
every package the client and the example import."""

from __future__ import annotations

import ast
import importlib.metadata
import os
import re
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import REDIS_URL
from tests.realtime.harness import BIN, ServerProcess, server_env, track
from tests.waiting import LIVENESS

pytestmark = pytest.mark.slow  # real server processes

ROOT = Path(__file__).resolve().parents[2]
SECTION = re.compile(r"^## 17\. .*?^```python\n(.*?)^```", re.M | re.S)


def example() -> str:
    found = SECTION.search((ROOT / "docs" / "realtime.md").read_text(encoding="utf-8"))
    assert found, "docs/realtime.md §17 has no python block"
    return found.group(1)


@pytest.fixture(scope="module")
def serve_sh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """`./scripts/serve.sh --port P` as a new user runs it (DEBUG on, SQLite, memory://), its data elsewhere."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("DATABASE_", "REDIS_", "OPENAI_", "BROKER_", "SECRET_KEY", "DEBUG"))}
    env.update(DATA_DIR=str(tmp_path_factory.mktemp("serve_sh")), LOG_LEVEL="warning")
    # The script syncs .venv from uv.lock first (a no-op when it is in sync) and runs `conversme init`.
    server = ServerProcess(env, command=(str(ROOT / "scripts" / "serve.sh"),)).start(timeout=2 * LIVENESS)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def on_postgres(pg_db: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, str]]:
    """A PostgreSQL + Redis server, initialised as the README says (`conversme init` prints the password)."""
    env = server_env(pg_db, REDIS_URL, tmp_path_factory.mktemp("example_pg"))
    init = subprocess.run([str(BIN), "init"], env=env, capture_output=True, text=True, timeout=LIVENESS)
    assert init.returncode == 0, init.stderr
    password = re.search(r"admin password \(shown once, store it now\): (\S+)", init.stdout)
    assert password, init.stdout
    server = ServerProcess(env).start()
    try:
        yield server, password.group(1)
    finally:
        server.stop()


def run_example(tmp_path: Path, server: ServerProcess, **env: str) -> None:
    """Sign in as the administrator, make an event, run the example on it: it reports who is present, sends
    its chat line and prints it back from the room; deleting the event ends it (`left: deleted`)."""
    password = env.get("CONVERSME_PASSWORD", "admin1234")
    with httpx.Client(base_url=server.url, timeout=30) as http:
        r = http.post("/auth/token", data={"username": "admin@convers.me", "password": password})
        assert r.status_code == 200, r.text
        headers = {"Authorization": f"Bearer {r.json()['accessToken']}"}
        r = http.post("/events", headers=headers, json={"title": "Python example",
                                                         "startTime": "2030-01-01T09:00:00Z",
                                                         "endTime": "2030-01-01T10:00:00Z"})
        assert r.status_code == 201, r.text
        event_id = r.json()["id"]
        script = tmp_path / "listen.py"
        script.write_text(example(), encoding="utf-8")
        # Run from elsewhere than the repository: the example imports the installed package.
        proc = track(subprocess.Popen([sys.executable, str(script), event_id], cwd=tmp_path,
                                      env={**os.environ, "CONVERSME_URL": server.url, **env},
                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT))
        try:
            assert proc.stdout is not None
            lines = [proc.stdout.readline().decode() for _ in range(3)]
            assert lines[0] == "present: ['Administrator']\n", lines
            assert lines[1].startswith("sent "), lines
            sent = lines[1].split()[1]
            assert " chat.message " in lines[2] and sent in lines[2] and "hello from Python" in lines[2], lines
            assert http.delete(f"/events/{event_id}", headers=headers).status_code == 204
            rest = proc.stdout.read().decode()
            assert proc.wait(LIVENESS) == 0, rest
            assert rest.splitlines()[-1] == "left: deleted", rest
        finally:
            if proc.poll() is None:
                proc.kill()


def test_the_example_runs_as_written_against_serve_sh(serve_sh: ServerProcess, tmp_path: Path) -> None:
    run_example(tmp_path, serve_sh)


def test_the_example_runs_as_written_on_postgres_and_redis(on_postgres: tuple[ServerProcess, str],
                                                           tmp_path: Path) -> None:
    server, password = on_postgres
    run_example(tmp_path, server, CONVERSME_PASSWORD=password)


def _imports_of(source: str) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_the_client_extra_names_what_the_client_and_the_example_import() -> None:
    """Third-party imports of the example, channels/client.py and the channels modules it imports, transitively."""
    imported, seen = _imports_of(example()), set()
    todo = [m for m in imported if m.startswith("channels.")]
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        found = _imports_of((ROOT / (module.replace(".", "/") + ".py")).read_text(encoding="utf-8"))
        imported |= found
        todo += [m for m in found if m.startswith("channels.")]
    tops = {m.split(".")[0] for m in imported} - set(sys.stdlib_module_names) - {"channels", "__future__"}
    extra = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["client"]
    named = {re.split(r"[<>=\[;]", spec)[0].strip().lower() for spec in extra}
    distributions = importlib.metadata.packages_distributions()
    needed = {distributions[module][0].lower() for module in tops}
    assert needed == named, f"the client extra names {sorted(named)}; the client and example need {sorted(needed)}"
