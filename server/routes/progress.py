"""REST routes: progress."""

from __future__ import annotations

from server.api import ApiRouter

router = ApiRouter("progress")
