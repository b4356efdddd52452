"""Seed data: the administrator, default topics and the market library of template processes. Idempotent."""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession

from adapters.security import Passwords
from handlers.market.library import COLLECTIONS, LIBRARY_AUTHOR, LibTemplate
from persistence import accounts, market, tags
from persistence.models import Collection, Directory, Process, Step, SubStep, Topic, User, UserPreferences

DEBUG_ADMIN_PASSWORD = "admin1234"

TOPICS: list[tuple[str, str, str]] = [
    ("Engineering", "Work", "#3b82f6"), ("Design", "Work", "#ec4899"), ("Product", "Work", "#8b5cf6"),
    ("Operations", "Work", "#f59e0b"), ("Marketing", "Business", "#10b981"), ("Sales", "Business", "#ef4444"),
    ("Finance", "Business", "#14b8a6"), ("Hiring", "People", "#6366f1"), ("Onboarding", "People", "#84cc16"),
    ("Research", "Work", "#0ea5e9"), ("Planning", "Work", "#a855f7"), ("Review", "Work", "#f97316"),
    ("Incident", "Operations", "#dc2626"), ("Release", "Engineering", "#2563eb"), ("Support", "Operations", "#0891b2"),
]

@dataclass(frozen=True)
class AdminSpec:
    email: str
    password: str | None
    debug: bool
    name: str = "Administrator"
    handle: str = "admin"


@dataclass
class SeedReport:
    actions: list[str] = field(default_factory=list)
    generated_password: str | None = None

    def lines(self) -> list[str]:
        out = list(self.actions) or ["nothing to do: already initialized"]
        if self.generated_password:
            out.append(f"admin password (shown once, store it now): {self.generated_password}")
        return out


async def ensure_admin(db: AsyncSession, passwords: Passwords, *, email: str, name: str, handle: str,
                       password: str | None) -> bool:
    """Create the admin, or make sure an existing one is an admin (resetting the password if given)."""
    email = email.strip().lower()
    user = await accounts.user_by_email(db, email)
    if user is None:
        taken = await accounts.handle_taken(db, handle)
        user = User(email=email, name=name, handle=handle if not taken else f"{handle}_{secrets.token_hex(3)}",
                    password_hash=await passwords.hash(password) if password else None, is_admin=True, user_metadata={})
        db.add(user)
        await db.flush()
        await accounts.add_preferences(db, UserPreferences(user_id=user.id))
        return True
    user.is_admin = True
    if password:
        user.password_hash = await passwords.hash(password)
    await db.flush()
    return False


async def initialize(db: AsyncSession, passwords: Passwords, admin: AdminSpec) -> SeedReport:
    """Admin, topics and template library; a second run changes nothing."""
    report = SeedReport()
    existing = await accounts.user_by_email(db, admin.email.lower())
    if existing is None:
        password = admin.password or (DEBUG_ADMIN_PASSWORD if admin.debug else None)
        if password is None:
            password = report.generated_password = secrets.token_urlsafe(12)
        await ensure_admin(db, passwords, email=admin.email, name=admin.name, handle=admin.handle,
                           password=password)
        report.actions.append(f"created admin {admin.email}")
    elif not existing.is_admin:
        existing.is_admin = True
        report.actions.append(f"made {admin.email} an admin")
    names = {n.lower() for n in await tags.topic_names(db)}
    added = [Topic(name=n, category=c, color=col) for n, c, col in TOPICS if n.lower() not in names]
    tags.add_topics(db, added)
    if added:
        report.actions.append(f"created {len(added)} topics")
    report.actions.extend(await initialize_library(db))
    await db.flush()
    return report


async def initialize_library(db: AsyncSession) -> list[str]:
    """The public market library; creates only what is missing, so a second run adds nothing.

    Library rows belong to nobody (`created_by_id` NULL): they are system content that no user lists among
    their own templates; `is_library` on the collection and `source: library` in the metadata mark them.
    """
    counts = {"collections": 0, "directories": 0, "template processes": 0}
    for spec in COLLECTIONS:
        collection = await market.library_collection(db, spec.title)
        if collection is None:
            collection = Collection(title=spec.title, description=spec.description, is_library=True, saves=0,
                                    collection_metadata={"author": dict(LIBRARY_AUTHOR),
                                                         "categories": list(spec.categories)})
            market.add_collection(db, collection)
            await db.flush()
            counts["collections"] += 1
        for folder in spec.folders:
            directory = await market.directory_named(db, collection.id, folder.name)
            if directory is None:
                directory = Directory(name=folder.name, description=folder.description, color=folder.color,
                                      icon=folder.icon, is_template=True, collection_id=collection.id,
                                      directory_metadata={"source": "library"})
                market.add_directory(db, directory)
                await db.flush()
                counts["directories"] += 1
            titles = await market.template_titles(db, directory.id)
            for template in folder.templates:
                if template.title not in titles:
                    market.add_template(db, _template(template, directory.id))
                    counts["template processes"] += 1
    await db.flush()
    return [f"created {n} library {what}" for what, n in counts.items() if n]


def _template(spec: LibTemplate, directory_id: uuid.UUID) -> Process:
    process = Process(
        title=spec.title, description=spec.description, color=spec.color, category=spec.category,
        is_template=True, directory_id=directory_id,
        process_metadata={"source": "library", "icon": spec.icon, "benefits": list(spec.benefits), "saves": 0,
                          "created_by": LIBRARY_AUTHOR["name"]},
    )
    for i, step in enumerate(spec.steps, start=1):
        new = Step(content=step.title, order=i)
        new.sub_steps = [SubStep(content=s, order=j) for j, s in enumerate(step.substeps, start=1)]
        process.steps.append(new)
    return process
