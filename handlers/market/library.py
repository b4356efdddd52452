"""The content of the public market library: collections → directories → template processes → steps."""

from __future__ import annotations

from dataclasses import dataclass, field

LIBRARY_AUTHOR = {"name": "Convers.me Team", "avatar": "/profile/profile.jpg"}


@dataclass(frozen=True)
class LibStep:
    title: str
    substeps: tuple[str, ...] = ()


@dataclass(frozen=True)
class LibTemplate:
    title: str
    category: str
    color: str
    icon: str
    description: str
    benefits: tuple[str, ...]
    steps: tuple[LibStep, ...]


@dataclass(frozen=True)
class LibFolder:
    name: str
    description: str
    color: str
    icon: str
    templates: tuple[LibTemplate, ...]


@dataclass(frozen=True)
class LibCollection:
    title: str
    description: str
    categories: tuple[str, ...]
    folders: tuple[LibFolder, ...] = field(default=())


def _steps(*items: tuple[str, tuple[str, ...]]) -> tuple[LibStep, ...]:
    return tuple(LibStep(title, subs) for title, subs in items)


SPRINT_PLANNING = LibTemplate(
    "Sprint Planning", "Engineering", "#3b82f6", "calendar", "Plan the next sprint with the team.",
    ("A sprint goal everyone agreed to", "Scope that fits the team's capacity"),
    _steps(("Review the backlog", ("Close stale tickets", "Re-estimate the top 20 items")),
           ("Agree the sprint goal", ("Draft the goal", "Confirm with the product owner")),
           ("Commit to the sprint scope", ("Check capacity", "Assign owners"))),
)
RELEASE_CHECKLIST = LibTemplate(
    "Release Checklist", "Engineering", "#2563eb", "rocket", "Ship a release safely.",
    ("Fewer failed deployments", "A release everyone hears about"),
    _steps(("Freeze and branch", ("Cut the release branch", "Update the changelog")),
           ("Verify", ("Run the full test suite", "Smoke-test staging")),
           ("Ship", ("Deploy to production", "Watch the dashboards", "Announce the release"))),
)
INCIDENT_RESPONSE = LibTemplate(
    "Incident Response", "Operations", "#dc2626", "alert", "Restore service and learn from an incident.",
    ("Clear ownership during an outage", "Action items that prevent a repeat"),
    _steps(("Declare the incident", ("Open an incident channel", "Name an incident commander")),
           ("Mitigate", ("Identify the blast radius", "Apply a mitigation", "Confirm recovery")),
           ("Write the post-mortem", ("Build the timeline", "List action items", "Share with the team"))),
)
ONBOARDING = LibTemplate(
    "Employee Onboarding", "People", "#84cc16", "users", "Welcome a new teammate in their first week.",
    ("Productive new hires sooner", "Nothing forgotten on day one"),
    _steps(("Before day one", ("Order equipment", "Create accounts")),
           ("First day", ("Team introductions", "Walk through the handbook")),
           ("First week", ("Pair on a first task", "Schedule a check-in"))),
)
DISCOVERY_INTERVIEW = LibTemplate(
    "Customer Discovery Interview", "Product", "#8b5cf6", "message", "Learn from a customer conversation.",
    ("Decisions grounded in real customer problems", "Insights the whole team can reuse"),
    _steps(("Prepare the interview", ("Write the interview guide", "Recruit the participant")),
           ("Interview", ("Record with consent", "Take notes")),
           ("Synthesize", ("Tag the insights", "Share a summary"))),
)
PRIORITISATION = LibTemplate(
    "Feature Prioritisation", "Product", "#14b8a6", "list", "Rank candidate features by value and effort.",
    ("A roadmap you can explain", "Less time arguing about opinions"),
    _steps(("Collect candidates", ("Gather requests from sales and support", "Merge duplicates")),
           ("Score", ("Estimate reach and impact", "Estimate effort with engineering")),
           ("Decide", ("Rank by score", "Publish the decision and the reasons"))),
)
DESIGN_REVIEW = LibTemplate(
    "Design Review", "Design", "#ec4899", "pen", "Review a design with stakeholders.",
    ("Feedback early, while changes are cheap", "Stakeholders aligned before build"),
    _steps(("Prepare", ("Share the prototype", "List open questions")),
           ("Run the review", ("Walk through the flows", "Capture feedback")),
           ("Follow up", ("Prioritise the feedback", "Update the design"))),
)
USABILITY_TEST = LibTemplate(
    "Usability Test", "Research", "#0ea5e9", "eye", "Watch real users try a flow and fix what trips them up.",
    ("Problems found before launch", "Evidence to settle design debates"),
    _steps(("Plan the test", ("Pick the tasks to test", "Recruit five participants")),
           ("Run the sessions", ("Ask participants to think aloud", "Note where they hesitate")),
           ("Report", ("Rank the issues by severity", "Propose fixes"))),
)

COLLECTIONS: tuple[LibCollection, ...] = (
    LibCollection(
        "Startup Success Toolkit", "The routines a young company needs to ship, respond and grow.",
        ("Startup", "Engineering", "Operations"),
        (LibFolder("Shipping Software", "Plan, build and release", "#3b82f6", "code",
                   (SPRINT_PLANNING, RELEASE_CHECKLIST)),
         LibFolder("Running the Company", "Keep the lights on and the team growing", "#f59e0b", "briefcase",
                   (INCIDENT_RESPONSE, ONBOARDING))),
    ),
    LibCollection(
        "Product Discovery Essentials", "Find out what to build before building it.",
        ("Product", "Research"),
        (LibFolder("Customer Insight", "Talk to customers and learn", "#8b5cf6", "message",
                   (DISCOVERY_INTERVIEW,)),
         LibFolder("Prioritisation", "Decide what comes next", "#14b8a6", "list", (PRIORITISATION,))),
    ),
    LibCollection(
        "Design & Research Excellence", "Review designs and test them with real people.",
        ("Design", "Research"),
        (LibFolder("Design Quality", "Critique and improve designs", "#ec4899", "pen", (DESIGN_REVIEW,)),
         LibFolder("User Research", "Test with users", "#0ea5e9", "eye", (USABILITY_TEST,))),
    ),
)
