"""bench/rest.py with more reads: GET /users/me, GET /events and GET /processes (first page) besides its own.

    .venv/bin/python bench/rest_reads.py --ops event,step,me,events,processes [bench/rest.py's options]

Same database, seed, server and reporting as bench/rest.py; only the operations list is longer.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import rest
from bench.rest_load import Client, Op
from bench.seed_data import Seeded

_own = rest.operations


def operations(data: Seeded, token: str, month: tuple[str, str], step_pool: int) -> dict[str, Op]:
    auth = {"Authorization": f"Bearer {token}"}

    async def me(c: Client, i: int) -> tuple[int, bytes]:
        return await c.send("GET", "/users/me", headers=auth)

    async def events(c: Client, i: int) -> tuple[int, bytes]:
        return await c.send("GET", "/events", headers=auth)

    async def processes(c: Client, i: int) -> tuple[int, bytes]:
        return await c.send("GET", "/processes", headers=auth)

    return {**_own(data, token, month, step_pool), "me": Op("me", "GET /users/me", me),
            "events": Op("events", "GET /events (first page)", events),
            "processes": Op("processes", "GET /processes (first page)", processes)}


if __name__ == "__main__":
    rest.operations = operations
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover
        pass
    sys.exit(rest.main())
