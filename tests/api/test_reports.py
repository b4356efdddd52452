"""Reports over REST: own reports only, filtered on the real period columns; nothing invented."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import httpx

from handlers.insights.reports import iso_weeks_of_month
from tests.api.factories_insights import make_report
from tests.conftest import Backend, MakeUser


def test_iso_weeks_of_month() -> None:
    assert iso_weeks_of_month(2025, 1) == [1, 2, 3, 4, 5]  # Thursdays 2, 9, 16, 23, 30
    assert iso_weeks_of_month(2026, 1) == [1, 2, 3, 4, 5]  # Jan 1 2026 is a Thursday
    assert iso_weeks_of_month(2020, 12) == [49, 50, 51, 52, 53]
    assert iso_weeks_of_month(2025, 3) == [10, 11, 12, 13]


async def test_no_reports_means_empty_lists(client: httpx.AsyncClient, make_user: MakeUser) -> None:
    a = await make_user()
    r = await client.get("/reports/me", headers=a.headers, params={"year": 2025, "quarter": 1})
    assert r.status_code == 200 and r.json() == []
    r = await client.get("/reports", headers=a.headers)
    assert r.status_code == 200 and r.json() == {"currentQuarterReport": None, "weeklyReports": []}


async def test_filters_on_period_columns(client: httpx.AsyncClient, make_user: MakeUser, backend: Backend) -> None:
    a, b = await make_user("a"), await make_user("b")
    t0 = datetime.now(UTC)
    w2 = await make_report(backend, a.id, "w2", year=2025, quarter=1, week=2, created_at=t0 - timedelta(days=3))
    w11 = await make_report(backend, a.id, "w11", year=2025, quarter=1, week=11, created_at=t0 - timedelta(days=2))
    w20 = await make_report(backend, a.id, "w20", year=2025, quarter=2, week=20, created_at=t0 - timedelta(days=1))
    q1 = await make_report(backend, a.id, "q1", report_type="quarterly", year=2025, quarter=1, created_at=t0)
    await make_report(backend, a.id, "old", year=2024, quarter=1, week=2, created_at=t0 - timedelta(days=400))
    await make_report(backend, b.id, "foreign", year=2025, quarter=1, week=2)

    async def ids(**params: str | int) -> list[str]:
        r = await client.get("/reports/me", headers=a.headers, params=params)
        assert r.status_code == 200, r.text
        return [x["title"] for x in r.json()]

    assert await ids(year=2025) == ["q1", "w20", "w11", "w2"]
    assert await ids(year=2025, quarter=1) == ["q1", "w11", "w2"]
    assert await ids(year=2025, quarter=1, report_type="weekly") == ["w11", "w2"]
    assert await ids(year=2025, quarter=1, reportType="quarterly") == ["q1"]
    # The UI's month-in-`week`: March 2025 holds ISO weeks 10-13, January weeks 1-5.
    assert await ids(year=2025, quarter=1, week=3) == ["w11"]
    assert await ids(year=2025, week=1) == ["w2"]
    assert await ids(year=2025, month=5) == ["w20"]
    assert await ids(year=2025, week=20) == ["w20"]
    assert await ids(isoWeek=11) == ["w11"]
    assert await ids(week=2) == ["w2", "old"]  # no year: an ISO week number
    assert await ids(limit=2) == ["q1", "w20"]
    assert await ids(skip=3) == ["w2", "old"]

    r = await client.get(f"/reports/{w2}", headers=a.headers)
    body = r.json()
    assert r.status_code == 200 and body["id"] == str(w2)
    assert {"fileUrl", "reportType", "dateRange", "size", "metadata", "userId", "createdAt", "updatedAt", "year",
            "quarter", "week"} <= body.keys()
    assert body["metadata"] == {"k": "v"} and body["year"] == 2025 and body["week"] == 2
    assert (await client.get(f"/reports/{w2}", headers=b.headers)).status_code == 404
    assert (await client.get(f"/reports/{uuid.uuid4()}", headers=a.headers)).status_code == 404
    assert [x["title"] for x in (await client.get("/reports/me", headers=b.headers)).json()] == ["foreign"]
    del w11, w20, q1


async def test_overview_current_quarter(client: httpx.AsyncClient, make_user: MakeUser, backend: Backend) -> None:
    a, b = await make_user("a"), await make_user("b")
    now = datetime.now(UTC)
    quarter = (now.month - 1) // 3 + 1
    await make_report(backend, a.id, "last-year-q", report_type="quarterly", year=now.year - 1, quarter=quarter)
    current = await make_report(backend, a.id, "this-q", report_type="quarterly", year=now.year, quarter=quarter)
    await make_report(backend, a.id, "wk", year=now.year, quarter=quarter, week=1)
    await make_report(backend, b.id, "b-wk", year=now.year, quarter=quarter, week=1)
    r = await client.get("/reports", headers=a.headers)
    assert r.status_code == 200
    body = r.json()
    assert body["currentQuarterReport"]["id"] == str(current)
    assert [w["title"] for w in body["weeklyReports"]] == ["wk"]
    body_b = (await client.get("/reports", headers=b.headers)).json()
    assert body_b["currentQuarterReport"] is None and [w["title"] for w in body_b["weeklyReports"]] == ["b-wk"]


async def test_bad_filters_are_422(client: httpx.AsyncClient, make_user: MakeUser) -> None:
    a = await make_user()
    for params in ({"year": "soon"}, {"quarter": 5}, {"week": 54}, {"report_type": "daily"}, {"month": 13},
                   {"month": 3}, {"limit": 0}):
        r = await client.get("/reports/me", headers=a.headers, params=params)
        assert r.status_code == 422, (params, r.text)
    assert (await client.get("/reports/not-a-uuid", headers=a.headers)).status_code == 422
