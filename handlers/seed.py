"""Seed data: the administrator, default topics and the library of template processes. Idempotent."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.security import Passwords
from persistence.models import Directory, Process, Step, SubStep, Topic, User, UserPreferences

DEBUG_ADMIN_PASSWORD = "admin1234"

TOPICS: list[tuple[str, str, str]] = [
    ("Engineering", "Work", "#3b82f6"), ("Design", "Work", "#ec4899"), ("Product", "Work", "#8b5cf6"),
    ("Operations", "Work", "#f59e0b"), ("Marketing", "Business", "#10b981"), ("Sales", "Business", "#ef4444"),
    ("Finance", "Business", "#14b8a6"), ("Hiring", "People", "#6366f1"), ("Onboarding", "People", "#84cc16"),
    ("Research", "Work", "#0ea5e9"), ("Planning", "Work", "#a855f7"), ("Review", "Work", "#f97316"),
    ("Incident", "Operations", "#dc2626"), ("Release", "Engineering", "#2563eb"), ("Support", "Operations", "#0891b2"),
]

# title, category, color, description, [(step, [substeps])]
LIBRARY: list[tuple[str, str, str, str, list[tuple[str, list[str]]]]] = [
    ("Sprint Planning", "Engineering", "#3b82f6", "Plan the next sprint with the team.", [
        ("Review the backlog", ["Close stale tickets", "Re-estimate the top 20 items"]),
        ("Agree the sprint goal", ["Draft the goal", "Confirm with the product owner"]),
        ("Commit to the sprint scope", ["Check capacity", "Assign owners"]),
    ]),
    ("Incident Response", "Operations", "#dc2626", "Restore service and learn from an incident.", [
        ("Declare the incident", ["Open an incident channel", "Name an incident commander"]),
        ("Mitigate", ["Identify the blast radius", "Apply a mitigation", "Confirm recovery"]),
        ("Write the post-mortem", ["Build the timeline", "List action items", "Share with the team"]),
    ]),
    ("Employee Onboarding", "People", "#84cc16", "Welcome a new teammate in their first week.", [
        ("Before day one", ["Order equipment", "Create accounts"]),
        ("First day", ["Team introductions", "Walk through the handbook"]),
        ("First week", ["Pair on a first task", "Schedule a check-in"]),
    ]),
    ("Release Checklist", "Engineering", "#2563eb", "Ship a release safely.", [
        ("Freeze and branch", ["Cut the release branch", "Update the changelog"]),
        ("Verify", ["Run the full test suite", "Smoke-test staging"]),
        ("Ship", ["Deploy to production", "Watch the dashboards", "Announce the release"]),
    ]),
    ("Design Review", "Design", "#ec4899", "Review a design with stakeholders.", [
        ("Prepare", ["Share the prototype", "List open questions"]),
        ("Run the review", ["Walk through the flows", "Capture feedback"]),
        ("Follow up", ["Prioritise the feedback", "Update the design"]),
    ]),
    ("Customer Discovery Interview", "Product", "#8b5cf6", "Learn from a customer conversation.", [
        ("Prepare the interview", ["Write the interview guide", "Recruit the participant"]),
        ("Interview", ["Record with consent", "Take notes"]),
        ("Synthesize", ["Tag the insights", "Share a summary"]),
    ]),
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
    user = await db.scalar(select(User).where(func.lower(User.email) == email))
    if user is None:
        taken = await db.scalar(select(User.id).where(func.lower(User.handle) == handle.lower()))
        user = User(email=email, name=name, handle=handle if not taken else f"{handle}_{secrets.token_hex(3)}",
                    password_hash=passwords.hash(password) if password else None, is_admin=True, user_metadata={})
        db.add(user)
        await db.flush()
        db.add(UserPreferences(user_id=user.id))
        await db.flush()
        return True
    user.is_admin = True
    if password:
        user.password_hash = passwords.hash(password)
    await db.flush()
    return False


async def initialize(db: AsyncSession, passwords: Passwords, admin: AdminSpec) -> SeedReport:
    """Admin, topics and template library; a second run changes nothing."""
    report = SeedReport()
    existing = await db.scalar(select(User).where(func.lower(User.email) == admin.email.lower()))
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
    owner = await db.scalar(select(User).where(func.lower(User.email) == admin.email.lower()))
    assert owner is not None

    names = set((await db.scalars(select(Topic.name))).all())
    added = [Topic(name=n, category=c, color=col) for n, c, col in TOPICS if n not in names]
    db.add_all(added)
    if added:
        report.actions.append(f"created {len(added)} topics")

    library = await db.scalar(select(Directory).where(Directory.name == "Template Library",
                                                      Directory.created_by_id == owner.id))
    if library is None:
        library = Directory(name="Template Library", description="Ready-made processes to start from",
                            color="#6366f1", icon="library", created_by_id=owner.id, directory_metadata={})
        db.add(library)
        await db.flush()
        report.actions.append("created the template library directory")
    titles = set((await db.scalars(select(Process.title).where(Process.is_template.is_(True),
                                                              Process.created_by_id == owner.id))).all())
    created = 0
    for title, category, color, description, steps in LIBRARY:
        if title in titles:
            continue
        process = Process(title=title, category=category, color=color, description=description, is_template=True,
                          created_by_id=owner.id, directory_id=library.id, process_metadata={"source": "library"})
        for i, (content, subs) in enumerate(steps, start=1):
            step = Step(content=content, order=i)
            step.sub_steps = [SubStep(content=s, order=j) for j, s in enumerate(subs, start=1)]
            process.steps.append(step)
        db.add(process)
        created += 1
    if created:
        report.actions.append(f"created {created} template processes")
    await db.flush()
    return report
