"""The link rule by itself: what a URL-ish field accepts, and what a stored value is served as."""

from __future__ import annotations

import pytest

from handlers.links import check_link, served_link

SAFE = ["/", "/uploads/media/a.png", "/room?id=1#x", "https://cdn.example/a.png", "HTTP://EXAMPLE.COM",
        "http://example.com:8080/a?b=c"]
UNSAFE = ["", "javascript:alert(1)", "JAVASCRIPT:alert(1)", "data:image/png;base64,AAAA", "vbscript:x",
          "file:///etc/passwd", "//evil.example", "/\\evil.example", "\\\\evil.example", "https:evil.example",
          "https:/evil.example", " /a", "/a b", "/a\tb", "/a\nb", "/a\x00", "/a\x7f", "/a\u00a0b", "/a\u2028b",
          "java\u200bscript:x", "evil.example/a.png", "mailto:a@example.com"]


@pytest.mark.parametrize("value", SAFE)
def test_site_paths_and_http_urls_pass(value: str) -> None:
    assert check_link(value) == value and served_link(value) == value


@pytest.mark.parametrize("value", UNSAFE)
def test_everything_else_is_refused_and_served_as_none(value: str) -> None:
    with pytest.raises(ValueError, match="link"):
        check_link(value)
    assert served_link(value) is None


def test_no_link_stays_none() -> None:
    assert served_link(None) is None
