"""The image: multi-stage, slim, non-root, pinned. No Docker engine runs here, so the builder stage's own
instructions (WORKDIR, COPY, ENV, RUN) are replayed in a temporary directory with a clean virtual
environment in place of /opt/venv; the result must install, run `conversme`, and serve /health and the
console from the installed package (not from this source tree)."""

from __future__ import annotations

import fnmatch
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.realtime.harness import free_port
from tests.ship.dockerfile import Stage, copy_sources, env_of, parse

ROOT = Path(__file__).resolve().parents[2]
STAGES = parse(ROOT / "Dockerfile")
BUILDER = next(s for s in STAGES if s.name == "builder")
FINAL = STAGES[-1]


def _uv_version() -> str:
    """The uv every script installs (scripts/uv.sh); the image pins the same one."""
    match = re.search(r"^UV_VERSION=(\S+)$", (ROOT / "scripts" / "uv.sh").read_text(), re.M)
    assert match, "scripts/uv.sh names no UV_VERSION"
    return match.group(1)


UV_VERSION = _uv_version()


def _dockerignore() -> list[str]:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def _ignored(path: str, patterns: list[str]) -> bool:
    ignored = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        pat = pattern.lstrip("!").rstrip("/")
        hit = fnmatch.fnmatch(path, pat) or fnmatch.fnmatch(path, pat.removeprefix("**/"))
        if hit:
            ignored = not negate
    return ignored


# ---- structure ---------------------------------------------------------------------------------------------

def test_two_stages_slim_python_and_non_root() -> None:
    assert len(STAGES) == 2, [s.image for s in STAGES]
    for stage in STAGES:
        assert re.fullmatch(r"python:3\.1[1-3]-slim(-\w+)?", stage.image), stage.image
    users = FINAL.all("USER")
    assert users and users[-1].args.strip() not in ("root", "0"), "the final stage must not run as root"
    # Only the virtual environment (and the entrypoint script) come into the final image: no sources, no pip.
    copies = [copy_sources(i) for i in FINAL.all("COPY")]
    from_builder = [(src, dest) for src, dest, flags in copies if flags.get("from") == "builder"]
    assert from_builder == [(["/opt/venv"], "/opt/venv")]
    others = [src for src, _, flags in copies if "from" not in flags]
    assert others == [["deploy/entrypoint.sh"]]
    assert not any("pip install" in i.args for i in FINAL.all("RUN"))


def test_one_image_for_every_role_with_health_check_and_port() -> None:
    assert FINAL.all("EXPOSE")[-1].args.split() == ["8000"]
    health = FINAL.all("HEALTHCHECK")[-1].args
    assert "/health" in health and "CMD" in health
    assert FINAL.all("CMD")[-1].words() == ["conversme", "serve"]
    assert FINAL.all("ENTRYPOINT")[-1].words() == ["conversme-entrypoint"]
    env: dict[str, str] = {}
    for instruction in FINAL.all("ENV"):
        env.update(env_of(instruction))
    assert env["API_HOST"] == "0.0.0.0" and env["PATH"].startswith("/opt/venv/bin")
    assert FINAL.all("STOPSIGNAL")[-1].args == "SIGTERM"


def test_builder_installs_only_the_lock_with_a_pinned_uv() -> None:
    runs = [i.args for i in BUILDER.all("RUN")]
    installs = [r for r in runs if "pip install" in r]
    assert installs == [f"python -m venv /opt/uv && /opt/uv/bin/pip install uv=={UV_VERSION}"], installs
    syncs = [r for r in runs if "uv sync" in r]
    assert len(syncs) == 2, syncs
    for sync in syncs:
        # --frozen: install uv.lock as it is, never resolve; --no-editable: the final stage has no sources.
        assert "--frozen" in sync and "--no-editable" in sync and "--extra" not in sync, sync
    assert "--no-install-project" in syncs[0]
    env: dict[str, str] = {}
    for instruction in BUILDER.all("ENV"):
        env.update(env_of(instruction))
    assert env["UV_PROJECT_ENVIRONMENT"] == "/opt/venv" and env["UV_PYTHON_DOWNLOADS"] == "never"
    copied = [src for i in BUILDER.all("COPY") for src in copy_sources(i)[0]]
    assert "uv.lock" in copied


def test_dockerignore_drops_local_state_and_keeps_what_the_build_copies() -> None:
    patterns = _dockerignore()
    for path in (".venv", "data", ".git", "node_modules", ".pytest_cache", ".mypy_cache", ".ruff_cache", ".env",
                 "server/__pycache__", "tests"):
        assert _ignored(path, patterns), f"{path} should be excluded from the build context"
    for stage in STAGES:
        for instruction in stage.all("COPY"):
            sources, _, flags = copy_sources(instruction)
            if "from" in flags:
                continue
            for src in sources:
                assert (ROOT / src).exists(), src
                assert not _ignored(src, patterns), f"{src} is copied but .dockerignore excludes it"


