"""REST routes: the progress dashboard and the profile timeline, both computed from the caller's data."""

from __future__ import annotations

from handlers.insights import progress, timeline
from handlers.insights.progress import ProgressIn, ProgressOut
from handlers.insights.timeline import TimelineYear
from server.routing import ApiRouter, Call

router = ApiRouter("progress")


@router.post("/progress")
async def get_progress(call: Call[ProgressIn]) -> ProgressOut:
    """Progress figures for the current week, month or quarter (`timeFrame`), optionally for one topic (`tag`)."""
    return await progress.progress(call.ctx, call.body)


@router.get("/progress/timeline")
async def get_timeline(call: Call) -> list[TimelineYear]:
    """The caller's timeline years, oldest first: per-year, quarter and month counts of events and posts, with
    each year's events and processes (the list the original frontend's profile and feed timeline read)."""
    return await timeline.timeline(call.ctx)
