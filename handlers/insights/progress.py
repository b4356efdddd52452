"""The progress dashboard: every figure computed from the caller's own events, steps and substeps.

Nothing is invented: there is no goals table, so `goals` and `goalEvaluations` are empty and
`progressMetadata` says they are not tracked; `progressMetadata.definitions` states how each figure is made.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field

from handlers.clock import add_days, day_start, user_zone
from handlers.context import Context
from handlers.insights.progress_data import EventFact, Facts, ProcessFact, Window, load
from handlers.schema import UTC, In, Out
from persistence.enums import EventStatus

TimeFrame = Literal["week", "month", "quarter"]
STATUS_COLORS = {EventStatus.PENDING: "#FFC107", EventStatus.PLANNING: "#9C27B0", EventStatus.EXECUTION: "#2196F3",
                 EventStatus.REVIEW: "#FF5722", EventStatus.ADMINISTRATIVE: "#607D8B", EventStatus.DONE: "#4CAF50"}
MAX_LISTED_PROCESSES = 50

DEFINITIONS = {
    "events": "your events (created, or joined and not declined) starting in the period",
    "completionRate": "events with status Done / events in the period, in percent",
    "stepsCompleted": "steps whose completedAt falls in the period (substeps counted separately)",
    "timeSpent": "scheduled minutes of the period's Done events",
    "efficiency": "of the period's events that have already ended, the percentage that are Done",
    "activeProcesses": "your live (non-template) processes with some but not all steps and substeps completed",
    "completedProcesses": "processes whose last step or substep was completed in the period",
    "processProgress": "completed steps and substeps / all steps and substeps, in percent",
    "change": "this period's value minus the previous period's of the same length",
    "tagDistribution": "topics of the period's events; percentage of all topic assignments",
    "effortDistribution": "the period's events by status",
    "burnup": "share of the work items (steps and substeps) of processes linked to the period's events or worked "
              "on in it, completed by the end of each day (week for quarterlyBurnup); future days are omitted",
}


def _blank(value: Any) -> Any:
    return None if isinstance(value, str) and not value.strip() else value


class ProgressIn(In):
    time_frame: TimeFrame = "week"
    """week, month or quarter (the current one, compared with the one before)"""
    tab: Annotated[Literal["progress", "time", "effort", "goals"] | None, BeforeValidator(_blank)] = None
    """the original client's tab (progress, time, effort or goals), echoed back"""
    tag: Annotated[str | None, BeforeValidator(_blank)] = Field(default=None, max_length=100)
    """only events tagged with the topic of this name (any case)"""


class PerformanceMetric(Out):
    id: str
    name: str
    value: float
    unit: str
    change: float
    is_positive: bool


class ProcessMetric(Out):
    id: str
    name: str
    completed_steps: int
    total_steps: int
    completed_substeps: int
    total_substeps: int
    time_spent: int
    complexity: int | None
    last_activity: UTC
    progress: int
    status: Literal["not_started", "in_progress", "completed"]


class DailyActivity(Out):
    day: str
    date: str
    events: int
    events_completed: int
    steps_completed: int
    substeps_completed: int
    time_spent: int
    efficiency: int


class PeriodProgress(Out):
    start_date: str
    end_date: str
    events: int
    events_completed: int
    steps_completed: int
    total_time_spent: int
    efficiency: int
    progress: int


class WeeklyProgress(PeriodProgress):
    week: str


class QuarterlyProgress(PeriodProgress):
    quarter: str
    weeks: list[WeeklyProgress]


class TagShare(Out):
    tag: str
    count: int
    percentage: float
    color: str | None


class EffortShare(Out):
    category: str
    status: EventStatus
    value: int
    count: int
    total: int
    percentage: float
    color: str


class DailyBurnup(Out):
    day: str
    date: str
    progress: int
    completed: int
    total: int


class WeeklyBurnup(Out):
    week: str
    progress: int
    completed: int
    total: int


class ProgressOut(Out):
    core_metrics: list[PerformanceMetric]
    weekly_progress: WeeklyProgress
    quarterly_progress: QuarterlyProgress
    daily_activities: list[DailyActivity]
    active_processes: list[ProcessMetric]
    completed_processes: list[ProcessMetric]
    tag_distribution: list[TagShare]
    effort_distribution: list[EffortShare]
    daily_burnup: list[DailyBurnup]
    quarterly_burnup: list[WeeklyBurnup]
    goals: list[dict[str, Any]]
    goal_evaluations: list[dict[str, Any]]
    progress_metadata: dict[str, Any]


# ---- periods ------------------------------------------------------------------------------------------------

