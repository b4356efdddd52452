"""The world the access matrices run in: one in-process app (with a fake AI upstream, so AI routes can succeed),
six roles relative to one event, and the things that event owns. Fresh copies of a thing are made on demand for
the cells that destroy it, so a successful delete never takes the shared thing away from later cells.

Roles: `anonymous` (no token), `outsider` (signed in, no relation), `participant` and `organizer` (confirmed
participants of the event, role `participant` / `organizer`), `creator` (created the event and owns everything
below), `admin` (an administrator with no relation to the event)."""

from __future__ import annotations

import contextlib
import enum
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import update
from starlette.applications import Starlette

from handlers.accounts import sessions as accounts
from handlers.accounts.sessions import Client
from handlers.context import Context
from handlers.insights import report_files
from jobs import deadletter
from persistence import migrate
from persistence.enums import MediaType, NotificationType, ParticipantStatus, ReportType
from persistence.models import (
    Collection,
    Directory,
    Event,
    EventParticipant,
    LiveContext,
    Media,
    Notification,
    Post,
    Process,
    Step,
    SubStep,
    Topic,
    User,
)
from server.app import create_app
from server.state import AppState
from tests.conftest import fresh_pg_database, make_settings, sign_up
from tests.fakes.openai_server import FakeOpenAI

T0 = datetime(2030, 1, 7, 9, 0, tzinfo=UTC)


class Role(enum.Enum):
    ANONYMOUS = "anonymous"
    OUTSIDER = "outsider"
    PARTICIPANT = "participant"
    ORGANIZER = "organizer"
    CREATOR = "creator"
    ADMIN = "admin"


ROLES = tuple(Role)
SIGNED_IN = tuple(r for r in Role if r is not Role.ANONYMOUS)


@dataclass
class Person:
    id: str
    email: str
    password: str
    handle: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@dataclass
class Session:
    """A sign-in session of its own (minted without the login route), for cells that end one."""

    id: str
    token: str
    refresh_token: str


