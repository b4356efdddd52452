"""Jobs on the embedded default (memory:// broker, this process runs them) against SQLite and PostgreSQL:
reminder rows kept in step with events, claimed once and sent once; reports built from real data and
downloadable by their owner only; enqueue failures recorded; dead letters; `/metrics` and `/admin/jobs`."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update

from adapters.storage import Storage
from handlers.events import reminders
from jobs.broker import RedisJobQueue
from jobs.handoffs import relay as relay_handoffs
from persistence.enums import EventStatus, ParticipantStatus
from persistence.models import DeadLetter, JobHandoff, Notification, Reminder, Step, SubStep, User
from tests.api.eventkit import insert_event, make_process
from tests.conftest import Account, Backend, MakeUser
from tests.waiting import eventually


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


async def drain(backend: Backend) -> None:
    jobs = backend.state.jobs
    assert jobs is not None
    await jobs.queue.broker.join()  # type: ignore[attr-defined]


async def reminder_rows(backend: Backend, event_id: str) -> list[tuple[uuid.UUID, datetime, datetime | None]]:
    async with backend.state.sessionmaker() as db:
        rows = await db.execute(select(Reminder.user_id, Reminder.due_at, Reminder.sent_at)
                                .where(Reminder.event_id == uuid.UUID(event_id)).order_by(Reminder.due_at))
        return [tuple(r) for r in rows.all()]  # type: ignore[misc]


async def new_event(client: httpx.AsyncClient, owner: Account, start: datetime, *guests: Account) -> dict[str, Any]:
    r = await client.post("/events", headers=owner.headers, json={
        "title": "Planning", "start_time": iso(start), "end_time": iso(start + timedelta(hours=1)),
        "participant_ids": [g.id for g in guests]})
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


async def test_reminders_follow_the_event_and_its_participants(client: httpx.AsyncClient, make_user: MakeUser,
                                                               backend: Backend) -> None:
    a, b, c = await make_user("ann"), await make_user("bob"), await make_user("cid")
    r = await client.put("/users/me/preferences", headers=b.headers, json={"reminderMinutes": 60})
    assert r.status_code == 200, r.text  # bob wants an hour's notice
    start = datetime(2031, 3, 3, 10, 0, tzinfo=UTC)
    event = await new_event(client, a, start, b)
    rows = await reminder_rows(backend, event["id"])
    assert sorted((str(u), d) for u, d, _ in rows) == sorted([(a.id, start - timedelta(minutes=15)),
                                                              (b.id, start - timedelta(minutes=60))])
    # Moved: every unsent reminder moves with it.
    later = start + timedelta(days=1)
    moved = {"startTime": iso(later), "endTime": iso(later + timedelta(hours=1))}
    r = await client.put(f"/events/{event['id']}", headers=a.headers, json=moved)
    assert r.status_code == 200, r.text
    assert sorted(d for _, d, _ in await reminder_rows(backend, event["id"])) == [
        later - timedelta(minutes=60), later - timedelta(minutes=15)]
    # Changing the preference moves the unsent reminder to the new lead time.
    r = await client.put("/users/me/preferences", headers=b.headers, json={"reminderMinutes": 30})
    assert r.status_code == 200, r.text
    assert sorted(d for _, d, _ in await reminder_rows(backend, event["id"])) == [
        later - timedelta(minutes=30), later - timedelta(minutes=15)]
    # A title change leaves them alone; a new participant gets one; declining drops it; accepting restores it.
    assert (await client.put(f"/events/{event['id']}", headers=a.headers, json={"title": "x"})).status_code == 200
    assert len(await reminder_rows(backend, event["id"])) == 2
    r = await client.post(f"/events/{event['id']}/participants", headers=a.headers, json={"userId": c.id})
    assert r.status_code == 201, r.text
    assert len(await reminder_rows(backend, event["id"])) == 3
    r = await client.put(f"/events/{event['id']}/participants/{b.id}", headers=b.headers, json={"status": "declined"})
    assert r.status_code == 200, r.text
    assert {str(u) for u, _, _ in await reminder_rows(backend, event["id"])} == {a.id, c.id}
    r = await client.put(f"/events/{event['id']}/participants/{b.id}", headers=b.headers,
                         json={"status": "confirmed"})
    assert {str(u) for u, _, _ in await reminder_rows(backend, event["id"])} == {a.id, b.id, c.id}
    # Removed: gone. A failed update (bad input) changes nothing.
    assert (await client.delete(f"/events/{event['id']}/participants/{c.id}", headers=a.headers)).status_code in (
        200, 204)
    assert {str(u) for u, _, _ in await reminder_rows(backend, event["id"])} == {a.id, b.id}
    bad = await client.put(f"/events/{event['id']}", headers=a.headers, json={"startTime": "yesterday-ish"})
    assert bad.status_code == 422
    assert len(await reminder_rows(backend, event["id"])) == 2
    # Deleted: its reminders go with it.
    assert (await client.delete(f"/events/{event['id']}", headers=a.headers)).status_code == 204
    assert await reminder_rows(backend, event["id"]) == []
    # An event in the past gets none.
    past = await new_event(client, a, datetime(2020, 1, 1, 9, 0, tzinfo=UTC))
    assert await reminder_rows(backend, past["id"]) == []


async def test_claims_are_exclusive_and_a_reminder_is_sent_once(client: httpx.AsyncClient, make_user: MakeUser,
                                                                backend: Backend) -> None:
    a, b = await make_user("ann"), await make_user("bob")
    event_id = await insert_event(backend, a, datetime(2031, 1, 1, 9, 0, tzinfo=UTC),
                                  guests=((b, ParticipantStatus.CONFIRMED),))
    due = datetime(2031, 1, 1, 8, 45, tzinfo=UTC)
    async with backend.state.sessionmaker.begin() as db:
        for who in (a, b):
            db.add(Reminder(event_id=uuid.UUID(event_id), user_id=uuid.UUID(who.id), due_at=due))
    now = due + timedelta(seconds=1)
    lease = timedelta(seconds=60)
    async with backend.state.sessionmaker.begin() as db:
        first = await reminders.claim_due(db, now, "s1", lease)
    async with backend.state.sessionmaker.begin() as db:
        second = await reminders.claim_due(db, now, "s2", lease)
    assert len(first) == 2 and second == []
    # A claim whose job got lost is taken over after the lease.
    async with backend.state.sessionmaker.begin() as db:
        assert sorted(await reminders.claim_due(db, now + lease + timedelta(seconds=1), "s2", lease)) == sorted(first)
    # Sending twice (a redelivered job, a second scheduler) sends once.
    sent: list[int] = []
    for _ in range(2):
        async with backend.state.sessionmaker.begin() as db:
            sent.append(len(await reminders.send(db, first[0], now)))
    assert sent == [2, 0]
    async with backend.state.sessionmaker() as db:
        notes = (await db.scalars(select(Notification).where(Notification.type == "event_reminder"))).all()
    assert len(notes) == 1 and notes[0].reference_id == uuid.UUID(event_id) and notes[0].sender_id is None
    assert "starts in 15 minutes" in notes[0].message


async def test_due_reminders_are_sent_by_the_embedded_scheduler(client: httpx.AsyncClient, make_user: MakeUser,
                                                                backend: Backend) -> None:
    a = await make_user("ann")
    start = datetime.now(UTC) + timedelta(minutes=15, seconds=1)
    event = await new_event(client, a, start)

    async def sent(event_id: str) -> int:
        r = await client.get("/notifications", headers=a.headers)
        items = r.json()["items"]
        return sum(1 for n in items if n["type"] == "event_reminder" and n["referenceId"] == event_id)

    await eventually(lambda: sent(event["id"]), what="the reminder")
    # Sent once: another reminder, due at once (the event starts within its 15 minutes' notice), is sent by a
    # later tick of the scheduler; then every job queued so far has finished.
    sentinel = await new_event(client, a, datetime.now(UTC) + timedelta(minutes=15) - timedelta(seconds=1))
    await eventually(lambda: sent(sentinel["id"]), what="the sentinel reminder")
    await drain(backend)
    assert await sent(event["id"]) == 1
    assert (await client.get("/notifications/unread-count", headers=a.headers)).json() == 2  # both reminders
    r = await client.post("/notifications/mark-all-read", headers=a.headers)
    assert r.status_code in (200, 204)
    assert (await client.get("/notifications/unread-count", headers=a.headers)).json() == 0


async def _work(backend: Backend, owner: Account, now: datetime) -> None:
    """This week: two events (one done), a process with one step and one substep completed."""
    monday = (now - timedelta(days=now.weekday())).replace(hour=9, minute=0, second=0, microsecond=0)
    done = await insert_event(backend, owner, monday, 90, title="Done one", status=EventStatus.DONE)
    await insert_event(backend, owner, monday + timedelta(hours=3), 30, title="Open one")
    process_id = await make_process(backend, owner, template=False, title="Launch")
    async with backend.state.sessionmaker.begin() as db:
        first = await db.scalar(select(Step).where(Step.process_id == uuid.UUID(process_id), Step.order == 1))
        assert first is not None
        await db.execute(update(Step).where(Step.id == first.id).values(completed=True, completed_at=monday))
        await db.execute(update(SubStep).where(SubStep.step_id == first.id, SubStep.order == 1)
                         .values(completed=True, completed_at=monday))
    assert done


async def test_reports_are_built_from_data_and_only_their_owner_downloads_them(
        client: httpx.AsyncClient, make_user: MakeUser, backend: Backend) -> None:
    a, b = await make_user("ann"), await make_user("bob")
    now = datetime.now(UTC)
    await _work(backend, a, now)
    r = await client.post("/reports/generate", headers=a.headers, json={"reportType": "weekly"})
    assert r.status_code == 202, r.text
    queued = r.json()
    iso_week = now.isocalendar()
    assert queued["status"] == "queued" and queued["week"] == iso_week.week
    await drain(backend)
    mine = (await client.get("/reports/me", headers=a.headers)).json()
    assert len(mine) == 1
    report = mine[0]
    assert report["reportType"] == "weekly" and report["dateRange"] == f"Week {iso_week.week}, {iso_week.year}"
    figures = report["metadata"]["figures"]
    assert figures["events"] == 2 and figures["eventsDone"] == 1
    assert figures["stepsCompleted"] == 1 and figures["substepsCompleted"] == 1
    assert figures["minutesByStatus"]["Done"] == 90 and figures["minutesByStatus"]["Pending"] == 30
    assert figures["processesInProgress"] == 1
    assert report["fileUrl"] == f"/reports/{report['id']}/download"
    html = await client.get(report["fileUrl"], headers=a.headers)
    assert html.status_code == 200 and html.headers["content-type"].startswith("text/html")
    assert "1 done" in html.text and "Launch" in html.text
    csv = await client.get(report["fileUrl"], headers=a.headers, params={"format": "csv"})
    assert csv.status_code == 200 and "attachment" in csv.headers["content-disposition"]
    assert "events,done,1" in csv.text and "minutes_by_status,Done,90" in csv.text
    # Nobody else gets it, and the files are not under the public uploads mount.
    assert (await client.get(report["fileUrl"], headers=b.headers)).status_code == 404
    assert (await client.get(report["fileUrl"])).status_code == 401
    settings = backend.state.settings
    assert not settings.reports_dir.resolve().is_relative_to(settings.upload_dir.resolve())
    assert (await client.get(report["fileUrl"], headers=a.headers, params={"format": "pdf"})).status_code == 422
    # Building the same period again replaces it (one row, new files); the quarterly one is separate.
    for body in ({"report_type": "weekly"}, {"reportType": "quarterly"}):
        assert (await client.post("/reports/generate", headers=a.headers, json=body)).status_code == 202
    await drain(backend)
    types = sorted(x["reportType"] for x in (await client.get("/reports/me", headers=a.headers)).json())
    assert types == ["quarterly", "weekly"]
    overview = (await client.get("/reports", headers=a.headers)).json()
    assert overview["currentQuarterReport"]["metadata"]["figures"]["events"] == 2
    assert (await client.get("/reports/me", headers=b.headers)).json() == []
    bad = await client.post("/reports/generate", headers=a.headers, json={"reportType": "weekly", "week": 60})
    assert bad.status_code == 422


async def handoff_rows(backend: Backend) -> list[str]:
    async with backend.state.sessionmaker() as db:
        return [h.task for h in (await db.scalars(select(JobHandoff))).all()]


async def test_jobs_of_a_commit_survive_a_queue_outage_then_dead_letter_an_admin_can_retry(
        client: httpx.AsyncClient, make_user: MakeUser, backend: Backend, monkeypatch: pytest.MonkeyPatch) -> None:
    admin, a = await make_user("root", admin=True), await make_user("ann")
    jobs = backend.state.jobs
    assert jobs is not None
    # The queue is down (nothing listens on that port): the request still succeeds after its commit, and the
    # job waits in the hand-off table, written with the change.
    down = RedisJobQueue("redis://127.0.0.1:1/0", redeliver_after=10, consumer="down")
    monkeypatch.setattr(jobs, "queue", down)
    r = await client.post("/reports/generate", headers=a.headers, json={"reportType": "weekly"})
    assert r.status_code == 202, r.text
    assert await handoff_rows(backend) == ["reports.generate"]
    monkeypatch.undo()
    # The queue is back: a relay pass (any instance, every few seconds) enqueues it, and it runs.
    assert await relay_handoffs(jobs, datetime.now(UTC) + timedelta(seconds=11)) == 1
    assert await handoff_rows(backend) == []
    await drain(backend)
    assert len((await client.get("/reports/me", headers=a.headers)).json()) == 1
    # Down for longer than the relay keeps trying: the job becomes a dead letter an admin can retry.
    monkeypatch.setattr(jobs, "queue", down)
    r = await client.post("/reports/generate", headers=a.headers, json={"reportType": "weekly"})
    assert r.status_code == 202, r.text
    assert await relay_handoffs(jobs, datetime.now(UTC) + timedelta(seconds=11), give_up_after=timedelta(0)) == 0
    async with backend.state.sessionmaker() as db:
        letters = (await db.scalars(select(DeadLetter))).all()
    assert [(d.task_name, d.reason) for d in letters] == [("reports.generate", "enqueue_failed")]
    assert await handoff_rows(backend) == []
    monkeypatch.undo()
    overview = await client.get("/admin/jobs", headers=admin.headers)
    assert overview.status_code == 200, overview.text
    body = overview.json()
    assert body["deadLettersOpen"] == 1 and body["deadLetters"][0]["arguments"]["user_id"] == a.id
    assert body["queue"]["broker"] == "memory" and body["workersAlive"] == 1  # this process runs the jobs
    assert (await client.get("/admin/jobs", headers=a.headers)).status_code == 403
    letter = body["deadLetters"][0]["id"]
    assert (await client.post(f"/admin/jobs/dead/{letter}/retry", headers=a.headers)).status_code == 403
    assert (await client.post(f"/admin/jobs/dead/{uuid.uuid4()}/retry", headers=admin.headers)).status_code == 404
    assert (await client.post(f"/admin/jobs/dead/{letter}/retry", headers=admin.headers)).status_code == 200
    assert (await client.post(f"/admin/jobs/dead/{letter}/retry", headers=admin.headers)).status_code == 409
    await drain(backend)
    assert len((await client.get("/reports/me", headers=a.headers)).json()) == 1  # the retried job ran
    text = (await client.get("/metrics")).text
    assert 'conversme_jobs_enqueue_failures_total{task="reports.generate"}' in text
    assert 'conversme_jobs_total{outcome="ok",task="reports.generate"}' in text
    assert "conversme_http_request_duration_seconds_bucket" in text


async def test_a_failing_job_retries_with_backoff_then_is_dead_lettered(
        client: httpx.AsyncClient, make_user: MakeUser, backend: Backend) -> None:
    a = await make_user("ann")
    jobs = backend.state.jobs
    assert jobs is not None
    jobs.retry_base = 0.05  # keep the backoff short here
    try:
        await jobs.enqueue("ops.probe", {"key": "x", "user_id": a.id, "fail": True})

        async def dead_letter() -> DeadLetter | None:
            async with backend.state.sessionmaker() as db:
                return await db.scalar(select(DeadLetter).where(DeadLetter.task_name == "ops.probe"))

        letter = await eventually(dead_letter, what="the dead letter")
    finally:
        jobs.retry_base = 2.0
    assert letter is not None and letter.attempts == jobs.max_retries + 1 and letter.reason == "failed"
    async with backend.state.sessionmaker() as db:
        assert await db.scalar(select(User.id).where(User.id == uuid.UUID(a.id))) is not None


async def test_media_stuck_in_processing_is_enqueued_again(client: httpx.AsyncClient, make_user: MakeUser,
                                                           backend: Backend) -> None:
    from jobs.scheduler import Scheduler
    from persistence.enums import MediaStatus, MediaType
    from persistence.models import Media

    a = await make_user("ann")
    jobs = backend.state.jobs
    assert jobs is not None
    old = datetime.now(UTC) - timedelta(minutes=10)
    async with backend.state.sessionmaker.begin() as db:
        row = Media(type=MediaType.IMAGE, url="/uploads/media/gone.png", storage_key="media/gone.png",
                    mime_type="image/png", status=MediaStatus.PROCESSING, media_metadata={},
                    created_by_id=uuid.UUID(a.id), created_at=old)
        db.add(row)
    scheduler = Scheduler(jobs, "test")
    assert await scheduler.requeue_stuck_media() == 1
    assert await scheduler.requeue_stuck_media() == 0  # claimed: the next sweep waits again
    await drain(backend)
    m = (await client.get(f"/media/{row.id}", headers=a.headers)).json()
    assert m["status"] == "failed" and "missing" in m["mediaMetadata"]["error"]


class LandsLate:
    """The job's storage, except that a derived image's write waits for `release` and then lands even when its
    caller was cancelled meanwhile — as an object store's request does once it is sent."""

    def __init__(self, inner: Storage) -> None:
        self.inner = inner
        self.started, self.release, self.removal = asyncio.Event(), asyncio.Event(), asyncio.Event()

    async def save(self, key: str, data: bytes, *, disposition: str | None = None) -> str:
        if "/derived/" not in key:
            return await self.inner.save(key, data, disposition=disposition)
        self.started.set()
        return await asyncio.shield(self._land(key, data))

    async def _land(self, key: str, data: bytes) -> str:
        await self.release.wait()
        return await self.inner.save(key, data)

    async def delete(self, key: str) -> None:
        await self.inner.delete(key)
        self.removal.set()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


