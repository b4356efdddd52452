"""Where a REST request's CPU goes: statements per request and a cProfile of the app, in process, on PostgreSQL.

    .venv/bin/python bench/rest_profile.py [--events E] [--requests N] [--profile OP] [--echo]

Creates a database, migrates and seeds it like bench/rest.py (bench/seed_data.py), runs the app in this process
(the same `create_app`, middleware included, Redis as configured) and drives it through httpx's ASGI transport.
For each operation it prints the SQL statements one request runs (counted like tests/statements.py, only those
of the request itself, those run straight on asyncpg included, BEGIN/COMMIT not) and the in-process CPU per
request; `--profile OP` writes a cProfile of N requests of that operation (`.venv/bin/python -m pstats FILE`).
CPU here includes httpx's client side, so compare the numbers with each other, and use bench/rest.py for the
ratio to /health. Everything made is removed at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import logging
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import asyncpg  # type: ignore[import-untyped]
import httpx
from sqlalchemy import event

from adapters.security import Passwords
from bench.seed_data import SeedPlan, seed
from persistence import migrate
from persistence.database import create_engine
from server.app import create_app
from server.settings import Settings, normalize_database_url
from server.state import AppState

PG_ADMIN_URL = os.environ.get("BENCH_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
PASSWORD = "correct horse battery staple"
_recording: ContextVar[list[str] | None] = ContextVar("rest_profile_recording", default=None)


async def run(args: argparse.Namespace) -> None:
    dbname = f"conversme_prof_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(PG_ADMIN_URL)
    await admin.execute(f'CREATE DATABASE "{dbname}"')
    await admin.close()
    url = normalize_database_url(PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{dbname}")
    tmp = Path(tempfile.mkdtemp(prefix="conversme-prof-"))
    try:
        engine = create_engine(url)
        await migrate.upgrade(engine)
        pw_hash = await Passwords(1, 1024, 1).hash(PASSWORD)
        data = await seed(engine, SeedPlan(events=args.events, other_events=args.events), PASSWORD, pw_hash)
        await engine.dispose()
        settings = Settings(database_url=url, redis_url=REDIS_URL, redis_prefix=f"cmprof:{uuid.uuid4().hex[:8]}:",
                            secret_key="x" * 48, debug=False, data_dir=tmp, upload_dir=tmp / "uploads",
                            argon2_time_cost=1, argon2_memory_cost=1024, argon2_parallelism=1,
                            login_rate_per_ip=10**9, login_rate_per_account=10**9)
        if args.no_pre_ping:  # what the pool's pre-ping costs: BEGIN, ";", ROLLBACK on every checkout (asyncpg)
            import server.app as app_module

            def without_ping(url: str, **kw: Any) -> Any:
                engine = create_engine(url, **kw)
                engine.sync_engine.pool._pre_ping = False
                return engine
            vars(app_module)["create_engine"] = without_ping
        app = create_app(settings)
        async with app.router.lifespan_context(app):
            state: AppState = app.state.conversme
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
                r = await client.post("/auth/token", data={"username": data.email, "password": PASSWORD})
                r.raise_for_status()
                auth = {"Authorization": f"Bearer {r.json()['accessToken']}"}
                events = data.visible_event_ids
                steps = data.step_ids[:512]
                flip: dict[uuid.UUID, bool] = dict.fromkeys(steps, False)
                process_id = (await client.get(f"/events/{events[0]}", headers=auth)).json()["processId"]

                async def step(i: int) -> httpx.Response:
                    sid = steps[i % len(steps)]
                    flip[sid] = not flip[sid]
                    return await client.put(f"/processes/steps/{sid}", json={"completed": flip[sid]}, headers=auth)

                ops: dict[str, Callable[[int], Awaitable[httpx.Response]]] = {
                    "health": lambda i: client.get("/health"),
                    "event": lambda i: client.get(f"/events/{events[(i * 7919) % len(events)]}", headers=auth),
                    "step": step,
                    "me": lambda i: client.get("/users/me", headers=auth),
                    "events": lambda i: client.get("/events", headers=auth),
                    "processes": lambda i: client.get("/processes", headers=auth),
                    "process": lambda i: client.get(f"/processes/{process_id}", headers=auth),
                    "my_events": lambda i: client.get("/events/me", headers=auth),
                }
                if args.ops:
                    ops = {k: v for k, v in ops.items() if k in args.ops}
                seen: list[str] = []

                def record(conn: Any, cursor: Any, statement: str, *rest: Any) -> None:
                    if _recording.get() is seen:
                        seen.append(statement)

                def record_driver(query: Any) -> None:  # statements run straight on asyncpg (driver_connection)
                    text = query.query.strip()
                    internal = (text == ";" or text.upper().startswith(("BEGIN", "COMMIT", "ROLLBACK"))
                                or "'jit'" in text or "pg_catalog.pg_type" in text)  # asyncpg's type introspection
                    if _recording.get() is seen and not internal:
                        seen.append(text)

                logged: list[Any] = []

                def attach(dbapi_connection: Any, *rest: Any) -> None:
                    driver = dbapi_connection.driver_connection
                    driver.add_query_logger(record_driver)  # a set: added once per connection
                    logged.append(driver)

                event.listen(state.engine.sync_engine, "before_cursor_execute", record)
                for name, op in ops.items():
                    for i in range(20):  # warm caches (compiled statements, auth cache, pydantic)
                        (await op(i)).raise_for_status()
                    seen.clear()
                    token = _recording.set(seen)
                    event.listen(state.engine.sync_engine.pool, "checkout", attach)
                    resp = await op(21)
                    await asyncio.sleep(0)  # asyncpg calls its query loggers through the loop
                    event.remove(state.engine.sync_engine.pool, "checkout", attach)
                    for driver in logged:  # the logger costs CPU of its own: not while timing
                        driver.remove_query_logger(record_driver)
                    _recording.reset(token)
                    resp.raise_for_status()
                    statements = list(seen)
                    began = time.process_time()
                    profiler = cProfile.Profile(time.process_time) if name == args.profile else None
                    if profiler:
                        profiler.enable()
                    for i in range(args.requests):
                        (await op(100 + i)).raise_for_status()
                    if profiler:
                        profiler.disable()
                        profiler.dump_stats(args.out)
                    cpu = (time.process_time() - began) / args.requests
                    print(f"{name:10s} {cpu * 1000:6.2f} ms/req in process, {len(statements)} statements, "
                          f"{len(resp.content)} bytes")
                    if args.echo:
                        for s in statements:
                            print("    " + " ".join(s.split())[:400])
    finally:
        admin = await asyncpg.connect(PG_ADMIN_URL)
        await admin.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
        await admin.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--ops", type=lambda v: set(v.split(",")), default=None)
    parser.add_argument("--profile", default=None, help="operation to profile")
    parser.add_argument("--out", default="/tmp/rest_profile.prof")
    parser.add_argument("--no-pre-ping", action="store_true", help="turn the pool's pre-ping off (to measure it)")
    parser.add_argument("--echo", action="store_true", help="print each statement")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