@dataclass
class World:
    app: Starlette
    client: httpx.AsyncClient
    people: dict[Role, Person]
    ids: dict[str, str] = field(default_factory=dict)  # path parameter name → the world's thing of that kind

    @property
    def state(self) -> AppState:
        state: AppState = self.app.state.conversme
        return state

    def uid(self, role: Role) -> uuid.UUID:
        return uuid.UUID(self.people[role].id)

    def headers(self, role: Role) -> dict[str, str]:
        return {} if role is Role.ANONYMOUS else self.people[role].headers

    # ---- fresh things, made straight in the database (fast: one transaction each) ----------------------------

    async def new_event(self) -> dict[str, str]:
        """An event like the world's (same creator, organizer and participant) with a checklist of its own: the
        ids of the event, its process, the process's first step and that step's first substep."""
        made = await self.new_process(template=False)
        async with self.state.sessionmaker.begin() as db:
            event = Event(title="Standup", start_time=T0, end_time=T0 + timedelta(hours=1),
                          created_by_id=self.uid(Role.CREATOR), process_id=uuid.UUID(made["process_id"]))
            db.add(event)
            await db.flush()
            for role, part in ((Role.CREATOR, "organizer"), (Role.ORGANIZER, "organizer"),
                               (Role.PARTICIPANT, "participant")):
                db.add(EventParticipant(event_id=event.id, user_id=self.uid(role), role=part,
                                        status=ParticipantStatus.CONFIRMED))
            return {**made, "event_id": str(event.id)}

    async def new_process(self, *, template: bool) -> dict[str, str]:
        """The creator's process: two steps, the first with two substeps (ids of the process, the first step
        and its first substep)."""
        async with self.state.sessionmaker.begin() as db:
            process = Process(title="Release", description="ship it", is_template=template,
                              created_by_id=self.uid(Role.CREATOR), process_metadata={})
            first = Step(content="Freeze", order=1)
            first.sub_steps = [SubStep(content="Cut the branch", order=1), SubStep(content="Changelog", order=2)]
            process.steps = [first, Step(content="Deploy", order=2)]
            db.add(process)
            await db.flush()
            return {"process_id": str(process.id), "step_id": str(first.id),
                    "substep_id": str(first.sub_steps[0].id)}

    async def new_step(self) -> str:
        async with self.state.sessionmaker.begin() as db:
            step = Step(content="Extra", order=99, process_id=uuid.UUID(self.ids["process_id"]))
            db.add(step)
            await db.flush()
            return str(step.id)

    async def new_substep(self) -> str:
        async with self.state.sessionmaker.begin() as db:
            sub = SubStep(content="Extra", order=99, step_id=uuid.UUID(self.ids["step_id"]))
            db.add(sub)
            await db.flush()
            return str(sub.id)

    async def new_directory(self) -> str:
        async with self.state.sessionmaker.begin() as db:
            directory = Directory(name="Scratch", created_by_id=self.uid(Role.CREATOR))
            db.add(directory)
            await db.flush()
            return str(directory.id)

    async def new_post(self) -> str:
        """The creator's public post in the event's room."""
        async with self.state.sessionmaker.begin() as db:
            post = Post(content="Fresh", visibility="public", author_id=self.uid(Role.CREATOR),
                        event_id=uuid.UUID(self.ids["event_id"]))
            db.add(post)
            await db.flush()
            return str(post.id)

    async def new_media(self) -> str:
        """A link the creator attached to their post in the event's room."""
        async with self.state.sessionmaker.begin() as db:
            media = Media(type=MediaType.IMAGE, url="https://example.com/fresh.png",
                          post_id=uuid.UUID(self.ids["post_id"]), created_by_id=self.uid(Role.CREATOR))
            db.add(media)
            await db.flush()
            return str(media.id)

    async def new_notification(self) -> str:
        async with self.state.sessionmaker.begin() as db:
            row = Notification(type=NotificationType.SYSTEM, title="Hello", message="for the creator",
                               user_id=self.uid(Role.CREATOR))
            db.add(row)
            await db.flush()
            return str(row.id)

    async def new_context(self) -> str:
        """The creator's live session about the event."""
        async with self.state.sessionmaker.begin() as db:
            row = LiveContext(user_id=self.uid(Role.CREATOR), event_id=uuid.UUID(self.ids["event_id"]),
                              process_id=uuid.UUID(self.ids["process_id"]))
            db.add(row)
            await db.flush()
            return str(row.id)

    async def new_collection(self) -> str:
        """A private market collection of the creator's."""
        async with self.state.sessionmaker.begin() as db:
            row = Collection(title="Mine", created_by_id=self.uid(Role.CREATOR), is_library=False)
            db.add(row)
            await db.flush()
            return str(row.id)

    async def new_topic(self) -> str:
        async with self.state.sessionmaker.begin() as db:
            row = Topic(name=f"topic-{uuid.uuid4().hex[:10]}", category="Work", color="#123456")
            db.add(row)
            await db.flush()
            return str(row.id)

    async def new_user(self) -> str:
        """A bystander: an account nobody in the world relates to (targets of admin routes, invitees)."""
        handle = f"by_{uuid.uuid4().hex[:10]}"
        async with self.state.sessionmaker.begin() as db:
            row = User(name="Bystander", handle=handle, email=f"{handle}@example.com")
            db.add(row)
            await db.flush()
            return str(row.id)

    async def new_dead_letter(self) -> str:
        async with self.state.sessionmaker.begin() as db:
            row = await deadletter.record(
                db, task="reports.generate", task_id=None, reason="failed", error="boom", attempts=3,
                kwargs={"user_id": self.people[Role.CREATOR].id, "report_type": "weekly", "year": 2030,
                        "number": 2},
                now=self.state.clock())
            return str(row.id)

    async def new_session(self, role: Role) -> Session:
        async with self.state.sessionmaker.begin() as db:
            user = await db.get(User, self.uid(role))
            assert user is not None
            issued = await accounts.start_session(db, self.state.tokens, user, self.state.clock(), Client(),
                                                  timedelta(days=1))
        claims = self.state.tokens.decode_access(issued.access_token, self.state.clock())
        assert issued.refresh_token is not None and claims.session_id is not None
        return Session(str(claims.session_id), issued.access_token, issued.refresh_token)

    async def new_report(self) -> str:
        """The creator's weekly report, with its files stored."""
        storage = self.state.reports_storage
        assert storage is not None
        async with self.state.sessionmaker.begin() as db:
            user = await db.get(User, self.uid(Role.CREATOR))
            assert user is not None
            ctx = Context(db=db, user=user, now=self.state.clock(), limits=self.state.limits)
            row, _ = await report_files.save_report(ctx, storage,
                                                    report_files.period_of(ReportType.WEEKLY, T0))
            return str(row.id)

    # ---- the world itself ------------------------------------------------------------------------------------

    async def post(self, role: Role, path: str, body: dict[str, Any]) -> str:
        """Make something over REST as `role` (setup: it must answer 201); its id."""
        r = await self.client.post(path, json=body, headers=self.headers(role))
        assert r.status_code == 201, (path, r.text)
        made: str = r.json()["id"]
        return made


