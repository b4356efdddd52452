"""One lock for every install: uv.lock, refreshed by ./scripts/lock.sh. The scripts, CI and the Dockerfile install
it as it is (`uv sync --frozen`), and it must agree with pyproject.toml — a dependency added to pyproject.toml
without refreshing the lock fails here, not on a clean machine next month."""

from __future__ import annotations

import os
import shutil
import subprocess
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _uv() -> str:
    """The pinned uv the scripts set up (scripts/uv.sh exports it as UV); never skipped when it is missing."""
    found = os.environ.get("UV") or shutil.which("uv")
    if not found:
        tools = sorted((ROOT / ".tools").glob("uv-*/bin/uv"))
        found = str(tools[-1]) if tools else None
    assert found, "uv is not set up: run ./scripts/test.sh (it installs the pinned uv into .tools/)"
    return found


def test_lock_agrees_with_pyproject() -> None:
    # --check: fail (exit 1) if resolving pyproject.toml now would change uv.lock; --offline: decided from the
    # lock's recorded metadata, no index is asked.
    r = subprocess.run([_uv(), "lock", "--check", "--offline"], cwd=ROOT, capture_output=True, text=True,
                       timeout=120, env={**os.environ, "UV_PYTHON_DOWNLOADS": "never"})
    assert r.returncode == 0, f"uv.lock is out of date with pyproject.toml: run ./scripts/lock.sh\n{r.stderr}"


def test_lock_pins_every_dependency_and_no_django() -> None:
    lock = tomllib.loads((ROOT / "uv.lock").read_text())
    names = {p["name"] for p in lock["package"]}
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = [*project["dependencies"], *project["optional-dependencies"]["test"],
              *project["optional-dependencies"]["client"]]
    for spec in wanted:
        name = spec.split(";")[0].split("[")[0].split(">")[0].split("<")[0].split("=")[0].split("!")[0].strip()
        assert name.lower().replace("_", "-") in names, f"{spec} is not in uv.lock: run ./scripts/lock.sh"
    assert "django" not in names, "Django must not be installed (the API docs assets are vendored)"
    for package in lock["package"]:
        if package["name"] != "conversme":
            assert package.get("version"), package["name"]


def test_every_install_path_uses_the_frozen_lock() -> None:
    for script in ("scripts/serve.sh", "scripts/test.sh"):
        text = (ROOT / script).read_text()
        assert ". scripts/uv.sh" in text and "sync --frozen" in text, script
        assert "pip install" not in text, f"{script} must install from uv.lock, not resolve with pip"
    ci = (ROOT / ".ci" / "run").read_text()
    assert "./scripts/test.sh" in ci
    build = tomllib.loads((ROOT / "pyproject.toml").read_text())["build-system"]["requires"]
    assert all("==" in r for r in build), f"the build backend is pinned too: {build}"
