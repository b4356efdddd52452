"""Building one user's weekly or quarterly report from their data, as a CSV file and an HTML summary.

Figures (all from rows the user can see, via `handlers.insights.progress_data`): events in the period and how many
are done, steps and substeps completed in it, scheduled time by event status, and the processes still in
progress at the period's end. `save_report` stores both files (private storage, never the public uploads)
and upserts the one report row of that user, type and period, so generating a period twice replaces it.
"""

from __future__ import annotations

import csv
import html
import io
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from adapters.storage import Storage
from handlers.context import Context
from handlers.insights import progress_data
from handlers.insights.progress_data import Facts, Window
from persistence import reports as report_rows
from persistence.enums import EventStatus, ReportType
from persistence.errors import Invalid
from persistence.models import Report


@dataclass(frozen=True)
class Period:
    kind: ReportType
    start: datetime
    end: datetime
    year: int
    quarter: int
    week: int | None
    label: str


def week_period(year: int, week: int) -> Period:
    try:
        monday = date.fromisocalendar(year, week, 1)
    except ValueError:
        raise Invalid(f"{year} has no ISO week {week}") from None
    start = datetime(monday.year, monday.month, monday.day, tzinfo=UTC)
    thursday = monday + timedelta(days=3)  # the week belongs to its Thursday's month and quarter
    return Period(ReportType.WEEKLY, start, start + timedelta(days=7), year, (thursday.month - 1) // 3 + 1, week,
                  f"Week {week}, {year}")


def quarter_period(year: int, quarter: int) -> Period:
    if not 1 <= quarter <= 4:
        raise Invalid("quarter must be 1 to 4")
    start = datetime(year, 3 * quarter - 2, 1, tzinfo=UTC)
    end = datetime(year + 1, 1, 1, tzinfo=UTC) if quarter == 4 else datetime(year, 3 * quarter + 1, 1, tzinfo=UTC)
    return Period(ReportType.QUARTERLY, start, end, year, quarter, None, f"Q{quarter} {year}")


def period_of(kind: ReportType, moment: datetime) -> Period:
    """The period of `kind` that contains `moment`."""
    if kind is ReportType.WEEKLY:
        iso = moment.isocalendar()
        return week_period(iso.year, iso.week)
    if kind is ReportType.QUARTERLY:
        return quarter_period(moment.year, (moment.month - 1) // 3 + 1)
    raise Invalid("reports are weekly or quarterly")


@dataclass
class Figures:
    events: int = 0
    events_done: int = 0
    steps_completed: int = 0
    substeps_completed: int = 0
    minutes_by_status: dict[str, int] = field(default_factory=dict)
    in_progress: list[dict[str, Any]] = field(default_factory=list)
    done_events: list[dict[str, Any]] = field(default_factory=list)


def figures(facts: Facts, period: Period) -> Figures:
    w = Window(period.start, period.end)
    events = [e for e in facts.events if e.start in w]
    minutes: defaultdict[str, int] = defaultdict(int)
    for e in events:
        minutes[e.status.value] += e.minutes
    out = Figures(events=len(events), events_done=sum(e.done for e in events))
    out.minutes_by_status = {s.value: minutes.get(s.value, 0) for s in EventStatus}
    for p in facts.processes:
        for item in p.items:
            if item.completed and item.completed_at in w:
                if item.is_step:
                    out.steps_completed += 1
                else:
                    out.substeps_completed += 1
        done = sum(i.done_by(period.end) for i in p.items)
        if 0 < done < len(p.items) and p.created_at < period.end:
            out.in_progress.append({"id": str(p.id), "title": p.title, "done": done, "total": len(p.items),
                                    "progress": round(done / len(p.items) * 100)})
    out.in_progress.sort(key=lambda p: (-p["progress"], p["title"]))
    out.done_events = [{"id": str(e.id), "start": e.start.isoformat(), "minutes": e.minutes}
                       for e in events if e.done]
    return out


def render_csv(period: Period, f: Figures) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["section", "name", "value"])
    w.writerow(["period", "label", period.label])
    w.writerow(["period", "start", period.start.date().isoformat()])
    w.writerow(["period", "end", (period.end - timedelta(days=1)).date().isoformat()])
    w.writerow(["events", "total", f.events])
    w.writerow(["events", "done", f.events_done])
    w.writerow(["work", "steps_completed", f.steps_completed])
    w.writerow(["work", "substeps_completed", f.substeps_completed])
    for status, minutes in f.minutes_by_status.items():
        w.writerow(["minutes_by_status", status, minutes])
    for p in f.in_progress:
        w.writerow(["process_in_progress", p["title"], f"{p['done']}/{p['total']} ({p['progress']}%)"])
    return buf.getvalue().encode()


