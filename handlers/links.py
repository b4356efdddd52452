"""URLs the frontend uses verbatim (as `src` or `href`): site-relative paths and http(s) URLs only.

One rule, three spellings of it for the models:
- `Link` in request models: anything else (`javascript:`, `data:`, `//host`, whitespace...) is a 422;
- `OptionalLink` for the nullable ones: `""` and null both mean "no link";
- `ServedLink` in response models: a stored value that fails the rule is served as null. Rows written before
  the rule, seeds and admin scripts may hold anything, and another user's browser would follow it.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, PlainSerializer, StringConstraints

MAX_LINK = 1000  # the width of every URL column
# Unicode whitespace (what str.isspace() calls so) and control characters. A regex: this runs on every link
# of every response (a month of calendar events carries thousands), 7x faster than a loop over the characters.
_UNSAFE_CHAR = re.compile(r"[\s\x00-\x1f\x7f]")


def check_link(value: str) -> str:
    """`value` if it is a safe link; otherwise ValueError (a validation error in request models)."""
    if _UNSAFE_CHAR.search(value):
        raise ValueError("a link may not contain whitespace or control characters")
    if value.startswith("/") and not value.startswith(("//", "/\\")):
        return value
    if value[:8].lower().startswith(("https://", "http://")):
        return value
    raise ValueError("a link must be a site path (/...) or an http(s) URL")


def served_link(value: str | None) -> str | None:
    """The stored `value` if it still passes the rule, else None."""
    if value is None:
        return None
    try:
        return check_link(value)
    except ValueError:
        return None


def _blank_is_none(value: Any) -> Any:
    return None if isinstance(value, str) and not value.strip() else value


Link = Annotated[str, StringConstraints(max_length=MAX_LINK), AfterValidator(check_link)]
OptionalLink = Annotated[Link | None, BeforeValidator(_blank_is_none)]
# A serializer rather than a validator: some response models are built with model_construct (no validation).
ServedLink = Annotated[str | None, PlainSerializer(served_link, return_type=str | None)]
