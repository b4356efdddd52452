"""`conversme dev`: the API, a worker and a scheduler in one terminal, for local development.

Each process is a `conversme <command>` child of this one, in its own session (so Ctrl-C reaches only
this supervisor, which then stops them in order) and set to receive SIGTERM should the supervisor die
(Linux: PR_SET_PDEATHSIG), so no orphan keeps a port or a queue consumer. Output goes line by line to
`DATA_DIR/logs/<name>.log` and, prefixed with the name, to the terminal. Ctrl-C or SIGTERM stops them all
(SIGTERM, then SIGKILL after SHUTDOWN_TIMEOUT plus a margin); a second Ctrl-C kills at once. A child that
exits on its own stops the others too, and its exit status becomes ours.

On the embedded default (SQLite, memory://) the API runs the jobs and the scheduler itself, so only the
API is started."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import signal
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from channels.redis_client import is_redis
from server.settings import Settings

_COLORS = ("36", "35", "33", "32", "34", "31")
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # pragma: no cover - runs in the forked child
    """preexec_fn: get SIGTERM when the supervisor dies, even by SIGKILL (Linux only; elsewhere a no-op)."""
    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass
class Child:
    name: str
    args: list[str]
    color: str
    proc: asyncio.subprocess.Process | None = None
    log: IO[str] | None = None
    pump: asyncio.Task[None] | None = None
    exit_code: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class Supervisor:
    def __init__(self, settings: Settings, out: IO[str] | None = None) -> None:
        self.settings = settings
        self.out = out or sys.stdout
        self.tty = self.out.isatty()
        self.logs_dir = settings.data_dir / "logs"
        self.children: list[Child] = []
        self.width = 10

    def say(self, name: str, color: str, line: str) -> None:
        label = f"{name:<{self.width}}|"
        if self.tty:
            label = f"\x1b[{color}m{label}\x1b[0m"
        self.out.write(f"{label} {line}\n")
        self.out.flush()

    def note(self, line: str) -> None:
        self.say("dev", "1", line)

    async def start(self, name: str, args: list[str]) -> Child:
        child = Child(name, args, _COLORS[len(self.children) % len(_COLORS)])
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        child.log = (self.logs_dir / f"{name}.log").open("a", encoding="utf-8")
        child.log.write(f"---- conversme {' '.join(args)} started {datetime.now(UTC).isoformat()} ----\n")
        child.log.flush()
        child.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "server.cli", *args,
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
            start_new_session=True, preexec_fn=_die_with_parent if sys.platform == "linux" else None,
            limit=1 << 20, env=_child_env(),
        )
        self.note(f"started {name} (pid {child.proc.pid}): conversme {' '.join(args)}")
        child.pump = asyncio.get_running_loop().create_task(self._pump(child))
        self.children.append(child)
        return child

    async def _pump(self, child: Child) -> None:
        assert child.proc is not None and child.proc.stdout is not None
        stream = child.proc.stdout
        while True:
            try:
                raw = await stream.readline()
            except ValueError:  # a line over the limit: take what is there
                raw = await stream.read(1 << 20)
            if not raw:
                break
            line = raw.decode("utf-8", "replace").rstrip("\n")
            if child.log is not None:
                child.log.write(line + "\n")
                child.log.flush()
            self.say(child.name, child.color, line)

    async def wait_first_exit(self, stop: asyncio.Event) -> Child | None:
        """Until `stop` is set (a signal) or some child exits; returns that child."""
        waits = {asyncio.ensure_future(c.proc.wait()): c for c in self.children if c.proc is not None}
        stopper = asyncio.ensure_future(stop.wait())
        done, _ = await asyncio.wait([*waits, stopper], return_when=asyncio.FIRST_COMPLETED)
        stopper.cancel()
        for fut in waits:
            if fut not in done:
                fut.cancel()
        exited = [waits[f] for f in done if f in waits]
        return exited[0] if exited else None

    async def stop_all(self, grace: float, kill_now: asyncio.Event) -> None:
        running = [c for c in self.children if c.proc is not None and c.proc.returncode is None]
        for child in running:
            assert child.proc is not None
            self.note(f"stopping {child.name} (pid {child.proc.pid})")
            with contextlib.suppress(ProcessLookupError):
                child.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace
        for child in running:
            assert child.proc is not None
            remaining = max(0.0, deadline - time.monotonic())
            waiter = asyncio.ensure_future(child.proc.wait())
            killer = asyncio.ensure_future(kill_now.wait())
            await asyncio.wait([waiter, killer], timeout=remaining, return_when=asyncio.FIRST_COMPLETED)
            killer.cancel()
            if child.proc.returncode is None:
                self.note(f"{child.name} did not stop in time: killing it")
                with contextlib.suppress(ProcessLookupError):
                    child.proc.kill()
                await waiter
        for child in self.children:
            if child.pump is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(child.pump, timeout=5)
            if child.proc is not None:
                child.exit_code = child.proc.returncode
                self.note(f"{child.name} exited with {child.exit_code}")
            if child.log is not None:
                child.log.close()


def _child_env() -> dict[str, str]:
    import os

    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"  # lines reach the terminal as they are written
    return env


def _separate_jobs(settings: Settings) -> bool:
    return is_redis(settings.broker_url) and not settings.is_sqlite


async def _wait_healthy(url: str, proc: asyncio.subprocess.Process, timeout: float = 60.0) -> bool:
    def probe() -> bool:
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.returncode is None:
        if await asyncio.to_thread(probe):
            return True
        await asyncio.sleep(0.3)
    return False


async def run_dev(settings: Settings, host: str | None = None, port: int | None = None, init: bool = True,
                  jobs: bool = True, out: IO[str] | None = None) -> int:
    sup = Supervisor(settings, out)
    stop, kill_now = asyncio.Event(), asyncio.Event()
    loop = asyncio.get_running_loop()

    def on_signal() -> None:
        if stop.is_set():
            kill_now.set()  # a second Ctrl-C: no more waiting
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal)
    grace = settings.shutdown_timeout + 10.0
    try:
        if init:
            seed = await sup.start("init", ["init"])
            exited = await sup.wait_first_exit(stop)
            if exited is None:  # interrupted during init
                await sup.stop_all(grace, kill_now)
                return 0
            await sup.stop_all(grace, kill_now)
            if seed.exit_code != 0:
                sup.note("`conversme init` failed: not starting the server")
                return seed.exit_code or 1
            sup.children.clear()
        bind_host, bind_port = host or settings.api_host, port or settings.api_port
        api = await sup.start("api", ["serve", "--host", bind_host, "--port", str(bind_port)])
        if jobs and _separate_jobs(settings):
            await sup.start("worker", ["worker"])
            await sup.start("scheduler", ["scheduler"])
        elif jobs:
            sup.note("embedded default (SQLite or memory://): the API runs jobs and the scheduler itself")
        assert api.proc is not None
        shown = "127.0.0.1" if bind_host in ("0.0.0.0", "::") else bind_host
        if await _wait_healthy(f"http://{shown}:{bind_port}/health", api.proc):
            sup.note(f"ready: http://{shown}:{bind_port}  (console /console, API docs /docs); "
                     f"logs in {Path(sup.logs_dir)}/; Ctrl-C stops everything")
        exited = await sup.wait_first_exit(stop)
        if exited is not None:
            sup.note(f"{exited.name} exited ({exited.proc.returncode if exited.proc else '?'}): stopping the rest")
        await sup.stop_all(grace, kill_now)
        if exited is not None:
            return exited.exit_code or 1
        return 0
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
