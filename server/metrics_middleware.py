"""The API's own figures for `/metrics`: HTTP requests and latency by route, WebSocket frames in and out —
counted by a small ASGI middleware — plus, read at scrape time, connections, topics and the outbox.

Each app keeps its own prometheus-client registry (several apps live in one test process)."""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class ApiMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._seen: dict[str, int] = {}
        r = self.registry
        self.requests = Counter("conversme_http_requests", "HTTP requests by method, route and status",
                                ["method", "route", "status"], registry=r)
        self.latency = Histogram("conversme_http_request_duration_seconds", "HTTP request latency by route",
                                 ["method", "route"], buckets=LATENCY_BUCKETS, registry=r)
        self.ws_in = Counter("conversme_ws_messages_in", "WebSocket frames received from clients", registry=r)
        self.ws_out = Counter("conversme_ws_messages_out", "WebSocket frames sent to clients", registry=r)
        self.ws_opened = Counter("conversme_ws_connections_opened", "WebSocket connections accepted", registry=r)
        self.connections = Gauge("conversme_ws_connections", "Open WebSocket connections on this instance",
                                 registry=r)
        self.authenticated = Gauge("conversme_ws_authenticated_connections",
                                   "Open connections that have authenticated", registry=r)
        self.topics = Gauge("conversme_topics", "Topics with listeners on this instance", registry=r)
        self.subscriptions = Gauge("conversme_topic_subscriptions", "Connection-topic subscriptions", registry=r)
        self.published = Gauge("conversme_messages_published", "Messages this instance published to topics "
                               "(since start)", registry=r)
        self.outbox_pending = Gauge("conversme_outbox_pending", "Committed messages waiting to be published",
                                    registry=r)
        self.outbox_dropped = Gauge("conversme_outbox_dropped", "Messages given up after the outbox's max age",
                                    registry=r)
        self.relayed = Gauge("conversme_log_relayed", "Committed log entries this instance delivered from the "
                             "database because Redis did not bring them (since start)", registry=r)
        self.publish_dropped = Gauge("conversme_log_publish_failed", "Committed log entries this instance could "
                                     "not hand to Redis (the other instances relay them; since start)", registry=r)

    def refresh(self, ws_stats: dict[str, Any], outbox: Any) -> None:
        # Counters only grow: add what the connections counted since the last scrape.
        for counter, key in ((self.ws_in, "framesIn"), (self.ws_out, "framesOut"), (self.ws_opened, "opened")):
            total = int(ws_stats.get(key, 0))
            seen = self._seen.get(key, 0)
            if total > seen:
                counter.inc(total - seen)
                self._seen[key] = total
        self.connections.set(ws_stats.get("connections", 0))
        self.authenticated.set(ws_stats.get("authenticated", 0))
        self.topics.set(ws_stats.get("topics", 0))
        self.subscriptions.set(ws_stats.get("subscriptions", 0))
        self.published.set(ws_stats.get("published", 0))
        self.relayed.set(ws_stats.get("relayed", 0))
        self.publish_dropped.set(ws_stats.get("publishDropped", 0))
        self.outbox_pending.set(outbox.pending)
        self.outbox_dropped.set(outbox.dropped)


def _route(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    # Unmatched paths are one label, so scanners cannot blow up the label set.
    return str(path) if path else "unmatched"


class MetricsMiddleware:
    def __init__(self, app: ASGIApp, metrics: ApiMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            await self._websocket(scope, receive, send)
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = _route(scope)
            method = scope.get("method", "GET")
            self.metrics.latency.labels(method, route).observe(time.perf_counter() - started)
            self.metrics.requests.labels(method, route, str(status)).inc()

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        # WebSocket frames are counted by the connections themselves (server/ws_connection.py) and read at scrape
        # time: wrapping send here would add a coroutine layer to every delivered frame of every fan-out.
        await self.app(scope, receive, send)
