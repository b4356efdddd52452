"""Every REST route module; each exports `router`."""

from __future__ import annotations

from server.routes import (
    admin,
    ai,
    auth,
    chat,
    console,
    directories,
    events,
    feed,
    live,
    market,
    media,
    notifications,
    ops,
    plan,
    posts,
    processes,
    progress,
    reports,
    search,
    settings,
    topics,
    users,
)
from server.routing import Endpoint

MODULES = (auth, users, settings, events, chat, processes, directories, posts, media, notifications, live, ai, plan,
           market, admin, topics, reports, progress, search, feed, ops, console)


def all_endpoints() -> list[Endpoint]:
    return [ep for module in MODULES for ep in module.router.endpoints]
