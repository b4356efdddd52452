"""URLs the frontend uses verbatim (as `src` or `href`): site-relative paths and http(s) URLs only."""

from __future__ import annotations


def check_link(value: str) -> str:
    """`value` if it is a safe link; otherwise ValueError (a validation error in request models)."""
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in value):
        raise ValueError("a link may not contain whitespace or control characters")
    if value.startswith("/") and not value.startswith(("//", "/\\")):
        return value
    if value.lower().startswith(("https://", "http://")):
        return value
    raise ValueError("a link must be a site path (/...) or an http(s) URL")
