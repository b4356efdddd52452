"""Progress and timeline over REST: every figure matches the data the test creates; nothing from others."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import select

from handlers.insights.progress import frame_window, previous_window
from handlers.insights.progress_data import Window
from persistence.enums import EventStatus, ParticipantStatus
from persistence.models import UserPreferences
from tests.api.factories_insights import complete_step, make_event, make_post, make_process, step_ids, uid
from tests.conftest import Backend, MakeUser

KEYS = {"coreMetrics", "weeklyProgress", "quarterlyProgress", "dailyActivities", "activeProcesses",
        "completedProcesses", "tagDistribution", "effortDistribution", "dailyBurnup", "quarterlyBurnup", "goals",
        "goalEvaluations", "progressMetadata"}


def test_windows() -> None:
    wed = datetime(2025, 1, 1, tzinfo=UTC)  # a Wednesday
    week = frame_window(wed, "week")
    assert (week.start, week.end) == (datetime(2024, 12, 30, tzinfo=UTC), datetime(2025, 1, 6, tzinfo=UTC))
    assert previous_window(week, "week").start == datetime(2024, 12, 23, tzinfo=UTC)
    month = frame_window(datetime(2025, 3, 31, tzinfo=UTC), "month")
    assert (month.start, month.end) == (datetime(2025, 3, 1, tzinfo=UTC), datetime(2025, 4, 1, tzinfo=UTC))
    assert previous_window(month, "month").start == datetime(2025, 2, 1, tzinfo=UTC)
    q = frame_window(datetime(2025, 11, 15, tzinfo=UTC), "quarter")
    assert (q.start, q.end) == (datetime(2025, 10, 1, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC))
    assert previous_window(q, "quarter").start == datetime(2025, 7, 1, tzinfo=UTC)
    assert len(Window(q.start, q.end).weeks()) == 14 and Window(q.start, q.end).weeks()[0].start == q.start


def _this_week() -> tuple[datetime, datetime]:
    now = datetime.now(UTC)
    today = datetime(now.year, now.month, now.day, tzinfo=UTC)
    return today - timedelta(days=today.weekday()), now


def _metric(body: dict[str, Any], key: str) -> dict[str, Any]:
    return next(m for m in body["coreMetrics"] if m["id"] == f"metric-{key}")


async def test_progress_figures_match_the_data(client: httpx.AsyncClient, make_user: MakeUser,
                                               backend: Backend) -> None:
    a, b = await make_user("a"), await make_user("b")
    week_start, now = _this_week()
    today = datetime(now.year, now.month, now.day, tzinfo=UTC)
    inside = today + (now - today) / 2  # today, already past: inside this week, month and quarter
    # This week: two Done events (60 min each), one Pending; topics Engineering x2, Design x1.
    await make_event(backend, a.id, "done 1", start=week_start + timedelta(hours=1), status=EventStatus.DONE,
                     topics=["Engineering"])
    await make_event(backend, a.id, "done 2", start=week_start + timedelta(hours=3), status=EventStatus.DONE,
                     topics=["Engineering", "Design"])
    await make_event(backend, a.id, "pending", start=week_start + timedelta(hours=5))
    # Last week: one Done event. Not counted anywhere this week.
    await make_event(backend, a.id, "last week", start=week_start - timedelta(days=3), status=EventStatus.DONE)
    # Not the caller's: another user's event, and one the caller declined.
    await make_event(backend, b.id, "b's", start=week_start + timedelta(hours=1), status=EventStatus.DONE)
    await make_event(backend, b.id, "declined", start=week_start + timedelta(hours=1), status=EventStatus.DONE,
                     participants=[(a.id, "participant", ParticipantStatus.DECLINED)])
    # P: both steps completed this week (2 steps + 2 substeps). Q: one step completed last week.
    p = await make_process(backend, a.id, "P", steps=[("one", ["1a", "1b"]), ("two", [])])
    for step in await step_ids(backend, p):
        await complete_step(backend, step, inside)
    q = await make_process(backend, a.id, "Q", steps=[("a", []), ("b", [])])
    await complete_step(backend, (await step_ids(backend, q))[0], week_start - timedelta(days=1))
    other = await make_process(backend, b.id, "B's", steps=[("x", []), ("y", [])])
    await complete_step(backend, (await step_ids(backend, other))[0], inside)

    r = await client.post("/progress", headers=a.headers, json={"time_frame": "week", "tab": "progress"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == KEYS
    assert _metric(body, "steps-completed")["value"] == 2 and _metric(body, "steps-completed")["change"] == 1
    assert _metric(body, "events-completed")["value"] == 2 and _metric(body, "events-completed")["change"] == 1
    assert _metric(body, "total-events")["value"] == 3
    assert _metric(body, "completion-rate")["value"] == 66.7 and _metric(body, "completion-rate")["unit"] == "%"
    assert _metric(body, "active-processes")["value"] == 1 and _metric(body, "active-processes")["change"] == 0
    wk = body["weeklyProgress"]
    assert (wk["eventsCompleted"], wk["stepsCompleted"], wk["totalTimeSpent"], wk["events"]) == (2, 2, 120, 3)
    assert wk["progress"] == 67 and wk["startDate"] == week_start.date().isoformat()
    assert sum(d["stepsCompleted"] for d in body["dailyActivities"]) == 2
    assert sum(d["substepsCompleted"] for d in body["dailyActivities"]) == 2
    assert sum(d["eventsCompleted"] for d in body["dailyActivities"]) == 2
    assert len(body["dailyActivities"]) == 7 and body["dailyActivities"][0]["day"] == "Mon"
    assert [x["name"] for x in body["activeProcesses"]] == ["Q"]
    assert body["activeProcesses"][0]["progress"] == 50 and body["activeProcesses"][0]["completedSteps"] == 1
    done = body["completedProcesses"]
    assert [x["name"] for x in done] == ["P"] and done[0]["progress"] == 100 and done[0]["totalSubsteps"] == 2
    assert body["tagDistribution"] == [
        {"tag": "Engineering", "count": 2, "percentage": 66.7, "color": "#123456"},
        {"tag": "Design", "count": 1, "percentage": 33.3, "color": "#123456"}]
    efforts = {e["status"]: e for e in body["effortDistribution"]}
    assert efforts["Done"]["count"] == 2 and efforts["Pending"]["count"] == 1 and efforts["Review"]["count"] == 0
    assert all(e["total"] == 3 for e in efforts.values())
    assert body["dailyBurnup"][-1] == {"day": body["dailyBurnup"][-1]["day"], "date": now.date().isoformat(),
                                       "progress": 100, "completed": 4, "total": 4}
    # Q's step (completed before this week) is in the quarter's scope unless this week opened the quarter.
    quarter = frame_window(today, "quarter")
    q_in_quarter = week_start - timedelta(days=1) >= quarter.start
    last = body["quarterlyBurnup"][-1]
    assert (last["completed"], last["total"]) == ((5, 6) if q_in_quarter else (4, 4))
    assert body["goals"] == [] and body["goalEvaluations"] == []
    meta = body["progressMetadata"]
    assert meta["goals"] == "not tracked" and meta["timeFrame"] == "week" and meta["timeZone"] == "UTC"
    assert "definitions" in meta

    # The other user sees only their own work.
    rb = (await client.post("/progress", headers=b.headers, json={})).json()
    assert _metric(rb, "steps-completed")["value"] == 1 and _metric(rb, "events-completed")["value"] == 2
    assert [x["name"] for x in rb["activeProcesses"]] == ["B's"]


async def test_tag_filter_and_time_frames(client: httpx.AsyncClient, make_user: MakeUser, backend: Backend) -> None:
    a = await make_user()
    week_start, _ = _this_week()
    await make_event(backend, a.id, "eng", start=week_start + timedelta(hours=1), status=EventStatus.DONE,
                     topics=["Engineering"])
    await make_event(backend, a.id, "design", start=week_start + timedelta(hours=2), topics=["Design"])
    r = await client.post("/progress", headers=a.headers, json={"timeFrame": "week", "tag": "design"})
    body = r.json()
    assert _metric(body, "total-events")["value"] == 1 and _metric(body, "events-completed")["value"] == 0
    assert [t["tag"] for t in body["tagDistribution"]] == ["Design"] and body["progressMetadata"]["tag"] == "design"
    for frame, days in (("month", range(28, 32)), ("quarter", range(90, 93))):
        r = await client.post("/progress", headers=a.headers, json={"timeFrame": frame, "tag": ""})
        assert r.status_code == 200, r.text
        body = r.json()
        assert len(body["dailyActivities"]) in days
        assert body["progressMetadata"]["startDate"].endswith("-01")
        first_day = str(body["progressMetadata"]["startDate"])
        starts = [week_start + timedelta(hours=1), week_start + timedelta(hours=2)]
        expected = sum(s.date().isoformat() >= first_day for s in starts)
        assert _metric(body, "total-events")["value"] == expected
        assert _metric(body, "events-completed")["value"] == (starts[0].date().isoformat() >= first_day)


@pytest.mark.parametrize("body", [{"timeFrame": "year"}, {"time_frame": 3}, {"tab": "bogus"}, {"tag": "x" * 101}])
async def test_bad_progress_input_is_422(client: httpx.AsyncClient, make_user: MakeUser,
                                         body: dict[str, object]) -> None:
    a = await make_user()
    r = await client.post("/progress", headers=a.headers, json=body)
    assert r.status_code == 422, r.text


async def test_empty_progress_is_all_zero(client: httpx.AsyncClient, make_user: MakeUser) -> None:
    a = await make_user()
    body = (await client.post("/progress", headers=a.headers, json={})).json()
    assert all(m["value"] == 0 and m["change"] == 0 for m in body["coreMetrics"])
    assert body["activeProcesses"] == [] and body["tagDistribution"] == []
    assert all(d["progress"] == 0 and d["total"] == 0 for d in body["dailyBurnup"])


async def test_timeline(client: httpx.AsyncClient, make_user: MakeUser, backend: Backend) -> None:
    a, b = await make_user("a"), await make_user("b")
    old = await make_event(backend, a.id, "old", start=datetime(2024, 3, 15, 10, 30, tzinfo=UTC),
                           topics=["Design"])
    shared = await make_event(backend, b.id, "joined", start=datetime(2024, 11, 2, 9, tzinfo=UTC),
                              participants=[(a.id, "participant", ParticipantStatus.CONFIRMED)])
    await make_event(backend, b.id, "b only", start=datetime(2023, 5, 1, tzinfo=UTC))
    await make_post(backend, a.id, "post", created_at=datetime(2024, 3, 20, tzinfo=UTC))
    await make_post(backend, b.id, "b post", created_at=datetime(2024, 3, 20, tzinfo=UTC))
    proc = await make_process(backend, a.id, "Mine", steps=[("s1", []), ("s2", [])])
    await complete_step(backend, (await step_ids(backend, proc))[0], datetime.now(UTC))
    await make_process(backend, b.id, "Theirs")

    # The profile page's and the feed timeline's own request: a list of years, the newest last.
    r = await client.get("/progress/timeline", headers=a.headers)
    assert r.status_code == 200, r.text
    years = r.json()
    assert isinstance(years, list)
    this_year = datetime.now(UTC).year
    assert [y["year"] for y in years] == sorted({2024, this_year})
    y2024 = years[0]
    assert [e["id"] for e in y2024["events"]] == [str(old), str(shared)]
    first = y2024["events"][0]
    assert first["date"] == "2024-03-15" and first["time"] == "10:30" and first["tags"] == ["Design"]
    assert first["isCreator"] is True and y2024["events"][1]["isCreator"] is False
    mine = years[-1]["processes"]
    assert [p["title"] for p in mine] == ["Mine"]
    assert mine[0]["stepCount"] == 2 and mine[0]["completedSteps"] == 1 and mine[0]["progress"] == 50
    assert y2024["eventCount"] == 2 and y2024["activityCount"] == 1
    assert [q["label"] for q in y2024["quarters"]] == ["Q1 2024", "Q2 2024", "Q3 2024", "Q4 2024"]
    assert [q["quarter"] for q in y2024["quarters"]] == [1, 2, 3, 4]
    q1 = y2024["quarters"][0]
    assert q1["eventCount"] == 1 and q1["activityCount"] == 1 and q1["year"] == 2024
    march = q1["months"][2]
    assert march == {"monthNumber": 3, "year": 2024, "startDate": "2024-03-01", "endDate": "2024-03-31",
                     "label": "March", "eventCount": 1, "activityCount": 1}
    assert y2024["quarters"][3]["eventCount"] == 1
    # What the frontend does with it (useProfile.tsx): the most recent year, then its last quarter.
    assert years[-1]["year"] == this_year and years[-1]["quarters"][-1]["quarter"] == 4


async def test_periods_follow_the_callers_time_zone(client: httpx.AsyncClient, make_user: MakeUser,
                                                    backend: Backend) -> None:
    a = await make_user()
    async with backend.state.sessionmaker.begin() as db:
        prefs = await db.scalar(select(UserPreferences).where(UserPreferences.user_id == uid(a.id)))
        if prefs is None:
            db.add(UserPreferences(user_id=uid(a.id), time_zone="Pacific/Kiritimati"))
        else:
            prefs.time_zone = "Pacific/Kiritimati"
    body = (await client.post("/progress", headers=a.headers, json={})).json()
    local_today = datetime.now(ZoneInfo("Pacific/Kiritimati")).date()
    meta = body["progressMetadata"]
    assert meta["timeZone"] == "Pacific/Kiritimati"
    assert meta["startDate"] == (local_today - timedelta(days=local_today.weekday())).isoformat()
    assert body["dailyBurnup"][-1]["date"] == local_today.isoformat()
