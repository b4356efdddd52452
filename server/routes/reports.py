"""REST routes: reports."""

from __future__ import annotations

from server.api import ApiRouter

router = ApiRouter("reports")
