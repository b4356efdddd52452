"""bench/run.py's Markdown, rendered from a recorded run (tests/unit/bench_run_record.json, a `--quick` run): the
table and the targets come out of the numbers, and a benchmark that failed leaves empty cells, not a crash. Runs
no benchmark and measures nothing."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from bench import run

RECORD = Path(__file__).with_name("bench_run_record.json")


@pytest.fixture
def record() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(RECORD.read_text())
    return loaded


def row(markdown: str, starts: str) -> list[str]:
    lines = [line for line in markdown.splitlines() if line.startswith(f"| {starts}")]
    assert len(lines) == 1, (starts, lines)
    return [cell.strip() for cell in lines[0].strip("|").split("|")]


def test_the_table_has_every_row_with_conversme_and_the_baselines_side_by_side(record: dict[str, Any]) -> None:
    md = run.render(record)
    assert row(md, "what") == ["what", "conversme", "lean (Starlette + Redis)", "websockets lib", "python-socketio"]
    storm = record["suites"]["storm"]["data"]
    connect = row(md, f"connect + auth + join, {record['sizes']['clients']:,} clients")
    assert connect[1].startswith(f"{storm['connect']['per_second']:,.0f} conn/s")
    lean_rate = (storm["lean_before"]["per_second"] + storm["lean_after"]["per_second"]) / 2
    assert connect[2].startswith(f"{lean_rate:,.0f} conn/s")
    assert connect[4] == "not measured"
    assert row(md, "idle connection")[1] == f"{storm['connect']['kib_per_connection']:.1f} KiB"
    sat = record["suites"]["fanout"]["data"]["saturation"]
    for label, keys in (("saturation, stored chat", ("ours_push", "lean", "websockets")),
                        ("saturation, hub publish", ("ours_hub", "lean", "websockets"))):
        cells = row(md, label)
        for cell, key in zip(cells[1:4], keys, strict=True):
            median = sorted(r["deliveries_per_cpu_s"] for r in sat[key])[len(sat[key]) // 2]
            assert cell.startswith(f"{median:,.0f}"), (label, key, cell)
    members = record["sizes"]["subscribers"]
    loaded, light = record["sizes"]["rates"]
    assert "delivered" in row(md, f"{members} members x {loaded} messages/s")[1]
    assert row(md, f"{members} members x {light} messages/s")[1].startswith("p99 ")


def test_targets_are_met_or_not_by_this_runs_numbers(record: dict[str, Any]) -> None:
    storm = record["suites"]["storm"]["data"]
    kib = storm["connect"]["kib_per_connection"]
    md = run.render(record)
    assert row(md, "idle authenticated, joined connection")[2] == (run.MET if kib <= 20 else run.NOT_MET)
    # The storm target is for 5,000 clients: a quick run's smaller storm is neither met nor not met.
    assert record["sizes"]["clients"] < 5000
    assert row(md, "reconnect storm")[2] == run.SMALLER
    rest = {op: run.numbers(record).rest[op]["cpu_ms"] for op in ("health", "event")}
    assert row(md, "`GET /events/{id}`")[2] == (run.MET if rest["event"] / rest["health"] <= 15 else run.NOT_MET)

    changed = copy.deepcopy(record)
    changed["suites"]["storm"]["data"]["connect"]["kib_per_connection"] = 12.5
    assert row(run.render(changed), "idle authenticated, joined connection")[1:] == ["12.5 KiB", run.MET]
    changed["suites"]["storm"]["data"]["connect"]["kib_per_connection"] = 20.1
    assert row(run.render(changed), "idle authenticated, joined connection")[2] == run.NOT_MET
    changed["sizes"]["clients"] = 5000
    changed["suites"]["storm"]["data"]["storm"] |= {"clients": 5000, "all_resumed_s": 19.9}
    assert row(run.render(changed), "reconnect storm")[2] == run.MET
    changed["suites"]["storm"]["data"]["storm"]["missed_offsets"] = 1
    assert row(run.render(changed), "reconnect storm")[2] == run.NOT_MET


def test_a_failed_benchmark_leaves_empty_cells(record: dict[str, Any]) -> None:
    for suite in ("fanout", "rest"):
        record["suites"][suite] = {"command": "…", "seconds": 1.0, "returncode": 1, "log_tail": "Traceback …"}
    md = run.render(record)
    assert row(md, "saturation, stored chat")[1:4] == [run.MISSING] * 3
    assert row(md, "`GET /events/{id}`")[1:] == [run.MISSING, run.MISSING]
    storm_row = row(md, f"connect + auth + join, {record['sizes']['clients']:,} clients")
    assert storm_row[1].endswith(" s")  # the storm still shows
    assert "| fanout | 1 |" in md


def test_render_prints_a_recorded_run(capsys: pytest.CaptureFixture[str]) -> None:
    assert run.main(["--render", str(RECORD)]) == 0
    assert "## Against the targets" in capsys.readouterr().out


def test_rest_ratios_pair_each_run_with_the_health_run_just_before(record: dict[str, Any]) -> None:
    rest = record["suites"]["rest"]["data"]
    runs = [{"requests": 1000, "server_cpu": cpu, "bytes": 1000, "rps": rps} for cpu, rps in
            ((1.6, 600), (1.0, 900), (2.0, 500))]
    # /health cost 0.16, 0.06 and 0.10 ms a request just before them: 10x, 16.7x, 20x; the median pair is 16.7x,
    # where the medians of each alone (1.6 ms against /health's own median run) would say otherwise.
    health = [{"requests": 10_000, "server_cpu": cpu, "bytes": 0, "rps": 10_000} for cpu in (1.6, 0.6, 1.0)]
    rest["loaded"]["step"], rest.setdefault("beside", {})["step"] = runs, health
    md = run.render(record)
    step = row(md, "`PUT /processes/steps/{id}` ≤ 15x")
    assert step[1] == "16.7x" and step[2] == run.NOT_MET
    rest["beside"]["step"] = [{**h, "server_cpu": 0.4} for h in health]  # /health 0.04 ms: 40x, 25x, 50x
    assert row(run.render(record), "`PUT /processes/steps/{id}` ≤ 15x")[1] == "40.0x"
