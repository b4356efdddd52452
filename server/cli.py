"""The `conversme` command: serve, migrate, init, create-admin, worker, scheduler, storage migrate, dev, ai-standin."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import logging
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from channels.redis_client import is_redis
from server.settings import ConfigError, Settings, load_settings

if TYPE_CHECKING:
    from jobs.worker import JobConfig

# Connections the kernel may hold waiting for accept(). uvicorn's default (2048) is smaller than a reconnect storm:
# when an instance dies, all its clients come back within ~0.1 s, and every connection past the queue has its SYN
# dropped and retried by TCP 1, 3, 7 s later (measured by bench/ws_storm.py: 5,000 clients, p50 resume 11 s). The
# kernel caps it at net.core.somaxconn (4096 here).
LISTEN_BACKLOG = 16384

# The WebSocket protocol under `/ws` (docs/deploy.md, "Supported servers"): conversme's own by default (16 KiB per
# idle joined socket against uvicorn's 26; three clean 5,000-client storm runs, docs/performance.md);
# `--ws websockets-sansio` runs uvicorn's.
WS_PROTOCOLS = {"lean": "server.uvicorn_ws:LeanWebSocket", "websockets-sansio": "websockets-sansio",
                "websockets": "websockets"}


def _serve(settings: Settings, args: argparse.Namespace) -> int:
    import uvicorn

    from server.logging import log_config
    from server.serving import run

    workers = args.workers or settings.api_workers
    ws = WS_PROTOCOLS[args.ws]
    if workers > 1 and settings.is_sqlite:
        print("conversme: several workers need PostgreSQL (DATABASE_URL); SQLite serves one process.",
              file=sys.stderr)
        return 2
    if workers > 1 and not is_redis(settings.redis_url):
        print("conversme: several workers need REDIS_URL so that they share one realtime hub.", file=sys.stderr)
        return 2
    config = uvicorn.Config(
        "server.app:create_app_from_env", factory=True, host=args.host or settings.api_host,
        port=args.port or settings.api_port, workers=workers, log_level=settings.log_level, backlog=LISTEN_BACKLOG,
        proxy_headers=False, server_header=False, ws=ws, ws_per_message_deflate=False,
        ws_ping_interval=settings.ws_heartbeat, ws_ping_timeout=settings.ws_heartbeat_timeout,
        ws_max_size=64 * 1024, timeout_graceful_shutdown=settings.shutdown_timeout,
        log_config=log_config(settings, "api"),
    )
    return run(config)


async def _migrate(settings: Settings, target: str, down: bool) -> None:
    from persistence import migrate
    from persistence.database import create_engine

    if settings.is_sqlite:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = create_engine(settings.database_url)
    try:
        if down:
            await migrate.downgrade(engine, target)
        else:
            await migrate.upgrade(engine, target)
        print(f"database at {await migrate.current_revision(engine) or 'base'}")
    finally:
        await engine.dispose()


async def _init(settings: Settings) -> None:
    import handlers.seed as seed
    from adapters.security import Passwords
    from persistence import migrate
    from persistence.database import create_engine, create_sessionmaker

    if settings.is_sqlite:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = create_engine(settings.database_url)
    try:
        await migrate.upgrade(engine)
        passwords = Passwords(settings.argon2_time_cost, settings.argon2_memory_cost, settings.argon2_parallelism)
        async with create_sessionmaker(engine).begin() as db:
            admin = seed.AdminSpec(email=settings.admin_email, password=settings.admin_password or None,
                                   debug=settings.debug)
            report = await seed.initialize(db, passwords, admin)
        for line in report.lines():
            print(line)
    finally:
        await engine.dispose()


async def _create_admin(settings: Settings, email: str, name: str, handle: str, password: str) -> None:
    import handlers.seed as seed
    from adapters.security import Passwords
    from persistence.database import create_engine, create_sessionmaker

    engine = create_engine(settings.database_url)
    try:
        passwords = Passwords(settings.argon2_time_cost, settings.argon2_memory_cost, settings.argon2_parallelism)
        async with create_sessionmaker(engine).begin() as db:
            created = await seed.ensure_admin(db, passwords, email=email, name=name, handle=handle,
                                              password=password)
        print(f"admin {email} {'created' if created else 'updated (password reset, is_admin set)'}")
    finally:
        await engine.dispose()


def _job_config(settings: Settings, args: argparse.Namespace) -> JobConfig:
    from jobs.worker import JobConfig

    return JobConfig(
        database_url=settings.database_url, hub_url=settings.redis_url, broker_url=settings.broker_url,
        redis_prefix=settings.redis_prefix,
        storage=settings.storage, job_timeout=settings.job_timeout, max_retries=settings.job_max_retries,
        retry_base=settings.job_retry_base, redeliver_after=settings.job_redeliver_seconds,
        concurrency=getattr(args, "concurrency", None) or settings.worker_concurrency,
        scheduler_interval=settings.scheduler_interval, max_page_size=settings.max_page_size,
        dashboard_url=settings.taskiq_dashboard_url, dashboard_token=settings.taskiq_dashboard_token,
        auto_reports=settings.auto_reports, name=getattr(args, "name", None) or "",
    )


def _run_jobs(settings: Settings, args: argparse.Namespace) -> int:
    """`conversme worker` / `conversme scheduler`: until SIGTERM or SIGINT, then a graceful stop."""
    import signal

    from jobs.worker import run_scheduler, run_worker

    if not is_redis(settings.broker_url):
        print(f"conversme: `{args.command}` needs BROKER_URL or REDIS_URL set to redis://; on memory:// the "
              "server runs its own jobs and scheduler.", file=sys.stderr)
        return 2
    if settings.is_sqlite:
        print("conversme: separate job processes need PostgreSQL (DATABASE_URL).", file=sys.stderr)
        return 2

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        cfg = _job_config(settings, args)
        await (run_worker(cfg, stop) if args.command == "worker" else run_scheduler(cfg, stop))

    asyncio.run(run())
    return 0


def _storage(settings: Settings, args: argparse.Namespace) -> int:
    from server.storage_migrate import migrate_to_bucket

    try:
        counts = asyncio.run(migrate_to_bucket(settings))
    except ValueError as exc:
        print(f"conversme: {exc}", file=sys.stderr)
        return 2
    for area, count in counts.items():
        print(count.line(area))
    return 0


def _dev_defaults() -> None:
    """`conversme dev` turns DEBUG on unless the environment or `.env` says otherwise (as scripts/serve.sh)."""
    import os
    from pathlib import Path

    from server.settings import read_env_file

    if "DEBUG" not in os.environ and "DEBUG" not in read_env_file(Path(".env")):
        os.environ["DEBUG"] = "true"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="conversme", description="Convers.me realtime server")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the server (uvicorn)")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--workers", type=int)
    serve.add_argument("--ws", choices=sorted(WS_PROTOCOLS), default="lean",
                       help="the WebSocket protocol: conversme's own (lean, the default) or one of uvicorn's")
    mig = sub.add_parser("migrate", help="upgrade the database to the newest revision")
    mig.add_argument("target", nargs="?", default=None)
    mig.add_argument("--down", action="store_true", help="downgrade to TARGET (default: base)")
    sub.add_parser("init", help="migrate and seed the admin, topics and template library (idempotent)")
    admin = sub.add_parser("create-admin", help="create an administrator, or reset one's password")
    admin.add_argument("--email", required=True)
    admin.add_argument("--name", default="Administrator")
    admin.add_argument("--handle", default=None)
    admin.add_argument("--password", default=None, help="prompted for when omitted")
    worker = sub.add_parser("worker", help="run background jobs from the Redis queue (BROKER_URL)")
    worker.add_argument("--concurrency", type=int, help="jobs run at once (default WORKER_CONCURRENCY)")
    worker.add_argument("--name", help="worker name in heartbeats and /admin/jobs (default host-pid)")
    sched = sub.add_parser("scheduler", help="claim due reminders and enqueue their jobs (any number may run)")
    sched.add_argument("--name", help="scheduler name in reminder claims (default host-pid)")
    storage = sub.add_parser("storage", help="file storage tasks")
    storage_sub = storage.add_subparsers(dest="storage_command", required=True)
    storage_sub.add_parser("migrate", help="copy the local upload and report files into the bucket STORAGE_URL "
                                           "names (idempotent; local files are kept)")
    dev = sub.add_parser("dev", help="local development: init, then the API, a worker and a scheduler together "
                                     "(logs in DATA_DIR/logs; Ctrl-C stops all)")
    dev.add_argument("--host")
    dev.add_argument("--port", type=int)
    dev.add_argument("--no-init", action="store_true", help="skip `conversme init` (migrate and seed) first")
    dev.add_argument("--no-jobs", action="store_true", help="start the API only")
    standin = sub.add_parser("ai-standin", help="a local stand-in for the AI service (no model, no key) on "
                                                "127.0.0.1, for trying live AI; prints the settings to use")
    standin.add_argument("--port", type=int, default=8765, help="port on 127.0.0.1 (0: any free one; default 8765)")
    standin.add_argument("--rate", type=float, help="words per second (default 25; 0: as fast as it can)")
    args = parser.parse_args(argv)
    if args.command == "ai-standin":  # needs no settings: it is not the server
        from ai.standin import run as run_standin

        return run_standin(args.port, args.rate)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s %(message)s")
    if args.command == "dev":
        _dev_defaults()
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"conversme: configuration error: {exc}", file=sys.stderr)
        return 2
    from server.logging import configure as configure_logging

    configure_logging(settings, "api" if args.command == "serve" else args.command)
    if args.command == "serve":
        return _serve(settings, args)
    if args.command == "dev":
        from server.dev import run_dev

        return asyncio.run(run_dev(settings, args.host, args.port, init=not args.no_init, jobs=not args.no_jobs))
    if args.command in ("worker", "scheduler"):
        return _run_jobs(settings, args)
    if args.command == "storage":
        return _storage(settings, args)
    if args.command == "migrate":
        target = args.target or ("base" if args.down else "head")
        asyncio.run(_migrate(settings, target, args.down))
        return 0
    if args.command == "init":
        asyncio.run(_init(settings))
        return 0
    if args.command == "create-admin":
        password = args.password or getpass.getpass("password: ")
        if len(password) < 8:
            print("conversme: the password needs at least 8 characters", file=sys.stderr)
            return 2
        handle = args.handle or args.email.split("@")[0]
        asyncio.run(_create_admin(settings, args.email, args.name, handle, password))
        return 0
    return 2


if __name__ == "__main__":
    sys.exit(main())