async def build_world(app: Starlette, client: httpx.AsyncClient) -> World:
    """Five people signed up over REST (the admin made one in the database), the creator's event with the
    organizer and the participant in it, and everything else the routes' path parameters name."""
    people: dict[Role, Person] = {}
    for role in SIGNED_IN:
        account = await sign_up(client, role.value)
        people[role] = Person(account.id, account.email, account.password, account.handle, account.token)
    world = World(app, client, people)
    async with world.state.sessionmaker.begin() as db:
        await db.execute(update(User).where(User.id == world.uid(Role.ADMIN)).values(is_admin=True))
    ids = world.ids
    ids.update(user_id=people[Role.CREATOR].id, handle=people[Role.CREATOR].handle,
               participant_id=people[Role.PARTICIPANT].id)
    ids.update(await world.new_event())  # event_id, process_id (the event's checklist), step_id, substep_id
    ids["template_id"] = (await world.new_process(template=True))["process_id"]
    creator, event_id = Role.CREATOR, ids["event_id"]
    ids["directory_id"] = await world.post(creator, "/directories", {"name": "Work"})
    ids["post_id"] = await world.post(creator, "/posts", {"content": "Agenda attached", "eventId": event_id})
    ids["media_id"] = await world.post(creator, f"/posts/{ids['post_id']}/media",
                                       {"type": "image", "url": "https://example.com/agenda.png"})
    await world.post(Role.PARTICIPANT, f"/events/{event_id}/chat", {"text": "hi all"})
    ids["notification_id"] = await world.post(creator, "/notifications", {"title": "Note", "message": "to self"})
    ids["context_id"] = await world.post(creator, "/live/contexts", {
        "eventId": event_id, "processId": ids["process_id"],
        "messages": [{"role": "user", "content": "where are we?"}]})
    ids["collection_id"] = await world.post(creator, "/market/collections", {"title": "Mine"})
    ids["library_collection_id"] = await world.post(Role.ADMIN, "/market/collections",
                                                    {"title": "Library", "isLibrary": True})
    ids["topic_id"] = await world.post(Role.ADMIN, "/topics", {"name": f"Operations {uuid.uuid4().hex[:8]}"})
    ids["report_id"] = await world.new_report()
    ids["dead_id"] = await world.new_dead_letter()
    ids["bystander_id"] = await world.new_user()
    return world


@contextlib.asynccontextmanager
async def matrix_app(kind: str, tmp: Path) -> AsyncIterator[tuple[Starlette, httpx.AsyncClient]]:
    """The in-process app on a database of its own (`kind`: postgres or sqlite), DEBUG off as in production,
    with AI configured against a local fake OpenAI server, and login rate limits out of the way."""
    fake = FakeOpenAI().start()
    try:
        async with contextlib.AsyncExitStack() as stack:
            if kind == "postgres":
                url = await stack.enter_async_context(fresh_pg_database("matrix"))
            else:
                url = f"sqlite:///{tmp / 'matrix.db'}"
            settings = make_settings(url, tmp, auto_migrate=True, openai_api_key="test", openai_base_url=fake.url,
                                     openai_model="fake-model", openai_timeout=10.0, login_rate_per_ip=100_000,
                                     login_rate_per_account=100_000, ai_tokens_per_minute_user=0,
                                     ai_tokens_per_minute_session=0)
            app = create_app(settings)
            await stack.enter_async_context(app.router.lifespan_context(app))
            if not settings.is_sqlite:
                await migrate.upgrade(app.state.conversme.engine)
            transport = httpx.ASGITransport(app=app)
            client = await stack.enter_async_context(
                httpx.AsyncClient(transport=transport, base_url="http://test", timeout=30))
            yield app, client
    finally:
        fake.stop()
