"""The shared shape rule: camelCase out; camelCase or snake_case in; user JSON blobs kept as sent."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, PlainSerializer, TypeAdapter
from pydantic.alias_generators import to_camel

# Every timestamp leaves as ISO-8601 with an explicit UTC offset.
UTC = Annotated[datetime, PlainSerializer(lambda d: d.isoformat().replace("+00:00", "Z"), return_type=str)]


class In(BaseModel):
    """Request bodies and queries: fields by snake_case name or camelCase alias; unknown keys ignored.

    Each field's docstring (the string on the line after it) is its description in /openapi.json; every request
    field has one (tests/api/test_openapi_descriptions.py)."""

    model_config = ConfigDict(
        alias_generator=to_camel, validate_by_name=True, validate_by_alias=True, extra="ignore",
        str_strip_whitespace=True, use_attribute_docstrings=True,
    )

    def given(self) -> dict[str, Any]:
        """Only the fields the client sent, by snake_case name: partial updates never write NULL by omission."""
        return {name: getattr(self, name) for name in self.model_fields_set}


class Out(BaseModel):
    """Response and message shapes: camelCase keys; leave for the wire through `to_wire`."""

    model_config = ConfigDict(
        alias_generator=to_camel, serialize_by_alias=True, validate_by_name=True, from_attributes=True,
    )


_adapters: dict[Any, TypeAdapter[Any]] = {}


def to_wire(value: Any, shape: Any = None, *, exclude: set[str] | None = None) -> Any:
    """The one way a value leaves for the wire (a REST body, a socket payload, a frame in the topic log): JSON-ready
    (ISO timestamps, string UUIDs and enums), keys by alias (camelCase).

    `shape` is the declared type (`list[EventOut]`, a union) when there is one, else the value's own type; its
    TypeAdapter is built once and kept. `exclude` drops top-level fields of a model (a summary of a bigger shape)."""
    if shape is None and isinstance(value, BaseModel):
        return value.model_dump(mode="json", by_alias=True, exclude=exclude)
    if exclude is not None:
        raise TypeError("exclude applies to a single model")
    key = type(value) if shape is None else shape
    adapter = _adapters.get(key)
    if adapter is None:
        adapter = _adapters[key] = TypeAdapter(key)
    return adapter.dump_python(value, mode="json", by_alias=True)


def metadata_field(entity: str) -> Any:
    """`metadata`, `<entity>Metadata` and `<entity>_metadata` are one input field."""
    return Field(
        default=None,
        validation_alias=AliasChoices("metadata", f"{entity}_metadata", to_camel(f"{entity}_metadata")),
    )


# Bounds on paging parameters, so a huge number is a 422 and never reaches the database (OFFSET past 2^63 was a
# 500). Deeper than anyone pages; limits above every page-size cap, so today's clients are still clamped, not
# refused.
MAX_SKIP = 1_000_000
MAX_LIMIT = 10_000
Skip = Annotated[int, Field(ge=0, le=MAX_SKIP)]
Limit = Annotated[int, Field(ge=1, le=MAX_LIMIT)]


class PageQuery(In):
    """`skip`/`limit` (or `offset`/`limit`); `limit` is capped at the server's MAX_PAGE_SIZE."""

    skip: Skip = Field(default=0, validation_alias=AliasChoices("skip", "offset"))
    """items to skip from the start (also accepted as `offset`)"""
    limit: Limit = 50
    """items per page, at most the server's MAX_PAGE_SIZE"""

    def window(self, max_page_size: int) -> tuple[int, int]:
        return self.skip, min(self.limit, max_page_size)
