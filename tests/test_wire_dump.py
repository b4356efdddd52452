"""Every shape leaves for the wire through `handlers.schema.to_wire`: one place decides JSON mode and aliases."""

from __future__ import annotations

import datetime as dt
import re
import subprocess
import uuid
from pathlib import Path

from handlers.schema import UTC, Out, to_wire

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("server", "ai", "handlers", "jobs", "channels", "adapters", "persistence")


class _Shape(Out):
    event_id: uuid.UUID
    created_at: UTC


def test_only_to_wire_dumps_for_the_wire() -> None:
    files = subprocess.run(["git", "ls-files", "--", *(f"{p}/*.py" for p in PACKAGES)], cwd=ROOT,
                           capture_output=True, text=True, check=True).stdout.split()
    dumping = re.compile(r"by_alias\s*=\s*True|model_dump\(|dump_python\(")
    offenders = [f for f in files if f != "handlers/schema.py" and dumping.search((ROOT / f).read_text())
                 and f != "server/openapi.py"]  # openapi builds JSON schemas (by_alias), it dumps no values
    assert offenders == [], f"dump through handlers.schema.to_wire instead: {offenders}"


def test_to_wire_is_camel_case_json_for_models_lists_and_declared_shapes() -> None:
    ident = uuid.uuid4()
    at = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    shape = _Shape(event_id=ident, created_at=at)
    expected = {"eventId": str(ident), "createdAt": "2026-01-02T03:04:05Z"}
    assert to_wire(shape) == expected
    assert to_wire([shape], list[_Shape]) == [expected]
    assert to_wire(shape, exclude={"created_at"}) == {"eventId": str(ident)}