@pytest.mark.parametrize("meanwhile", ["nothing", "deleted"])
async def test_a_timed_out_media_run_leaves_no_stray_file(client: httpx.AsyncClient, make_user: MakeUser,
                                                          backend: Backend, meanwhile: str) -> None:
    """The job's timeout cancels a run while its thumbnail's write is in flight; the write lands anyway. The run
    still finishes what it started: the item becomes ready with that file — or, deleted meanwhile, the file is
    removed. Nothing is left in storage that no row names."""
    from jobs import media as media_job
    from persistence.enums import MediaStatus, MediaType
    from persistence.models import Media
    from tests.jobs import media_files

    a = await make_user("ann")
    jobs = backend.state.jobs
    assert jobs is not None
    key = f"media/{uuid.uuid4().hex}.png"
    await jobs.storage.save(key, media_files.image(320, 180))
    async with backend.state.sessionmaker.begin() as db:
        row = Media(type=MediaType.IMAGE, url=f"/uploads/{key}", storage_key=key, mime_type="image/png",
                    status=MediaStatus.PROCESSING, media_metadata={}, created_by_id=uuid.UUID(a.id))
        db.add(row)
    storage = LandsLate(jobs.storage)
    rt = dataclasses.replace(jobs, storage=storage)
    run: asyncio.Future[None] = asyncio.ensure_future(media_job.process(rt, media_id=str(row.id)))
    await storage.started.wait()
    run.cancel()  # what asyncio.wait_for does at the job's timeout
    with pytest.raises(asyncio.CancelledError):
        await run
    if meanwhile == "deleted":
        assert (await client.delete(f"/media/{row.id}", headers=a.headers)).status_code == 200
    storage.release.set()

    async def derived() -> list[str]:
        return [k async for k in jobs.storage.stored_keys(f"media/derived/{row.id}-")]

    if meanwhile == "deleted":
        await eventually(storage.removal.is_set, what="the cancelled run to remove the file it wrote")
        assert await derived() == []
        return
    m = await eventually(lambda: _ready(client, a, row.id), what="the cancelled run to adopt its thumbnail")
    assert m["mediaMetadata"]["derivedKeys"] == await derived() and len(await derived()) == 1


async def _ready(client: httpx.AsyncClient, who: Account, media_id: uuid.UUID) -> dict[str, Any] | None:
    m: dict[str, Any] = (await client.get(f"/media/{media_id}", headers=who.headers)).json()
    return m if m["status"] == "ready" else None
