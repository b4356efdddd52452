"""Every benchmark in one run, the baselines in the same run, one Markdown table to compare across commits.

    .venv/bin/python -m bench.run            # full sizes (~25 min on the 2-core machine)
    .venv/bin/python -m bench.run --quick    # small sizes, a smoke run (~5 min): the numbers are not comparable
    .venv/bin/python -m bench.run --only storm,fanout [--clients 2000] [--subscribers 200]
    .venv/bin/python -m bench.run --render bench/results/FILE.json   # the Markdown of a recorded run again
    .venv/bin/python -m bench.run --only fanout --keep bench/results/FILE.json  # re-run one, keep the others

Runs each benchmark as a subprocess with its --json output (one at a time, so they do not load each other):

- storm  (bench/ws_storm.py):    connect + auth + join, RSS per idle joined connection, the reconnect storm;
                                 the lean (Starlette + Redis) and websockets-library baselines before and after;
- fanout (bench/ws_fanout.py):   400 subscribers on two instances: the rate mode at 200 and 10 messages/s
                                 (stored `chat.send`), saturation by `chat.send` and by hub publish (fan-out
                                 alone), against both baselines;
- rest   (bench/rest.py):        server CPU per request of GET /health, GET /events/{id}, PUT /processes/steps/{id},
                                 the month calendar (full and compact);
- stored (bench/stored_write.py): server CPU per stored chat line at 50/s and at saturation (this tree only).

Writes bench/results/<UTC date>-<short commit>.md (printed too) and .json (every benchmark's own JSON and the
machine), with the machine (CPU, cores, RAM, load average before and after, Python/PostgreSQL/Redis/Node) and the
exact command in the header, the table side by side, and the issue's targets met or not, computed from the
numbers of this run. python-socketio is not measured (see docs/performance.md). A benchmark that fails leaves
its cells empty ("—") and its log's tail in the JSON; the others still run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
PG_ADMIN = os.environ.get("BENCH_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
SUITES = ("storm", "fanout", "rest", "stored")
MISSING = "—"


@dataclass(frozen=True)
class Sizes:
    clients: int        # storm: clients connecting, then reconnecting
    subscribers: int    # fanout: members of the room
    rates: tuple[int, int]  # fanout: the loaded rate and the light one, messages/s
    seconds: int        # fanout: length of each rate run
    sat_seconds: int    # fanout: length of each saturation run
    repeat: int         # fanout: saturation rounds (median)
    idle: int           # fanout: idle connections
    rest_requests: int
    rest_seconds: float
    rest_repeats: int
    rest_events: int
    stored_rounds: int
    stored_seconds: float


FULL = Sizes(clients=5000, subscribers=400, rates=(200, 10), seconds=10, sat_seconds=10, repeat=3, idle=5000,
             rest_requests=2000, rest_seconds=10, rest_repeats=3, rest_events=3000, stored_rounds=3, stored_seconds=20)
QUICK = Sizes(clients=500, subscribers=40, rates=(200, 10), seconds=3, sat_seconds=3, repeat=1, idle=300,
              rest_requests=300, rest_seconds=2, rest_repeats=1, rest_events=300, stored_rounds=1, stored_seconds=5)


def commands(sizes: Sizes, out: Path, python: str = sys.executable) -> dict[str, list[str]]:
    s = sizes
    return {
        "storm": [python, "-m", "bench.ws_storm", "--clients", str(s.clients), "--baselines", "lean,websockets",
                  "--json", str(out / "storm.json")],
        "fanout": [python, "bench/ws_fanout.py", "--subscribers", str(s.subscribers),
                   "--rate", ",".join(map(str, s.rates)), "--seconds", str(s.seconds),
                   "--sat-seconds", str(s.sat_seconds), "--repeat", str(s.repeat), "--idle", str(s.idle),
                   "--sat-via", "push,hub", "--baselines", "lean,websockets", "--json", str(out / "fanout.json")],
        "rest": [python, "bench/rest.py", "--ops", "event,step,calendar,compact", "--requests", str(s.rest_requests),
                 "--seconds", str(s.rest_seconds), "--repeats", str(s.rest_repeats), "--events", str(s.rest_events),
                 "--settle-budget", "30", "--json", str(out / "rest.json")],
        "stored": [python, "bench/stored_write.py", "--tree", f"current={ROOT}", "--rounds", str(s.stored_rounds),
                   "--seconds", str(s.stored_seconds), "--sat-seconds", str(s.sat_seconds), "--settle", "5",
                   "--python", python, "--json", str(out / "stored.json")],
    }


# ---- the machine -------------------------------------------------------------------------------------------


def _first_line(cmd: list[str]) -> str:
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=20)
        return (r.stdout or r.stderr).strip().splitlines()[0]
    except (OSError, subprocess.SubprocessError, IndexError):
        return "?"


async def _service_versions() -> dict[str, str]:
    import asyncpg  # type: ignore[import-untyped]
    from redis.asyncio import Redis

    out = {"postgresql": "?", "redis": "?"}
    try:
        db = await asyncpg.connect(PG_ADMIN)
        try:
            out["postgresql"] = str(await db.fetchval("SHOW server_version")).split()[0]
        finally:
            await db.close()
    except Exception as exc:  # the table still says which was not reachable
        out["postgresql"] = f"? ({type(exc).__name__})"
    redis = Redis.from_url(REDIS_URL)
    try:
        out["redis"] = str((await redis.info("server"))["redis_version"])
    except Exception as exc:
        out["redis"] = f"? ({type(exc).__name__})"
    finally:
        await redis.aclose()
    return out


def machine() -> dict[str, Any]:
    model = "?"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    mem_kib = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                   if line.startswith("MemTotal:"))
    return {"cpu": model, "cores": os.cpu_count(), "ram_gib": round(mem_kib / 1024 / 1024, 1),
            "kernel": platform.release(), "python": platform.python_version(),
            "node": _first_line(["node", "--version"]), **asyncio.run(_service_versions())}


def commit() -> str:
    short = _first_line(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"])
    dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True).stdout.strip()
    return short + ("-dirty" if dirty else "")


# ---- running -----------------------------------------------------------------------------------------------


def run_suite(name: str, cmd: list[str], log: Path, timeout: float) -> dict[str, Any]:
    print(f"== {name}: {shlex.join(cmd)}", flush=True)
    started = time.monotonic()
    with log.open("wb") as out:
        try:
            rc = subprocess.run(cmd, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, timeout=timeout).returncode
        except subprocess.TimeoutExpired:
            rc = -1
    took = round(time.monotonic() - started, 1)
    json_path = Path(cmd[cmd.index("--json") + 1])
    # As one would type it in the repository: no absolute paths of this checkout or of the temp directory.
    shown = shlex.join(cmd).replace(f"{ROOT}/", "").replace(str(ROOT), ".").replace(str(json_path.parent), "$OUT")
    result: dict[str, Any] = {"command": shown, "seconds": took, "returncode": rc}
    if json_path.exists():
        result["data"] = json.loads(json_path.read_text())
    else:
        result["log_tail"] = log.read_text(errors="replace")[-3000:]
    print(f"   {name}: exit {rc} after {took} s" + ("" if "data" in result else " — no results"), flush=True)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run, not comparable numbers")
    parser.add_argument("--only", default=",".join(SUITES), help=f"benchmarks to run ({','.join(SUITES)})")
    parser.add_argument("--clients", type=int, help="storm: clients (5,000; --quick 500)")
    parser.add_argument("--subscribers", type=int, help="fanout: room members (400; --quick 40)")
    parser.add_argument("--repeat", type=int, help="fanout: saturation rounds (3; --quick 1)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="where the .md and .json go (bench/results)")
    parser.add_argument("--timeout", type=float, default=1800, help="per benchmark, seconds (1800)")
    parser.add_argument("--render", type=Path, help="print the Markdown of a recorded run's .json; runs nothing")
    parser.add_argument("--keep", type=Path, help="a recorded run's .json: the benchmarks not in --only come from it "
                                                  "(to re-run one that failed); the runs table says which")
    args = parser.parse_args(argv)
    if args.render:
        print(render(json.loads(args.render.read_text())))
        return 0
    only = [s for s in args.only.split(",") if s]
    if set(only) - set(SUITES):
        parser.error(f"--only takes {', '.join(SUITES)}")
    base = QUICK if args.quick else FULL
    sizes = Sizes(**{**base.__dict__, **{k: v for k, v in (("clients", args.clients), ("subscribers",
                                                               args.subscribers), ("repeat", args.repeat)) if v}})
    started = datetime.now(UTC)
    record: dict[str, Any] = {
        "started": started.isoformat(timespec="seconds"), "commit": commit(), "quick": args.quick,
        "command": shlex.join([".venv/bin/python", "-m", "bench.run", *(sys.argv[1:] if argv is None else argv)]),
        "sizes": sizes.__dict__ | {"rates": list(sizes.rates)}, "machine": machine(),
        "load_before": [round(x, 2) for x in os.getloadavg()], "suites": {},
    }
    with tempfile.TemporaryDirectory(prefix="bench_run_") as tmp:
        out = Path(tmp)
        for name, cmd in commands(sizes, out).items():
            if name in only:
                record["suites"][name] = run_suite(name, cmd, out / f"{name}.log", args.timeout)
    if args.keep:
        kept = json.loads(args.keep.read_text())
        for name, suite in kept["suites"].items():
            if name not in record["suites"]:
                record["suites"][name] = suite | {"kept_from": f"{args.keep.name} (started {kept['started']})"}
    record["load_after"] = [round(x, 2) for x in os.getloadavg()]
    record["minutes"] = round((datetime.now(UTC) - started).total_seconds() / 60, 1)
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / f"{started.strftime('%Y-%m-%d')}-{record['commit']}"
    stem.with_suffix(".json").write_text(json.dumps(record, indent=1, default=str))
    markdown = render(record)
    stem.with_suffix(".md").write_text(markdown)
    print("\n" + markdown)
    print(f"written: {stem.with_suffix('.md')} and .json")
    return 0 if all("data" in s for s in record["suites"].values()) else 1


# ---- rendering (a pure function of the record: tests/unit/test_bench_run.py) -------------------------------


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def _num(x: float | None, digits: int = 0, unit: str = "") -> str:
    if x is None:
        return MISSING
    text = f"{x:,.{digits}f}" if abs(x) >= 1000 or digits == 0 else f"{x:.{digits}f}"
    return text + unit


def _dig(record: dict[str, Any], suite: str) -> dict[str, Any] | None:
    data: dict[str, Any] | None = record["suites"].get(suite, {}).get("data")
    return data


def _mean_baseline(storm: dict[str, Any], name: str, key: str) -> float | None:
    runs = [storm[k] for k in (f"{name}_before", f"{name}_after") if k in storm]
    values = [r[key] for r in runs if r.get(key) is not None]
    return sum(values) / len(values) if values else None


@dataclass
class Numbers:
    """What the table and the targets read, each None when its benchmark did not run or failed."""

    connect: dict[str, tuple[float | None, float | None]]  # who -> (connections/s, p99 ms)
    connect_cpu_ms: dict[str, float | None]  # who -> server CPU per connection (the load hardly moves it)
    idle_kib: dict[str, float | None]
    sat: dict[str, float | None]  # ours_push / ours_hub / lean / websockets -> deliveries per server CPU-s
    stored_per_s: float | None     # chat.send messages/s stored at saturation
    rate: dict[int, dict[str, dict[str, Any] | None]]  # rate -> who -> the rate mode's figures
    storm: dict[str, Any] | None
    rest: dict[str, dict[str, float]]  # op -> server CPU ms/req, KiB/resp
    stored: dict[str, float | None]


def numbers(record: dict[str, Any]) -> Numbers:
    storm, fanout, rest, stored = (_dig(record, s) for s in SUITES)
    connect: dict[str, tuple[float | None, float | None]] = {}
    connect_cpu: dict[str, float | None] = {}
    idle: dict[str, float | None] = {}
    if storm:
        connect["ours"] = (storm["connect"]["per_second"], storm["connect"]["p99_ms"])
        connect_cpu["ours"] = storm["connect"]["server_cpu_ms_per_connection"]
        idle["ours"] = storm["connect"]["kib_per_connection"]
        for b in ("lean", "websockets"):
            connect[b] = (_mean_baseline(storm, b, "per_second"), _mean_baseline(storm, b, "p99_ms"))
            connect_cpu[b] = _mean_baseline(storm, b, "server_cpu_ms_per_connection")
            idle[b] = _mean_baseline(storm, b, "kib_per_connection")
    sat: dict[str, float | None] = {}
    stored_per_s = None
    rate: dict[int, dict[str, dict[str, Any] | None]] = {}
    if fanout:
        for key, runs in fanout.get("saturation", {}).items():
            sat[key] = _median([r["deliveries_per_cpu_s"] for r in runs if r.get("deliveries_per_cpu_s")])
        push = fanout.get("saturation", {}).get("ours_push", [])
        stored_per_s = _median([r["published"] / r["seconds"] for r in push if r.get("seconds")])
        for row in fanout.get("rate", []):
            rate[row["rate"]] = {k: row.get(k) for k in ("ours", "lean", "websockets")}
    rest_ops: dict[str, dict[str, float]] = {}
    if rest:
        for op, samples in rest.get("loaded", {}).items():
            ok = [s for s in samples if s["requests"]]
            if not ok:
                continue
            s = sorted(ok, key=lambda x: x["rps"])[len(ok) // 2]  # the run with the median throughput, as rest.py
            rest_ops[op] = {"cpu_ms": s["server_cpu"] * 1000 / s["requests"],
                            "kib": s["bytes"] / s["requests"] / 1024, "rps": s["rps"]}
            # Against the `GET /health` run just before each run (rest.py's "beside"), where it was measured: the
            # median of those ratios (older records: none, the ratio of the two medians is used).
            paired = [x["server_cpu"] / x["requests"] / (h["server_cpu"] / h["requests"])
                      for x, h in zip(samples, rest.get("beside", {}).get(op, []), strict=False)
                      if x["requests"] and h["requests"] and h["server_cpu"]]
            if paired:
                rest_ops[op]["vs_health"] = _median(paired) or 0.0
    stored_out: dict[str, float | None] = {}
    if stored:
        runs = stored.get("runs", [])
        stored_out = {
            "rate_cpu_ms": _median([r["rate"]["server_ms_per_msg"] for r in runs]),
            "sat_cpu_ms": _median([r["saturation"]["server_ms_per_msg"] for r in runs]),
            "sat_per_s": _median([r["saturation"]["msgs_per_s"] for r in runs]),
            "rate_delivery_p99": _median([r["rate"]["delivery_p99"] for r in runs]),
            "lost": sum(r["rate"]["lost"] + r["saturation"]["lost"] for r in runs),
        }
    return Numbers(connect, connect_cpu, idle, sat, stored_per_s, rate, storm["storm"] if storm else None, rest_ops,
                   stored_out)


def _vs_health(rest: dict[str, dict[str, float]], op: str) -> float | None:
    """An operation's server CPU against `GET /health`'s: paired with the run just before when recorded."""
    if op not in rest:
        return None
    return rest[op].get("vs_health") or _ratio(rest[op]["cpu_ms"], rest.get("health", {}).get("cpu_ms"))


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def _rate_cell(r: dict[str, Any] | None, subscribers: int, loaded: bool) -> str:
    if not r:
        return MISSING
    expected = r["published"] * subscribers
    full = "" if r["deliveries"] >= expected and not r["lost"] else f", {r['lost']:,} lost"
    if loaded:
        return f"{_num(r['deliveries_per_s'])}/s delivered, p99 {_num(r['p99_ms'])} ms{full}"
    return f"p99 {_num(r['p99_ms'], 1)} ms{full}"


def table(n: Numbers, sizes: dict[str, Any]) -> str:
    who = ("ours", "lean", "websockets")
    subs, (loaded, light) = sizes["subscribers"], sizes["rates"]
    rows: list[tuple[str, ...]] = [
        ("what", "conversme", "lean (Starlette + Redis)", "websockets lib", "python-socketio"),
        ("---", "---", "---", "---", "---"),
    ]

    def cells(f: Callable[[str], str]) -> tuple[str, ...]:
        return (*(f(w) for w in who), "not measured")

    def conn(w: str) -> str:
        rate, p99 = n.connect.get(w, (None, None))
        return MISSING if rate is None else f"{_num(rate)} conn/s, p99 {_num(p99 / 1000 if p99 else None, 2)} s"

    rows.append((f"connect + auth + join, {sizes['clients']:,} clients, 100 at a time", *cells(conn)))
    rows.append(("connect + auth + join, server CPU per connection",
                 *cells(lambda w: _num(n.connect_cpu_ms.get(w), 2, " ms"))))
    rows.append(("idle connection, authenticated and joined (RSS per connection)",
                 *cells(lambda w: _num(n.idle_kib.get(w), 1, " KiB"))))
    stored = f" ({_num(n.stored_per_s)} messages/s stored)" if n.stored_per_s else ""
    rows.append(("saturation, stored chat (`chat.send`), deliveries per server CPU-second",
                 *cells(lambda w: _num(n.sat.get("ours_push" if w == "ours" else w))
                        + (stored if w == "ours" else " (plain relay)") if n.sat.get("ours_push" if w == "ours" else w)
                        else MISSING)))
    rows.append(("saturation, hub publish (fan-out only), deliveries per server CPU-second",
                 *cells(lambda w: _num(n.sat.get("ours_hub" if w == "ours" else w)))))
    rows.append((f"{subs} members x {loaded} messages/s ({subs * loaded:,} deliveries/s offered)",
                 *cells(lambda w: _rate_cell(n.rate.get(loaded, {}).get(w), subs, True))))
    rows.append((f"{subs} members x {light} messages/s, p99",
                 *cells(lambda w: _rate_cell(n.rate.get(light, {}).get(w), subs, False))))
    return "\n".join("| " + " | ".join(r) + " |" for r in rows)


MET, NOT_MET, SMALLER = "met", "**not met**", "not comparable (smaller run)"


def targets(n: Numbers, sizes: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(target, measured in this run, status): met or not met from the numbers; "—" where they are missing;
    "not comparable" where this run was smaller than what the target is about (--quick, --clients ...)."""
    out: list[tuple[str, str, str]] = []

    def add(target: str, value: float | None, shown: str, ok: Callable[[float], bool], full_size: bool = True) -> None:
        if value is None:
            out.append((target, MISSING, MISSING))
        else:
            out.append((target, shown, (MET if ok(value) else NOT_MET) if full_size else SMALLER))

    ours_rate, ours_p99 = n.connect.get("ours", (None, None))
    r = _ratio(ours_rate, n.connect.get("lean", (None, None))[0])
    add("connect + auth + join ≥ 0.5x the lean baseline's connections/s", r, f"{r or 0:.2f}x", lambda v: v >= 0.5)
    add("connect + auth + join p99 < 1 s", ours_p99, f"{(ours_p99 or 0) / 1000:.2f} s", lambda v: v < 1000)
    storm = "reconnect storm of 5,000 clients done in < 20 s with nothing missed"
    if n.storm:
        s = n.storm
        missed = s["missed_offsets"] + s["duplicates"] + s["not_recovered"] + s["never_resumed"]
        add(storm, s["all_resumed_s"], f"{s['all_resumed_s']} s for {s['clients']:,} clients, {s['missed_offsets']} "
            f"missed, {s['duplicates']} twice, {s['never_resumed']} never resumed",
            lambda v: v < 20 and missed == 0, s["clients"] >= 5000)
    else:
        add(storm, None, "", lambda v: False)
    r = _ratio(n.sat.get("ours_push"), n.sat.get("lean"))
    add("stored chat saturation ≥ 0.8x the lean baseline's deliveries per server CPU-second", r, f"{r or 0:.2f}x",
        lambda v: v >= 0.8)
    r = _ratio(n.sat.get("ours_hub"), n.sat.get("lean"))
    add("hub-only fan-out ≥ 1.0x the lean baseline's deliveries per server CPU-second", r, f"{r or 0:.2f}x",
        lambda v: v >= 1.0)
    loaded, subs = sizes["rates"][0], sizes["subscribers"]
    ours, lean = n.rate.get(loaded, {}).get("ours"), n.rate.get(loaded, {}).get("lean")
    label = "400 x 200 stored messages/s delivered in full, p99 ≤ 2x the lean baseline's"
    if ours and lean:
        full = ours["deliveries"] >= ours["published"] * subs and not ours["lost"]
        r = _ratio(ours["p99_ms"], lean["p99_ms"])
        add(label, r, f"{subs} x {loaded}: {'all' if full else str(ours['lost']) + ' lost'}, p99 {r or 0:.1f}x "
            f"({_num(ours['p99_ms'])} against {_num(lean['p99_ms'])} ms)", lambda v: full and v <= 2,
            subs >= 400 and loaded >= 200)
    else:
        add(label, None, "", lambda v: False)
    kib = n.idle_kib.get("ours")
    add("idle authenticated, joined connection ≤ 20 KiB", kib, f"{kib} KiB", lambda v: v <= 20)
    for op, name in (("event", "`GET /events/{id}`"), ("step", "`PUT /processes/steps/{id}`")):
        r = _vs_health(n.rest, op)
        add(f"{name} ≤ 15x the server CPU of `GET /health`", r, f"{r or 0:.1f}x", lambda v: v <= 15)
    # The calendar targets are about a month of ~1,000 events: the full run's 3,000 over three months.
    month = sizes["rest_events"] >= 3000
    r = _ratio(n.rest.get("compact", {}).get("cpu_ms"), n.rest.get("event", {}).get("cpu_ms"))
    add("compact calendar month ≤ 10x an event read (server CPU)", r, f"{r or 0:.1f}x", lambda v: v <= 10, month)
    kib = n.rest.get("compact", {}).get("kib")
    add("compact calendar month ≤ 300 KB", kib, f"{(kib or 0) * 1.024:.0f} KB", lambda v: v * 1.024 <= 300, month)
    return out