def test_entrypoint_reads_secret_files(tmp_path: Path) -> None:
    secret = tmp_path / "secret_key"
    secret.write_text("from-a-file-" + "x" * 40 + "\n")
    script = ROOT / "deploy" / "entrypoint.sh"
    show = ["sh", "-c", 'printf "%s|%s" "$SECRET_KEY" "${SECRET_KEY_FILE:-unset}"']
    base = {"PATH": os.environ["PATH"]}
    r = subprocess.run(["sh", str(script), *show], env={**base, "SECRET_KEY_FILE": str(secret)},
                       capture_output=True, text=True, check=True)
    assert r.stdout == "from-a-file-" + "x" * 40 + "|unset"
    # A value set directly wins over the file.
    r = subprocess.run(["sh", str(script), *show], env={**base, "SECRET_KEY_FILE": str(secret), "SECRET_KEY": "direct"},
                       capture_output=True, text=True, check=True)
    assert r.stdout.startswith("direct|")
    r = subprocess.run(["sh", str(script), *show], env={**base, "SECRET_KEY_FILE": str(tmp_path / "missing")},
                       capture_output=True, text=True)
    assert r.returncode == 2 and "cannot be read" in r.stderr


# ---- the builder's install steps, for real -------------------------------------------------------------------

def _replay(stage: Stage, root: Path) -> None:
    """WORKDIR/COPY/ENV/RUN of `stage`, with /opt/… (the image's virtual environments) under `root`."""
    bin_dir = root / "bin"
    bin_dir.mkdir()
    (bin_dir / "python").symlink_to(sys.executable)  # the image's `python`: a 3.11 interpreter
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "VIRTUAL_ENV", "PYTHON"))}
    env["PATH"] = f"{bin_dir}:{env['PATH']}"
    workdir = root
    for instruction in stage.instructions:
        if instruction.op == "WORKDIR":
            workdir = root / instruction.args.strip().lstrip("/")
            workdir.mkdir(parents=True, exist_ok=True)
        elif instruction.op == "ENV":
            env.update({k: v.replace("/opt/", f"{root}/opt/") for k, v in env_of(instruction).items()})
            env.pop("UV_NO_CACHE", None)  # the same wheels, from this machine's cache rather than downloaded again
        elif instruction.op == "COPY":
            sources, dest, _ = copy_sources(instruction)
            target = workdir / dest if not dest.startswith("/") else root / dest.lstrip("/")
            for src in sources:
                origin = ROOT / src
                if origin.is_dir():
                    shutil.copytree(origin, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
                else:
                    target.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(origin, target / origin.name)
        elif instruction.op == "RUN":
            command = instruction.args.replace("/opt/", f"{root}/opt/")
            result = subprocess.run(["sh", "-c", command], cwd=workdir, env=env, capture_output=True, text=True,
                                    timeout=900)
            assert result.returncode == 0, f"RUN {command}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"


@pytest.mark.slow
def test_builder_install_steps_work_in_a_clean_virtualenv(tmp_path: Path) -> None:
    venv = tmp_path / "opt" / "venv"
    _replay(BUILDER, tmp_path)
    # Outside the source tree, so that only the installed package can be imported.
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "REDIS_", "BROKER_", "PYTHON"))}
    env.update({"PATH": f"{venv / 'bin'}:{env['PATH']}", "DEBUG": "true", "DATA_DIR": str(run_dir / "data"),
                "ARGON2_TIME_COST": "1", "ARGON2_MEMORY_COST": "1024", "ARGON2_PARALLELISM": "1"})
    r = subprocess.run([str(venv / "bin" / "conversme"), "--help"], cwd=run_dir, env=env, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    for command in ("serve", "migrate", "worker", "scheduler", "dev"):
        assert command in r.stdout
    probe = ("import importlib.resources, server, server.app; "
             "files = importlib.resources.files('server') / 'console'; "
             "print(server.__file__); print(sorted(p.name for p in files.iterdir()))")
    r = subprocess.run([str(venv / "bin" / "python"), "-c", probe], cwd=run_dir, env=env, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    location, listing = r.stdout.splitlines()[:2]
    assert location.startswith(str(venv)), location
    for name in ("index.html", "console.js", "console.css", "realtime.js", "vendor"):
        assert name in listing
    r = subprocess.run([str(venv / "bin" / "conversme"), "migrate"], cwd=run_dir, env=env, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    # The installed server answers and serves the console from site-packages.
    port = free_port()
    server = subprocess.Popen([str(venv / "bin" / "conversme"), "serve", "--port", str(port)], cwd=run_dir, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert server.poll() is None and time.monotonic() < deadline, "the installed server did not start"
            time.sleep(0.2)
        page = httpx.get(f"http://127.0.0.1:{port}/console/", timeout=5)
        assert page.status_code == 200 and "conversme console" in page.text
        script = httpx.get(f"http://127.0.0.1:{port}/console/console.js", timeout=5)
        assert script.status_code == 200 and "javascript" in script.headers["content-type"]
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(5)
