"""Legacy date/time/duration parsing and derivation for events."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest

from handlers.events.times import derive, parse_clock, parse_duration, resolve_change, resolve_new
from persistence.errors import Invalid

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize(("text", "minutes"), [
    ("60min", 60), ("1h", 60), ("90", 90), (90, 90), ("1h30m", 90), ("1.5 hours", 90), ("45 minutes", 45),
    ("2 hrs", 120), (" 15m ", 15), ("0", 0),
])
def test_parse_duration(text: str | int, minutes: int) -> None:
    assert parse_duration(text) == timedelta(minutes=minutes)


@pytest.mark.parametrize("text", ["", "soon", "-5", "h", "1x", "99999999", -1, "1h h"])
def test_parse_duration_rejects(text: str | int) -> None:
    with pytest.raises(Invalid):
        parse_duration(text)


@pytest.mark.parametrize(("text", "expected"), [
    ("09:30", time(9, 30)), ("9:05", time(9, 5)), ("23:59:59", time(23, 59, 59)), ("12:00 AM", time(0, 0)),
    ("1:15 pm", time(13, 15)), ("12:30PM", time(12, 30)),
])
def test_parse_clock(text: str, expected: time) -> None:
    assert parse_clock(text) == expected


@pytest.mark.parametrize("text", ["24:00", "9", "09:60", "13:00 PM", "noon", "0:00 AM"])
def test_parse_clock_rejects(text: str) -> None:
    with pytest.raises(Invalid):
        parse_clock(text)


def test_derive_is_utc() -> None:
    legacy = derive(START.astimezone(), START + timedelta(minutes=75))
    assert (legacy.date, legacy.time, legacy.duration) == ("2026-03-02", "09:00", "75min")


def test_resolve_new() -> None:
    assert resolve_new(START, START, None, None, None) == (START, START)
    assert resolve_new(None, None, "2026-03-02", "09:00", "1h") == (START, START + timedelta(hours=1))
    assert resolve_new(START, None, None, None, 30) == (START, START + timedelta(minutes=30))
    for args in ((None, START, None, None, None), (START, None, None, None, None),
                 (START, START - timedelta(seconds=1), None, None, None), (None, None, "2026-03-02", None, "1h")):
        with pytest.raises(Invalid):
            resolve_new(*args)


def test_resolve_change_moves_or_stretches() -> None:
    end = START + timedelta(minutes=30)
    assert resolve_change(START, end, {"time": "10:00"}) == (START + timedelta(hours=1), end + timedelta(hours=1))
    assert resolve_change(START, end, {"duration": "2h"}) == (START, START + timedelta(hours=2))
    assert resolve_change(START, end, {"start_time": START - timedelta(hours=1)}) == (START - timedelta(hours=1),
                                                                                       end)
    with pytest.raises(Invalid):
        resolve_change(START, end, {"start_time": end + timedelta(minutes=1)})
    with pytest.raises(Invalid):
        resolve_change(START, end, {"end_time": None})