def render_html(period: Period, name: str, f: Figures) -> bytes:
    e = html.escape
    rows = "".join(f"<tr><td>{e(s)}</td><td>{m // 60} h {m % 60:02d} min</td></tr>"
                   for s, m in f.minutes_by_status.items() if m)
    procs = "".join(f"<li>{e(p['title'])}: {p['done']} of {p['total']} items ({p['progress']}%)</li>"
                    for p in f.in_progress) or "<li>none</li>"
    rate = f"{round(f.events_done / f.events * 100)}%" if f.events else "n/a"
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{e(period.label)} report for {e(name)}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:44rem;margin:2rem auto;color:#222}}
td,th{{padding:.25rem .75rem;text-align:left}}</style></head><body>
<h1>{e(period.label)}</h1><p>{e(name)} · {period.start.date()} to {(period.end - timedelta(days=1)).date()}</p>
<h2>Events</h2><p>{f.events} events, {f.events_done} done (completion rate {rate}).</p>
<h2>Work completed</h2><p>{f.steps_completed} steps and {f.substeps_completed} substeps.</p>
<h2>Scheduled time by status</h2><table>{rows or '<tr><td>no scheduled time</td></tr>'}</table>
<h2>Processes in progress</h2><ul>{procs}</ul>
</body></html>
"""
    return page.encode()


def file_key(user_id: uuid.UUID, report_id: uuid.UUID, fmt: str) -> str:
    return f"{user_id}/{report_id}.{fmt}"


def download_name(report_type: str, date_range: str | None, fmt: str) -> str:
    name = "".join(c if c.isalnum() else "-" for c in (date_range or "report").lower()).strip("-")
    return f"report-{report_type}-{name}.{fmt}"


def disposition(report_type: str, date_range: str | None, fmt: str) -> str:
    """The summary opens in the browser; the figures are saved."""
    return f'{"inline" if fmt == "html" else "attachment"}; filename="{download_name(report_type, date_range, fmt)}"'


async def save_report(ctx: Context, storage: Storage, period: Period) -> tuple[Report, list[str]]:
    """Compute, store and upsert the caller's report for `period`; return the row and the storage keys of
    files it replaced (to remove after commit)."""
    facts = await progress_data.load(ctx, Window(period.start, period.end), None)
    f = figures(facts, period)
    row = await report_rows.for_period(ctx.db, ctx.user_id, period.kind.value, period.label)
    old = [row.storage_key] if row is not None and row.storage_key else []
    if row is None:
        row = Report(id=uuid.uuid4(), user_id=ctx.user_id, report_type=period.kind.value, date_range=period.label,
                     created_at=ctx.now, title="", file_url="")
    version = uuid.uuid4().hex[:8]  # a new name per generation: a reader never sees a half-replaced file
    csv_bytes, html_bytes = render_csv(period, f), render_html(period, ctx.user.name, f)
    base = f"{ctx.user_id}/{row.id}-{version}"
    await storage.save(f"{base}.csv", csv_bytes, disposition=disposition(period.kind.value, period.label, "csv"))
    await storage.save(f"{base}.html", html_bytes, disposition=disposition(period.kind.value, period.label, "html"))
    row.title = f"{'Weekly' if period.kind is ReportType.WEEKLY else 'Quarterly'} report · {period.label}"
    row.description = (f"{f.events_done} of {f.events} events done, {f.steps_completed} steps completed, "
                       f"{len(f.in_progress)} processes in progress")
    row.file_url = f"/reports/{row.id}/download"
    row.storage_key = base
    row.year, row.quarter, row.week = period.year, period.quarter, period.week
    row.size = len(csv_bytes) + len(html_bytes)
    row.report_metadata = {"formats": ["html", "csv"], "generatedAt": ctx.now.isoformat(),
                           "start": period.start.date().isoformat(),
                           "end": (period.end - timedelta(days=1)).date().isoformat(),
                           "figures": {"events": f.events, "eventsDone": f.events_done,
                                       "stepsCompleted": f.steps_completed,
                                       "substepsCompleted": f.substeps_completed,
                                       "minutesByStatus": f.minutes_by_status,
                                       "processesInProgress": len(f.in_progress)}}
    row.updated_at = ctx.now
    await report_rows.save(ctx.db, row)
    return row, [f"{k}.{fmt}" for k in old if k != base for fmt in ("csv", "html")]
