"""REST routes: events, their participants and status history, and the calendar."""

from __future__ import annotations

from starlette.responses import Response

from handlers.context import Outcome
from handlers.events import calendar, participants
from handlers.events import manage as events
from handlers.events.calendar import (
    CalendarCell,
    CalendarDebug,
    CalendarPage,
    CalendarRange,
    CalendarView,
    MonthQuery,
    UpcomingQuery,
)
from handlers.events.manage import EventCreate, EventQuery, EventUpdate, MyEventsQuery
from handlers.events.participants import ParticipantCreate, ParticipantUpdate
from handlers.events.views import EventDetail, EventListItem, EventOut, ParticipantOut, StatusLogOut
from handlers.schema import PageQuery, to_wire
from server.responses import ORJSONResponse
from server.routing import ApiRouter, Call
from server.uploads import respond_then_remove

router = ApiRouter("events")


@router.get("/events", read_only=True)
async def list_events(call: Call[None, EventQuery]) -> list[EventListItem]:
    """Events the caller takes part in, filtered by template, process, status, dates or topic."""
    return await events.list_events(call.ctx, call.query)


@router.post("/events", status=201)
async def create_event(call: Call[EventCreate]) -> Outcome[EventDetail]:
    """Create an event; the caller becomes its organizer (a template is cloned into the event's own process)."""
    return await events.create_event(call.ctx, call.body)


@router.get("/events/me", read_only=True)
async def my_events(call: Call[None, MyEventsQuery]) -> list[EventListItem]:
    """The caller's events (created, or taking part and not declined)."""
    return await events.my_events(call.ctx, call.query)


@router.get("/events/{event_id}", read_only=True)
async def get_event(call: Call) -> EventDetail:
    """One event with its topics, participants, related events and status history."""
    return await events.get_event(call.ctx, call.id("event_id"))


@router.put("/events/{event_id}")
async def update_event(call: Call[EventUpdate]) -> Outcome[EventDetail]:
    """Change the given fields only; members may change only the status."""
    return await events.update_event(call.ctx, call.id("event_id"), call.body)


@router.delete("/events/{event_id}")
async def delete_event(call: Call) -> Outcome[Response]:
    """Delete an event (organizers), and its own process instance if nothing else uses it."""
    outcome = await events.delete_event(call.ctx, call.id("event_id"))
    return respond_then_remove(call.state.storage, outcome, status=204)


@router.get("/events/{event_id}/participants", read_only=True)
async def list_participants(call: Call[None, PageQuery]) -> list[ParticipantOut]:
    """The event's participants, creator first."""
    return await participants.list_participants(call.ctx, call.id("event_id"), call.query)


@router.post("/events/{event_id}/participants", status=201)
async def add_participant(call: Call[ParticipantCreate]) -> Outcome[ParticipantOut]:
    """Invite a user (organizers)."""
    return await participants.add_participant(call.ctx, call.id("event_id"), call.body)


@router.put("/events/{event_id}/participants/{user_id}")
async def update_participant(call: Call[ParticipantUpdate]) -> Outcome[ParticipantOut]:
    """Change a participant's role or status (organizers), or one's own status."""
    return await participants.update_participant(call.ctx, call.id("event_id"), call.id("user_id"), call.body)


@router.delete("/events/{event_id}/participants/{user_id}")
async def remove_participant(call: Call) -> Outcome[None]:
    """Remove a participant (organizers), or leave the event."""
    return await participants.remove_participant(call.ctx, call.id("event_id"), call.id("user_id"))


@router.get("/events/{event_id}/status-logs", read_only=True)
async def status_logs(call: Call[None, PageQuery]) -> list[StatusLogOut]:
    """The event's status changes, newest first."""
    return await events.list_status_logs(call.ctx, call.id("event_id"), call.query)


async def _calendar(call: Call[None, CalendarView]) -> Response:
    query = call.query
    if query.view == "compact":
        return ORJSONResponse(await calendar.range_cells(call.ctx, query))
    return ORJSONResponse(to_wire(await calendar.range_events(call.ctx, query), list[EventOut]))


@router.get("/calendar/events", response=list[EventOut] | list[CalendarCell], read_only=True)
async def calendar_events(call: Call[None, CalendarView]) -> Response:
    """The caller's events overlapping start_date..end_date (inclusive UTC days, at most 62); `view=compact`
    answers only what a calendar cell shows."""
    return await _calendar(call)


@router.get("/events/calendar", response=list[EventOut] | list[CalendarCell], read_only=True)
async def legacy_calendar_events(call: Call[None, CalendarView]) -> Response:
    """Same as GET /calendar/events (the original's path)."""
    return await _calendar(call)


@router.get("/calendar/events/debug", read_only=True)
async def calendar_debug(call: Call[None, CalendarRange]) -> CalendarDebug:
    """Counts behind the calendar query for the caller: per status, created vs. participating, sample ids."""
    return await calendar.debug(call.ctx, call.query)


@router.get("/calendar/today", read_only=True)
async def calendar_today(call: Call[None, CalendarPage]) -> list[EventOut]:
    """The caller's events overlapping today (UTC)."""
    return await calendar.today(call.ctx, call.query)


@router.get("/calendar/upcoming", read_only=True)
async def calendar_upcoming(call: Call[None, UpcomingQuery]) -> list[EventOut]:
    """The caller's events running now or starting in the next `days` days (1-62, default 7)."""
    return await calendar.upcoming(call.ctx, call.query)


@router.get("/calendar/month", read_only=True)
async def calendar_month(call: Call[None, MonthQuery]) -> list[EventOut]:
    """The caller's events in one month (`year`, `month`; default the current UTC month)."""
    return await calendar.month(call.ctx, call.query)
