"""What the pump does with each command the sans-I/O protocol hands it: auth and refresh, join (access check,
then resume from the topic's log: missed entries in order, no gap, no duplicate), leave and push, each in one
short unit of work of its own."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

from channels import messages as m
from channels.coalesce import compact_backlog
from handlers import realtime
from handlers.accounts.users import brief
from handlers.context import Context, Outcome
from handlers.schema import to_wire
from handlers.unit_of_work import unit_of_work
from persistence.errors import DomainError, Forbidden, NotFound, Unauthorized
from server.errors import translate, ws_code
from server.ws_auth import to_monotonic, verify
from server.ws_connection import Connection, TopicView


async def carry_out(conn: Connection, command: m.Command) -> None:
    proto, state = conn.proto, conn.state
    if state.chat_lines is not None:
        # A chat line joins the group being gathered (server.ws_chat_lines) and is answered once stored; any other
        # command waits for this connection's lines first, so it acts after them, as it would one push at a time.
        if isinstance(command, m.Push) and (line := realtime.chat_line(command.topic, command.event,
                                                                       command.data)) is not None:
            await state.chat_lines.submit(conn, command.ref, *line)
            return
        await state.chat_lines.settled(conn)
    if isinstance(command, m.Auth | m.Refresh):
        try:
            user, expires_at, session_id = await verify(state, command.token)
        except Unauthorized as exc:
            if isinstance(command, m.Auth):
                proto.auth_failed(command.ref, exc.message)
            else:
                proto.refresh_failed(command.ref, exc.message)
            return
        if isinstance(command, m.Auth):
            proto.auth_ok(command.ref, str(user.id), conn.id, to_monotonic(expires_at))
            conn.user_id, conn.user, conn.session_id = str(user.id), user, session_id
        elif str(user.id) != conn.user_id:
            proto.refresh_failed(command.ref, "token is for another user")
        else:
            conn.user, conn.session_id = user, session_id
            await _recheck_topics(conn)
            proto.refresh_ok(command.ref, to_monotonic(expires_at), unix_expires_at=expires_at)
    elif isinstance(command, m.Join):
        await _join(conn, command)
    elif isinstance(command, m.Leave):
        conn.views.pop(command.topic, None)
        await state.hub.unsubscribe(command.topic, conn)
        await state.hub.untrack(command.topic, conn.id, conn.user_id)
    elif isinstance(command, m.Push):
        await _push(conn, command)


async def _in_transaction(conn: Connection, work: Callable[[Context], Any]) -> Any:
    """One short unit of work for one command (a join's access check, a push): nothing held between commands."""
    state = conn.state
    assert conn.user is not None
    guard = state.generations.reservations() if state.generations is not None else None
    async with unit_of_work(state.sessionmaker, state.clock(), state.announce, guard) as unit:
        # The user verified at auth/refresh, attached without a query: one round trip less per command.
        user = await unit.db.merge(conn.user, load=False)
        ctx = Context(db=unit.db, user=user, now=unit.now, limits=state.limits)
        value = await work(ctx)
        return unit.add(value) if isinstance(value, Outcome) else value


async def _join(conn: Connection, command: m.Join) -> None:
    proto, hub, topic = conn.proto, conn.state.hub, command.topic
    try:
        await _authorize_join(conn, topic)
    except DomainError as exc:
        proto.join_failed(command.ref, topic, ws_code(exc), exc.message)
        return
    view = conn.views[topic] = TopicView()
    try:
        await hub.subscribe(topic, conn)
        recovered = False
        backlog: list[tuple[int, str]] = []
        if command.since is not None:
            entries = await hub.history(topic, command.since.epoch, command.since.offset)
            if entries is not None:
                recovered = True
                backlog = [(e.offset, e.frame) for e in entries]
        position = await hub.position(topic)
        last = max([position.offset, *(o for o, _ in backlog)]) if recovered else position.offset
        assert conn.user is not None
        present = await hub.track(topic, conn.id, conn.user_id, to_wire(brief(conn.user)))
    except Exception:
        conn.views.pop(topic, None)
        with contextlib.suppress(Exception):
            await hub.unsubscribe(topic, conn)
        raise
    proto.join_ok(command.ref, topic, {"epoch": position.epoch, "offset": last, "recovered": recovered,
                                       "presence": present})
    conn.flush_protocol()
    # Missed entries first, then whatever arrived while we were joining: in order, no gap, no duplicate.
    sent = command.since.offset if recovered and command.since is not None else last
    missed = [(o, f) for o, f in dict(sorted(backlog + view.buffer)).items() if o > sent]
    if recovered and topic.startswith("live:"):
        missed = compact_backlog(missed)  # a finished AI stream as one frame, an unfinished one as one delta
    for offset, frame in missed:
        conn.enqueue(frame)
        sent = offset
    view.buffer.clear()
    view.last = sent
    view.ready = True


async def _authorize_join(conn: Connection, topic: str) -> None:
    """realtime.authorize_join, without a transaction of its own for the two common kinds: a user topic needs
    no database at all, an event room's membership is asked together with every other socket joining now."""
    kind, ident = realtime.parse_topic(topic)
    assert conn.user is not None
    checks = conn.state.connect_checks
    if kind == "user":
        if ident != conn.user.id:
            raise Forbidden("a user topic is for its user only")
    elif kind == "event" and checks is not None:
        if not await checks.members.get((ident, conn.user.id)):
            raise NotFound("event", ident)
    else:
        await _in_transaction(conn, lambda ctx: realtime.authorize_join(ctx, topic))


async def _recheck_topics(conn: Connection) -> None:
    for topic in list(conn.views):
        async def check(ctx: Context, topic: str = topic) -> None:
            await realtime.authorize_join(ctx, topic)
        try:
            await _in_transaction(conn, check)
        except DomainError:
            conn.on_removed(topic, conn.user_id, "revoked")


async def _push(conn: Connection, command: m.Push) -> None:
    proto, state = conn.proto, conn.state
    try:
        # The unit of work commits, then announces (a stream reserved by a failed transaction is freed).
        value = await _in_transaction(
            conn, lambda ctx: realtime.run_push(ctx, command.topic, command.event, command.data, state.generations))
    except DomainError as exc:
        proto.push_failed(command.ref, ws_code(exc), exc.message)
        return
    except Exception as exc:
        mapped = translate(exc)  # as over REST: a broken constraint is a conflict, an outage `unavailable`
        if mapped is None:
            raise
        proto.push_failed(command.ref, ws_code(mapped), mapped.message)
        return
    # Committed and announced: answer the pusher.
    proto.push_ok(command.ref, realtime.reply_data(value))
    if state.generations is not None:  # a prompt's stream starts (or a cancel is sent) only after the commit
        await state.generations.after_commit(value)

