"""The calendar over REST: range scoping, overlap, limits, the legacy path, debug, today/upcoming/month."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from persistence.enums import EventStatus, ParticipantStatus
from tests.api.eventkit import T0, create_event, insert_event, iso, make_topic
from tests.conftest import Backend, MakeUser
from tests.statements import recorded

EVENT_OUT_KEYS = {"id", "title", "description", "startTime", "endTime", "date", "time", "duration", "status",
                  "complexity", "color", "location", "eventMetadata", "createdById", "processId", "recordingUrl",
                  "createdAt", "updatedAt", "topics", "participants"}


async def test_range_is_scoped_to_the_caller(client: httpx.AsyncClient, make_user: MakeUser,
                                             backend: Backend) -> None:
    alice, bob = await make_user("alice"), await make_user("bob")
    topic = await make_topic(backend, "Ops")
    own = await create_event(client, alice, title="own", topics=[topic])
    invited = await insert_event(backend, bob, T0 + timedelta(days=1), title="invited",
                                 guests=((alice, ParticipantStatus.INVITED),))
    await insert_event(backend, bob, T0 + timedelta(days=1), title="declined",
                       guests=((alice, ParticipantStatus.DECLINED),))
    await insert_event(backend, bob, T0, title="bob's alone")
    for path in ("/calendar/events", "/events/calendar"):
        for q in ({"start_date": "2026-03-01", "end_date": "2026-03-31"},
                  {"startDate": "2026-03-01", "endDate": "2026-03-31"}):
            r = await client.get(path, params=q, headers=alice.headers)
            assert r.status_code == 200, r.text
            body = r.json()
            assert [e["title"] for e in body] == ["own", "invited"]
            assert set(body[0]) == EVENT_OUT_KEYS
            assert body[0]["topics"][0]["name"] == "Ops" and body[0]["id"] == own["id"]
            assert (body[1]["date"], body[1]["time"], body[1]["duration"]) == ("2026-03-03", "09:00", "60min")
            assert body[1]["id"] == invited and len(body[1]["participants"]) == 2
    r = await client.get("/calendar/events", params={"start_date": "2026-03-01", "end_date": "2026-03-31"},
                         headers=bob.headers)
    assert {e["title"] for e in r.json()} == {"invited", "declined", "bob's alone"}


async def test_range_bounds_are_inclusive_days_and_overlap(client: httpx.AsyncClient, make_user: MakeUser,
                                                           backend: Backend) -> None:
    alice = await make_user("alice")
    day = datetime(2026, 4, 10, tzinfo=UTC)
    await insert_event(backend, alice, day - timedelta(hours=1), 30, title="before")
    await insert_event(backend, alice, day - timedelta(hours=1), 120, title="spans in")
    await insert_event(backend, alice, day, 0, title="at midnight")
    await insert_event(backend, alice, day + timedelta(hours=23, minutes=59), 600, title="last minute")
    await insert_event(backend, alice, day + timedelta(days=1), 30, title="next day")
    await insert_event(backend, alice, day - timedelta(hours=1), 60, title="ends at midnight")
    r = await client.get("/calendar/events", params={"start_date": "2026-04-10", "end_date": "2026-04-10"},
                         headers=alice.headers)
    assert [e["title"] for e in r.json()] == ["spans in", "at midnight", "last minute"]
    # A full ISO timestamp is read as its date.
    r = await client.get("/calendar/events", headers=alice.headers,
                         params={"start_date": "2026-04-10T00:00:00.000Z", "end_date": "2026-04-11T05:00:00Z"})
    assert [e["title"] for e in r.json()] == ["spans in", "at midnight", "last minute", "next day"]


@pytest.mark.parametrize("query", [
    {}, {"start_date": "2026-03-01"}, {"start_date": "2026-03-10", "end_date": "2026-03-01"},
    {"start_date": "2026-01-01", "end_date": "2026-03-04"}, {"start_date": "March", "end_date": "2026-03-04"},
    {"start_date": "2026-02-30", "end_date": "2026-03-04"},
])
async def test_bad_ranges_are_422(client: httpx.AsyncClient, make_user: MakeUser, query: dict[str, Any]) -> None:
    alice = await make_user("alice")
    for path in ("/calendar/events", "/calendar/events/debug", "/events/calendar"):
        r = await client.get(path, params=query, headers=alice.headers)
        assert r.status_code == 422, (path, query, r.text)
        assert isinstance(r.json()["detail"], str)


async def test_sixty_two_days_is_allowed(client: httpx.AsyncClient, make_user: MakeUser) -> None:
    alice = await make_user("alice")
    r = await client.get("/calendar/events", params={"start_date": "2026-01-01", "end_date": "2026-03-03"},
                         headers=alice.headers)
    assert r.status_code == 200 and r.json() == []


async def test_debug_counts(client: httpx.AsyncClient, make_user: MakeUser, backend: Backend) -> None:
    alice, bob = await make_user("alice"), await make_user("bob")
    await insert_event(backend, alice, T0, status=EventStatus.DONE)
    await insert_event(backend, alice, T0)
    await insert_event(backend, bob, T0, guests=((alice, ParticipantStatus.CONFIRMED),))
    await insert_event(backend, bob, T0)
    r = await client.get("/calendar/events/debug", params={"startDate": "2026-03-02", "endDate": "2026-03-02"},
                         headers=alice.headers)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["total"] == 3 and body["byStatus"] == {"Done": 1, "Pending": 2}
    assert body["created"] == 2 and body["participating"] == 1 and len(body["sampleIds"]) == 3
    assert body["range"]["startDate"] == "2026-03-02" and body["range"]["endTime"] == "2026-03-03T00:00:00Z"


async def test_today_upcoming_month(client: httpx.AsyncClient, make_user: MakeUser, backend: Backend) -> None:
    alice, bob = await make_user("alice"), await make_user("bob")
    now = datetime.now(UTC).replace(microsecond=0)
    midday = now.replace(hour=12, minute=0, second=0)
    await insert_event(backend, alice, midday, 30, title="today")
    await insert_event(backend, alice, now + timedelta(days=3), 30, title="in three days")
    await insert_event(backend, alice, now + timedelta(days=20), 30, title="in twenty days")
    await insert_event(backend, alice, now - timedelta(days=40), 30, title="long ago")
    await insert_event(backend, bob, midday, 30, title="bob today")
    r = await client.get("/calendar/today", headers=alice.headers)
    assert r.status_code == 200 and [e["title"] for e in r.json()] == ["today"]
    r = await client.get("/calendar/upcoming", headers=alice.headers)
    titles = [e["title"] for e in r.json()]
    assert "in three days" in titles and "in twenty days" not in titles and "long ago" not in titles
    r = await client.get("/calendar/upcoming", params={"days": 30}, headers=alice.headers)
    assert "in twenty days" in [e["title"] for e in r.json()]
    for bad in (0, 63, "x"):
        assert (await client.get("/calendar/upcoming", params={"days": bad},
                                 headers=alice.headers)).status_code == 422
    r = await client.get("/calendar/month", params={"year": now.year, "month": now.month}, headers=alice.headers)
    assert "today" in [e["title"] for e in r.json()] and "bob today" not in [e["title"] for e in r.json()]
    assert "today" in [e["title"] for e in (await client.get("/calendar/month", headers=alice.headers)).json()]
    r = await client.get("/calendar/month", params={"year": 2026, "month": 2}, headers=alice.headers)
    assert r.status_code == 200
    bad_months: list[dict[str, Any]] = [{"month": 13}, {"month": 0}, {"year": 0}, {"year": "soon"}]
    for query in bad_months:
        assert (await client.get("/calendar/month", params=query, headers=alice.headers)).status_code == 422


async def test_calendar_query_count_does_not_grow_with_events(client: httpx.AsyncClient, make_user: MakeUser,
                                                              backend: Backend) -> None:
    alice, bob = await make_user("alice"), await make_user("bob")
    topic = await make_topic(backend, "Ops")
    for i in range(3):
        await create_event(client, alice, topics=[topic], participantIds=[bob.id],
                           startTime=iso(T0 + timedelta(days=i)), endTime=iso(T0 + timedelta(days=i, hours=1)))

    async def statements(path: str, params: dict[str, str]) -> tuple[int, Any]:
        async with recorded(backend.state.engine) as seen:
            r = await client.get(path, params=params, headers=alice.headers)
        assert r.status_code == 200, r.text
        return len(seen), r.json()

    month = {"start_date": "2026-03-01", "end_date": "2026-03-31"}
    few, body = await statements("/calendar/events", month)
    assert len(body) == 3 and few > 0
    for i in range(3, 40):
        await insert_event(backend, alice, T0 + timedelta(hours=i), guests=((bob, ParticipantStatus.INVITED),))
    many, body = await statements("/calendar/events", month)
    assert len(body) == 40 and many == few
    detail_count, _ = await statements(f"/events/{body[0]['id']}", {})
    assert detail_count <= 10


async def test_compact_view_is_the_full_view_cut_to_a_cell(client: httpx.AsyncClient, make_user: MakeUser,
                                                           backend: Backend) -> None:
    """`view=compact` lists the same events, in the same order and with the same scoping, paging and bounds, as
    the full view, each cut to what a calendar cell shows; one statement however many events."""
    alice, bob, carol = await make_user("alice"), await make_user("bob"), await make_user("carol")
    await create_event(client, alice, title="own")
    await insert_event(backend, bob, T0 + timedelta(days=1), 90, title="invited", status=EventStatus.DONE,
                       guests=((alice, ParticipantStatus.INVITED), (carol, ParticipantStatus.DECLINED)))
    await insert_event(backend, bob, T0, title="declined", guests=((alice, ParticipantStatus.DECLINED),))
    await insert_event(backend, carol, T0, title="not hers")
    month = {"start_date": "2026-03-01", "end_date": "2026-03-31"}
    for path in ("/calendar/events", "/events/calendar"):
        full = (await client.get(path, params=month, headers=alice.headers)).json()
        r = await client.get(path, params={**month, "view": "compact"}, headers=alice.headers)
        assert r.status_code == 200, r.text
        cells = r.json()
        assert [c["id"] for c in cells] == [e["id"] for e in full] and len(cells) == 2
        for cell, event in zip(cells, full, strict=True):
            assert cell == {"id": event["id"], "title": event["title"], "startTime": event["startTime"],
                            "endTime": event["endTime"], "status": event["status"], "color": event["color"],
                            "participantCount": sum(p["status"] != "declined" for p in event["participants"])}
        assert cells[1]["participantCount"] == 2 and cells[1]["status"] == "Done"
        assert cells[1]["endTime"].endswith("Z")
    paged = await client.get("/calendar/events", params={**month, "view": "compact", "skip": 1, "limit": 1},
                             headers=alice.headers)
    assert [c["title"] for c in paged.json()] == ["invited"]
    for bad in ({**month, "view": "tiny"}, {"start_date": "2026-01-01", "end_date": "2026-03-31", "view": "compact"}):
        r = await client.get("/calendar/events", params=bad, headers=alice.headers)
        assert r.status_code == 422, r.text

    for i in range(20):
        await insert_event(backend, alice, T0 + timedelta(hours=i), guests=((bob, ParticipantStatus.INVITED),))
    async with recorded(backend.state.engine) as seen:
        r = await client.get("/calendar/events", params={**month, "view": "compact"}, headers=alice.headers)
    assert len(r.json()) == 22 and len(seen) == 1, seen
