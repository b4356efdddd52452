"""Running the app under uvicorn, in one process or several, with the same graceful stop in each.

On SIGTERM a process stops accepting, lets every socket receive what is queued for it and closes it with 1012
(`ConversmeApp.drain`), then lets uvicorn finish in-flight requests and run the lifespan's shutdown. With
API_WORKERS > 1 a small supervisor (this module, not uvicorn's, whose workers are plain `uvicorn.Server`s that
close sockets without the drain) binds the socket once, starts the workers, replaces one that dies, and on
SIGTERM or SIGINT passes SIGTERM to each worker and waits for all of them."""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import socket
import sys
from multiprocessing.connection import wait
from multiprocessing.process import BaseProcess
from types import FrameType
from typing import TYPE_CHECKING

import uvicorn
from uvicorn.config import STARTUP_FAILURE

if TYPE_CHECKING:
    from server.app import ConversmeApp

log = logging.getLogger("conversme")


def _conversme_app(app: object) -> ConversmeApp | None:
    """The app under uvicorn's wrappers (each keeps the one it wraps as `.app`)."""
    # Imported here: a supervisor that never loads the app need not pay for importing it (seconds on a busy host).
    from server.app import ConversmeApp

    for _ in range(10):
        if isinstance(app, ConversmeApp):
            return app
        app = getattr(app, "app", None)
    return None


class DrainingServer(uvicorn.Server):
    """uvicorn's server with the drain before its own shutdown (which would close sockets at once)."""

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        for server in self.servers:
            server.close()  # stop accepting first: a socket opened now would not be drained
        app = _conversme_app(self.config.loaded_app)
        if app is not None:
            await app.drain()
        await super().shutdown(sockets)


def _worker(config: uvicorn.Config, sock: socket.socket) -> None:
    config.configure_logging()  # a spawned process starts without the parent's logging
    server = DrainingServer(config)
    server.run(sockets=[sock])
    if not server.started:
        sys.exit(STARTUP_FAILURE)  # tells the supervisor not to start another


def run(config: uvicorn.Config) -> int:
    """Serve until SIGTERM or SIGINT; `config.workers` processes."""
    if config.workers <= 1:
        server = DrainingServer(config)
        server.run()
        return 0 if server.started else STARTUP_FAILURE
    return _supervise(config)


def _supervise(config: uvicorn.Config) -> int:
    multiprocessing.allow_connection_pickling()
    spawn = multiprocessing.get_context("spawn")
    sock = config.bind_socket()
    # Signals wake the wait below through this pair, as a worker's exit does through its sentinel.
    wake_r, wake_w = socket.socketpair()
    wake_r.setblocking(False)
    wake_w.setblocking(False)
    stopping: list[int] = []

    def on_signal(sig: int, frame: FrameType | None) -> None:
        stopping.append(sig)

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    old_wakeup = signal.set_wakeup_fd(wake_w.fileno())

    def start() -> BaseProcess:
        process = spawn.Process(target=_worker, args=(config, sock), daemon=False)
        process.start()
        return process

    status = 0
    workers = [start() for _ in range(config.workers)]
    log.info("started %d workers under process %d", len(workers), os.getpid())
    try:
        while not stopping:
            wait([wake_r, *(w.sentinel for w in workers)])
            for i, worker in enumerate(workers):
                if stopping or worker.is_alive():
                    continue
                worker.join()
                if worker.exitcode == STARTUP_FAILURE:
                    # The app or its settings are broken: every replacement would fail the same way.
                    log.error("worker %s failed to start; stopping", worker.pid)
                    stopping.append(signal.SIGTERM)
                    status = STARTUP_FAILURE
                    break
                log.warning("worker %s exited (%s); starting another", worker.pid, worker.exitcode)
                workers[i] = start()
            while True:  # empty the wake-up pair
                try:
                    if not wake_r.recv(512):
                        break
                except BlockingIOError:
                    break
    finally:
        for worker in workers:
            if worker.is_alive() and worker.pid is not None:
                os.kill(worker.pid, signal.SIGTERM)  # each drains on its own, within SHUTDOWN_TIMEOUT
        for worker in workers:
            worker.join()
        signal.set_wakeup_fd(old_wakeup)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        wake_r.close()
        wake_w.close()
        sock.close()
    log.info("all workers stopped")
    return status
