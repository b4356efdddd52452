"""REST routes: market."""

from __future__ import annotations

from server.api import ApiRouter

router = ApiRouter("market")
