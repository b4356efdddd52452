"""REST routes: plan."""

from __future__ import annotations

from server.api import ApiRouter

router = ApiRouter("plan")