def render(record: dict[str, Any]) -> str:
    n = numbers(record)
    sizes, m = record["sizes"], record["machine"]
    lines = [
        f"# Benchmarks: {record['started'].replace('T', ' ').replace('+00:00', ' UTC')}, commit `{record['commit']}`",
        "",
        f"- Command: `{record['command']}`" + (" — **quick mode: small sizes, a smoke run; do not compare these "
                                               "numbers**" if record.get("quick") else ""),
        f"- Machine: {m['cpu']}, {m['cores']} cores, {m['ram_gib']} GiB RAM, Linux {m['kernel']}; load average "
        f"before {' / '.join(map(str, record['load_before']))}, after "
        f"{' / '.join(map(str, record.get('load_after', [])))} (1 / 5 / 15 min)",
        f"- Software: Python {m['python']}, PostgreSQL {m['postgresql']}, Redis {m['redis']}, Node {m['node']}; "
        "everything on this machine (servers, load generators, databases)",
        f"- Took {record.get('minutes', '?')} min. Compare ratios within one run; absolute rates move with the "
        "machine's other load.",
        "",
        "## Side by side",
        "",
        table(n, sizes),
        "",
        "python-socketio is not measured: it is not a dependency of the project (docs/performance.md).",
        "",
        "## Against the targets (issue 15)",
        "",
        "| target | this run | status |",
        "|---|---|---|",
    ]
    for target, shown, status in targets(n, sizes):
        lines.append(f"| {target} | {shown} | {status} |")
    if n.rest:
        lines += ["", f"## REST, server CPU per request ({record['sizes']['rest_events']:,} events, 16 users)", "",
                  "| request | server CPU ms/req | vs `GET /health` | KiB/resp | req/s |", "|---|--:|--:|--:|--:|"]
        for op, x in n.rest.items():
            r = _vs_health(n.rest, op)
            lines.append(f"| {op} | {x['cpu_ms']:.2f} | {MISSING if r is None else f'{r:.1f}x'} | {x['kib']:.1f} | "
                         f"{x['rps']:.1f} |")
        if any("vs_health" in x for x in n.rest.values()):
            lines += ["", "vs `GET /health`: the median, over the runs, of each run's server CPU per request against "
                      "that of a `GET /health` run measured just before it (bench/rest.py); server CPU ms/req: the "
                      "run with the median req/s."]
    if n.stored:
        s = n.stored
        lines += ["", "## Stored write path (`chat.send`, one instance, one subscriber)", "",
                  "| server CPU per line at 50/s | p99 push → delivery at 50/s | lines/s at saturation | "
                  "server CPU per line at saturation | lost |", "|--:|--:|--:|--:|--:|",
                  f"| {_num(s['rate_cpu_ms'], 2, ' ms')} | {_num(s['rate_delivery_p99'], 1, ' ms')} | "
                  f"{_num(s['sat_per_s'])} | {_num(s['sat_cpu_ms'], 2, ' ms')} | {s['lost']} |"]
    lines += ["", "## The runs", "", "| benchmark | exit | seconds | command |", "|---|--:|--:|---|"]
    for name, suite in record["suites"].items():
        kept = f" (from the earlier run {suite['kept_from']})" if suite.get("kept_from") else ""
        lines.append(f"| {name}{kept} | {suite['returncode']} | {suite['seconds']} | `{suite['command']}` |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
