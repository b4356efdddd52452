"""Server CPU per stored write, by kind: `chat.send`, `step.update` (a toggle) and `event.status` pushes.

    .venv/bin/python bench/stored_pushes.py --tree before=/tmp/wb-before --tree after=/work/wt-write
        [--rounds 3] [--count 600] [--window 8] [--pyspy KIND]

For every tree (`label=path`, as bench/stored_write.py: that tree's code on PYTHONPATH, this interpreter) and
round: a fresh database, one API instance on PostgreSQL and Redis, an owner and a confirmed member, an event with
a two-step checklist; the owner and the member join the room (the member only reads, every frame). Then per kind
`--count` pushes with `--window` in flight: the server process's CPU (utime + stime) divided by the pushes
answered, and that the member received one message per push. Trees alternate per round; medians, ranges and
ratios to the first tree are printed. `--pyspy KIND` records that kind's phase of the last tree's last round
with py-spy (if installed next to this interpreter) into /tmp/stored_pushes-<label>.txt (collapsed stacks).

Prints numbers; it is not a test. Everything it starts or creates is stopped or removed at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if __package__ in (None, ""):
    sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from bench.stored_write import (  # noqa: E402
    Leftovers,
    Tree,
    check_imports,
    describe_tree,
    log,
    migrate,
    parse_tree,
    person,
    start_server,
    stop_process,
    tree_env,
)
from channels.client import RealtimeClient  # noqa: E402
from tests.realtime.harness import event_with  # noqa: E402

KINDS = ("chat", "step", "status")
STATUSES = ("Execution", "Review")


def cpu_seconds(pid: int) -> float:
    import os
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Reader(RealtimeClient):
    """Counts the room's messages that answer one push each (a status change also sends `event.updated`), without
    queueing any."""

    def __init__(self, url: str, token: str) -> None:
        super().__init__(url, token, reconnect=False)
        self.seen = 0

    def _dispatch(self, frame: dict[str, Any]) -> None:
        if frame.get("op") == "msg":
            self.seen += frame.get("event") in ("chat.message", "step.updated", "status.changed")
            return
        super()._dispatch(frame)


async def phase(kind: str, sender: Reader, reader: Reader, topic: str, step_id: str, count: int,
                window: int, pid: int, pyspy: Path | None) -> float:
    numbers = itertools.count()

    def payload(i: int) -> tuple[str, dict[str, Any]]:
        if kind == "chat":
            return "chat.send", {"text": f"line {i:06d} " + "x" * 100}
        if kind == "step":
            return "step.update", {"stepId": step_id, "completed": i % 2 == 0}
        return "event.status", {"status": STATUSES[i % 2]}

    async def slot() -> None:
        while (i := next(numbers)) < count:
            await sender.push(topic, *payload(i))

    for i in range(20):  # warm-up
        await sender.push(topic, *payload(count + i))
    await asyncio.sleep(0.5)
    spy = None
    if pyspy is not None:
        spy = subprocess.Popen(  # noqa: ASYNC220 - started once, before the measured phase
            [str(Path(sys.executable).parent / "py-spy"), "record", "--pid", str(pid), "-r", "200",
             "-f", "raw", "-o", str(pyspy), "--nonblocking"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        await asyncio.sleep(1.0)
    seen0, cpu0 = reader.seen, cpu_seconds(pid)
    await asyncio.gather(*[slot() for _ in range(window)])
    deadline = time.monotonic() + 30
    while reader.seen - seen0 < count and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.01)
    cpu = cpu_seconds(pid) - cpu0
    if spy is not None:
        spy.send_signal(2)
        with contextlib.suppress(subprocess.TimeoutExpired):
            spy.wait(30)
    if reader.seen - seen0 != count:
        raise RuntimeError(f"{kind}: member saw {reader.seen - seen0} messages for {count} pushes")
    return cpu * 1000 / count


async def one_run(args: argparse.Namespace, tree: Tree, round_no: int, leftovers: Leftovers,
                  spy_kind: str | None) -> dict[str, float]:
    dbname = f"{leftovers.db_prefix}_{tree.slug}_{round_no}"
    import asyncpg  # type: ignore[import-untyped]
    admin = await asyncpg.connect(args.pg_admin)
    try:
        await admin.execute(f'CREATE DATABASE "{dbname}"')
    finally:
        await admin.close()
    leftovers.databases.add(dbname)
    env = tree_env(tree, dbname, leftovers.redis_prefix + f"{tree.slug}{round_no}:", leftovers.tmp)
    check_imports(args.python, tree, env)
    migrate(args.python, tree, env)
    proc, url = await start_server(args.python, tree, env, leftovers.tmp / f"{tree.slug}-{round_no}.log", leftovers)
    out: dict[str, float] = {}
    try:
        async with httpx.AsyncClient(base_url=url, timeout=60) as api:
            owner, member = await person(api, "owner"), await person(api, "member")
            event = await event_with(api, owner, member)  # type: ignore[arg-type]
            steps = (await api.get(f"/processes/{event['processId']}/steps", headers=owner.headers)).json()
        topic = f"event:{event['id']}"
        ws = url.replace("http", "ws") + "/ws"
        sender, reader = Reader(ws, owner.token), Reader(ws, member.token)
        async with sender, reader:
            await sender.join(topic)
            await reader.join(topic)
            for kind in KINDS:
                spy = Path(f"/tmp/stored_pushes-{tree.slug}-{kind}.txt") if kind == spy_kind else None
                out[kind] = await phase(kind, sender, reader, topic, steps[0]["id"], args.count, args.window,
                                        proc.pid, spy)
    finally:
        stop_process(proc)
    return out


async def main(args: argparse.Namespace) -> None:
    leftovers = Leftovers()
    results: dict[str, list[dict[str, float]]] = {t.label: [] for t in args.tree}
    try:
        for tree in args.tree:
            log(f"{tree.label}: {describe_tree(tree)} at {tree.path}")
        for r in range(args.rounds):
            for tree in args.tree:
                last = r == args.rounds - 1
                res = await one_run(args, tree, r, leftovers, args.pyspy if last else None)
                log(f"round {r + 1} {tree.label}: " + json.dumps({k: round(v, 3) for k, v in res.items()}))
                results[tree.label].append(res)
    finally:
        await asyncio.to_thread(leftovers.cleanup)
    first = args.tree[0].label
    print(f"\nserver CPU per push, ms (median [min-max] of {args.rounds}; {args.count} pushes, "
          f"window {args.window})\n")
    print("| tree | " + " | ".join(KINDS) + " |")
    print("|---|" + "--:|" * len(KINDS))
    for label, runs in results.items():
        cells = []
        for k in KINDS:
            vals = [x[k] for x in runs]
            med = statistics.median(vals)
            ratio = med / statistics.median(x[k] for x in results[first])
            cells.append(f"{med:.2f} [{min(vals):.2f}-{max(vals):.2f}]"
                         + ("" if label == first else f" ({ratio:.2f}x)"))
        print(f"| {label} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    default_python = ROOT / ".venv" / "bin" / "python"
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tree", type=parse_tree, action="append", required=True, metavar="LABEL=PATH")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--count", type=int, default=600)
    parser.add_argument("--window", type=int, default=8)
    parser.add_argument("--pyspy", choices=KINDS)
    parser.add_argument("--python", default=str(default_python if default_python.exists() else sys.executable))
    parser.add_argument("--pg-admin", default="postgresql://postgres@127.0.0.1:5432/postgres")
    asyncio.run(main(parser.parse_args()))
