"""Wire shapes of processes, steps and substeps, and the input types they share with directories."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Annotated, Any, ClassVar, Protocol

from pydantic import AfterValidator, BeforeValidator, model_validator

from handlers.clock import as_utc
from handlers.links import ServedLink
from handlers.schema import UTC, In, Out
from persistence.models import Step

CONTENT_MAX = 5000
NESTED_MAX = 200  # inline steps per process, substeps per step
ORDER_MAX = 1_000_000  # keeps client orders inside a 32-bit column


def _blank_id_is_none(value: Any) -> Any:
    # The original frontend turns missing ids into these strings (and forms send "").
    if isinstance(value, str) and value.strip() in ("", "null", "undefined", "None"):
        return None
    return value


OptionalId = Annotated[uuid.UUID | None, BeforeValidator(_blank_id_is_none)]
# Client timestamps (`toISOString()`, Z) stored tz-aware; naive input is taken as UTC; one that leaves the
# calendar on the way to UTC (year 1 ahead of it, year 9999 behind it) is a 422, not an OverflowError.
AwareDateTime = Annotated[datetime, AfterValidator(as_utc)]


class Partial(In):
    """A partial update: fields listed in `not_null` may be omitted but never sent as null."""

    not_null: ClassVar[tuple[str, ...]] = ()

    @model_validator(mode="after")
    def _reject_nulls(self) -> Partial:
        for name in self.not_null:
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError(f"{name} may not be null")
        return self


class SubStepOut(Out):
    """A substep: the canonical shape (inside `StepOut`, every `substep.*` message)."""

    id: uuid.UUID
    content: str
    completed: bool
    completed_at: UTC | None
    order: int
    step_id: uuid.UUID
    created_at: UTC
    updated_at: UTC | None


class StepOut(Out):
    """A step with its substeps: the canonical shape (the original frontend's `Step`, every `step.*` message)."""

    id: uuid.UUID
    content: str
    completed: bool
    completed_at: UTC | None
    order: int
    due_date: str | None
    process_id: uuid.UUID
    created_at: UTC
    updated_at: UTC | None
    sub_steps: list[SubStepOut]


class TemplateBrief(Out):
    """`ProcessOut.template`: which template an instance was cloned from, as a link."""

    id: uuid.UUID
    title: str


class ProcessOut(Out):
    """The process (template or instance): the canonical shape (lists, `process.*` messages)."""

    id: uuid.UUID
    title: str
    description: str | None
    color: str | None
    category: str | None
    favorite: bool
    process_metadata: dict[str, Any]
    created_by_id: uuid.UUID | None
    directory_id: uuid.UUID | None
    last_updated: UTC | None
    is_template: bool
    template_id: uuid.UUID | None
    template: TemplateBrief | None
    instance_ids: list[uuid.UUID]
    created_at: UTC
    updated_at: UTC | None


class ConnectedEvent(Out):
    """`ProcessDetail.connectedEvents` as the original frontend reads it: a card (name, imageUrl, a head count)."""

    id: uuid.UUID
    name: str
    start_time: UTC
    date: str
    image_url: ServedLink
    participants: int
    progress: float  # percent of the linked process's steps done


class ProcessDetail(ProcessOut):
    """The original frontend's process page (`/processes/{id}`) reads its steps and connectedEvents too."""

    steps: list[StepOut]
    connected_events: list[ConnectedEvent]


def _by_order(rows: Iterable[Any]) -> list[Any]:
    return sorted(rows, key=lambda r: (r.order, r.created_at))


class SubStepRow(Protocol):
    """What a substep's shape reads: an ORM row, or a detached copy of one."""

    @property
    def id(self) -> uuid.UUID: ...
    @property
    def content(self) -> str: ...
    @property
    def completed(self) -> bool: ...
    @property
    def completed_at(self) -> datetime | None: ...
    @property
    def order(self) -> int: ...
    @property
    def step_id(self) -> uuid.UUID: ...
    @property
    def created_at(self) -> datetime: ...
    @property
    def updated_at(self) -> datetime | None: ...


class StepRow(Protocol):
    """What a step's shape reads: an ORM row, or a detached copy of one."""

    @property
    def id(self) -> uuid.UUID: ...
    @property
    def content(self) -> str: ...
    @property
    def completed(self) -> bool: ...
    @property
    def completed_at(self) -> datetime | None: ...
    @property
    def order(self) -> int: ...
    @property
    def due_date(self) -> str | None: ...
    @property
    def process_id(self) -> uuid.UUID: ...
    @property
    def created_at(self) -> datetime: ...
    @property
    def updated_at(self) -> datetime | None: ...


def substep_out(row: SubStepRow) -> SubStepOut:
    return SubStepOut(
        id=row.id, content=row.content, completed=row.completed, completed_at=row.completed_at, order=row.order,
        step_id=row.step_id, created_at=row.created_at, updated_at=row.updated_at,
    )


def step_out(step: StepRow, subs: Iterable[SubStepRow]) -> StepOut:
    """`subs` are passed in (never lazy-loaded) so async code cannot trip over an unloaded relationship."""
    return StepOut(
        id=step.id, content=step.content, completed=step.completed, completed_at=step.completed_at,
        order=step.order, due_date=step.due_date, process_id=step.process_id, created_at=step.created_at,
        updated_at=step.updated_at, sub_steps=[substep_out(s) for s in _by_order(subs)],
    )


def sort_steps(steps: Iterable[Step]) -> list[Step]:
    return _by_order(steps)