def _add_months(first: datetime, months: int) -> datetime:
    index = first.year * 12 + first.month - 1 + months
    return first.replace(year=index // 12, month=index % 12 + 1)


def frame_window(today: datetime, frame: TimeFrame) -> Window:
    """The current period containing `today` (a local midnight)."""
    if frame == "week":
        start = add_days(today, -today.weekday())
        return Window(start, add_days(start, 7))
    if frame == "month":
        start = today.replace(day=1)
        return Window(start, _add_months(start, 1))
    start = today.replace(month=(today.month - 1) // 3 * 3 + 1, day=1)
    return Window(start, _add_months(start, 3))


def previous_window(window: Window, frame: TimeFrame) -> Window:
    if frame == "week":
        return Window(add_days(window.start, -7), window.start)
    return Window(_add_months(window.start, -1 if frame == "month" else -3), window.start)


def _last_day(w: Window) -> str:
    return add_days(w.end, -1).date().isoformat()


# ---- figures ------------------------------------------------------------------------------------------------

def _pct(part: int, whole: int, digits: int = 0) -> float:
    return round(part / whole * 100, digits) if whole else 0.0


def _in(facts: Facts, w: Window) -> list[EventFact]:
    return [e for e in facts.events if e.start in w]


def _efficiency(events: list[EventFact], now: datetime) -> int:
    ended = [e for e in events if e.end <= now]
    return int(_pct(sum(e.done for e in ended), len(ended)))


def _completed_in(processes: list[ProcessFact], w: Window, steps: bool) -> int:
    return sum(1 for p in processes for i in p.items if i.is_step == steps and i.completed and i.completed_at in w)


def _state(p: ProcessFact, moment: datetime | None = None) -> tuple[int, int, str]:
    done = sum(i.completed for i in p.items) if moment is None else sum(i.done_by(moment) for i in p.items)
    total = len(p.items)
    status = "not_started" if total == 0 or done == 0 else "completed" if done == total else "in_progress"
    return done, total, status


def _finished_at(p: ProcessFact) -> datetime | None:
    stamps = [i.completed_at for i in p.items]
    if not p.items or not all(i.completed for i in p.items) or None in stamps:
        return None
    return max(s for s in stamps if s is not None)


def _process_metric(p: ProcessFact) -> ProcessMetric:
    done, total, status = _state(p)
    steps = p.steps
    complexities = [e.complexity for e in p.events if e.complexity is not None]
    stamps = [i.completed_at for i in p.items if i.completed_at] + [p.updated_at or p.created_at, p.created_at]
    return ProcessMetric(
        id=str(p.id), name=p.title, completed_steps=sum(s.completed for s in steps), total_steps=len(steps),
        completed_substeps=sum(i.completed for i in p.items if not i.is_step),
        total_substeps=len(p.items) - len(steps), time_spent=sum(e.minutes for e in p.events if e.done),
        complexity=max(complexities) if complexities else None, last_activity=max(stamps),
        progress=int(_pct(done, total)), status=status,
    )


def _period(facts: Facts, w: Window, now: datetime) -> dict[str, Any]:
    events = _in(facts, w)
    done = sum(e.done for e in events)
    return dict(start_date=w.start.date().isoformat(), end_date=_last_day(w), events=len(events),
                events_completed=done, steps_completed=_completed_in(facts.processes, w, True),
                total_time_spent=sum(e.minutes for e in events if e.done), efficiency=_efficiency(events, now),
                progress=int(_pct(done, len(events))))


def _week(facts: Facts, w: Window, now: datetime) -> WeeklyProgress:
    return WeeklyProgress(week=f"Week {w.start.isocalendar().week}", **_period(facts, w, now))


def _core(facts: Facts, cur: Window, prev: Window, now: datetime) -> list[PerformanceMetric]:
    def metric(key: str, name: str, now_value: float, before: float, unit: str = "") -> PerformanceMetric:
        change = round(now_value - before, 1)
        return PerformanceMetric(id=f"metric-{key}", name=name, value=now_value, unit=unit, change=change,
                                 is_positive=change >= 0)

    c, p = _in(facts, cur), _in(facts, prev)
    c_done, p_done = sum(e.done for e in c), sum(e.done for e in p)
    active_now = sum(_state(x)[2] == "in_progress" for x in facts.processes)
    active_before = sum(_state(x, cur.start)[2] == "in_progress" for x in facts.processes)
    return [
        metric("completion-rate", "Completion Rate", _pct(c_done, len(c), 1), _pct(p_done, len(p), 1), "%"),
        metric("events-completed", "Events Completed", c_done, p_done),
        metric("steps-completed", "Steps Completed", _completed_in(facts.processes, cur, True),
               _completed_in(facts.processes, prev, True)),
        metric("active-processes", "Active Processes", active_now, active_before),
        metric("total-events", "Total Events", len(c), len(p)),
    ]


def _daily(facts: Facts, w: Window, now: datetime) -> list[DailyActivity]:
    out = []
    for d in w.days():
        events = _in(facts, d)
        out.append(DailyActivity(
            day=d.start.strftime("%a"), date=d.start.date().isoformat(), events=len(events),
            events_completed=sum(e.done for e in events),
            steps_completed=_completed_in(facts.processes, d, True),
            substeps_completed=_completed_in(facts.processes, d, False),
            time_spent=sum(e.minutes for e in events if e.done), efficiency=_efficiency(events, now)))
    return out


def _scope(facts: Facts, w: Window) -> list[ProcessFact]:
    return [p for p in facts.processes
            if any(e.start in w for e in p.events) or any(i.completed_at in w for i in p.items)]


def _burn(scope: list[ProcessFact], moment: datetime) -> tuple[int, int, int]:
    total = sum(len(p.items) for p in scope)
    done = sum(i.done_by(moment) for p in scope for i in p.items)
    return int(_pct(done, total)), done, total


def _tags(events: list[EventFact]) -> list[TagShare]:
    counts: Counter[str] = Counter()
    colors: dict[str, str | None] = {}
    for e in events:
        for name, color in e.tags:
            counts[name] += 1
            colors.setdefault(name, color)
    whole = sum(counts.values())
    ordered = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return [TagShare(tag=n, count=k, percentage=_pct(k, whole, 1), color=colors[n]) for n, k in ordered]


def _efforts(events: list[EventFact]) -> list[EffortShare]:
    counts = Counter(e.status for e in events)
    return [EffortShare(category=s.value, status=s, value=counts[s], count=counts[s], total=len(events),
                        percentage=_pct(counts[s], len(events), 1), color=STATUS_COLORS[s]) for s in EventStatus]


async def progress(ctx: Context, body: ProgressIn) -> ProgressOut:
    zone = await user_zone(ctx)
    now = ctx.now
    today = day_start(now, zone)
    window = frame_window(today, body.time_frame)
    prev = previous_window(window, body.time_frame)
    week, quarter = frame_window(today, "week"), frame_window(today, "quarter")
    span = Window(min(prev.start, quarter.start, week.start), max(window.end, quarter.end, week.end))
    facts = await load(ctx, span, body.tag)

    events = _in(facts, window)
    active = [p for p in facts.processes if _state(p)[2] == "in_progress"]
    finished = [p for p in facts.processes if _finished_at(p) in window]
    metrics = sorted((_process_metric(p) for p in active), key=lambda m: m.last_activity, reverse=True)
    done_metrics = sorted((_process_metric(p) for p in finished), key=lambda m: m.last_activity, reverse=True)

    daily_scope, quarter_scope = _scope(facts, window), _scope(facts, quarter)
    burnup = [DailyBurnup(day=d.start.strftime("%a"), date=d.start.date().isoformat(),
                          **dict(zip(("progress", "completed", "total"), _burn(daily_scope, d.end), strict=True)))
              for d in window.days() if d.start <= now]
    weekly_burn = [WeeklyBurnup(week=f"Week {w.start.isocalendar().week}",
                                **dict(zip(("progress", "completed", "total"), _burn(quarter_scope, w.end),
                                           strict=True)))
                   for w in quarter.weeks() if w.start <= now]
    quarter_label = f"Q{(quarter.start.month - 1) // 3 + 1} {quarter.start.year}"
    return ProgressOut(
        core_metrics=_core(facts, window, prev, now),
        weekly_progress=_week(facts, week, now),
        quarterly_progress=QuarterlyProgress(
            quarter=quarter_label, weeks=[_week(facts, w, now) for w in quarter.weeks() if w.start <= now],
            **_period(facts, quarter, now)),
        daily_activities=_daily(facts, window, now),
        active_processes=metrics[:MAX_LISTED_PROCESSES],
        completed_processes=done_metrics[:MAX_LISTED_PROCESSES],
        tag_distribution=_tags(events),
        effort_distribution=_efforts(events),
        daily_burnup=burnup,
        quarterly_burnup=weekly_burn,
        goals=[],
        goal_evaluations=[],
        progress_metadata={
            "timeFrame": body.time_frame, "tab": body.tab, "tag": body.tag,
            "startDate": window.start.date().isoformat(), "endDate": _last_day(window),
            "previousStartDate": prev.start.date().isoformat(), "previousEndDate": _last_day(prev),
            "timeZone": str(zone), "generatedAt": now.isoformat().replace("+00:00", "Z"),
            "goals": "not tracked", "goalEvaluations": "not tracked", "definitions": DEFINITIONS,
        },
    )
