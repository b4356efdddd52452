"""Search over REST: substring matching (with % and _ taken literally), scoping, no emails."""

from __future__ import annotations

import httpx

from persistence.enums import ParticipantStatus
from tests.api.factories_insights import make_event, make_post, make_process
from tests.conftest import Backend, MakeUser


async def test_search_all_is_scoped(client: httpx.AsyncClient, make_user: MakeUser, backend: Backend) -> None:
    a, b = await make_user("alpha"), await make_user("zebra")
    mine = await make_event(backend, a.id, "Quarterly ROADMAP review")
    shared = await make_event(backend, b.id, "Roadmap sync", participants=[(a.id, "participant",
                                                                            ParticipantStatus.INVITED)])
    declined = await make_event(backend, b.id, "Roadmap declined", participants=[(a.id, "participant",
                                                                                  ParticipantStatus.DECLINED)])
    hidden = await make_event(backend, b.id, "Roadmap secret")
    my_proc = await make_process(backend, a.id, "Roadmap process")
    linked_proc = await make_process(backend, b.id, "Linked roadmap")
    await make_event(backend, b.id, "Carrier", process_id=linked_proc,
                     participants=[(a.id, "participant", ParticipantStatus.CONFIRMED)])
    hidden_proc = await make_process(backend, b.id, "Hidden roadmap")
    public = await make_post(backend, b.id, "the roadmap is public")
    own_private = await make_post(backend, a.id, "my private roadmap", visibility="private")
    team_shared = await make_post(backend, b.id, "team roadmap", visibility="team", event_id=shared)
    b_private = await make_post(backend, b.id, "b private roadmap", visibility="private")
    team_hidden = await make_post(backend, b.id, "hidden team roadmap", visibility="team", event_id=hidden)
    public_hidden = await make_post(backend, b.id, "public roadmap in a room", event_id=hidden)

    r = await client.get("/search", headers=a.headers, params={"q": "roadMap"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"users", "events", "processes", "posts", "topics"}
    assert {e["id"] for e in body["events"]} == {str(mine), str(shared)}
    assert str(declined) not in str(body) and str(hidden) not in str(body)
    assert {p["id"] for p in body["processes"]} == {str(my_proc), str(linked_proc)}
    assert str(hidden_proc) not in str(body)
    assert {p["id"] for p in body["posts"]} == {str(public), str(own_private), str(team_shared)}
    assert str(b_private) not in str(body) and str(team_hidden) not in str(body)
    assert str(public_hidden) not in str(body)
    ev = next(e for e in body["events"] if e["id"] == str(mine))
    assert {"startTime", "endTime", "status", "processId", "createdById"} <= ev.keys()
    post = next(p for p in body["posts"] if p["id"] == str(public))
    assert post["author"]["handle"] == b.handle and post["authorId"] == b.id

    # `query` works like `q`; types narrow the result; singular names and comma lists are accepted.
    r = await client.get("/search", headers=a.headers, params={"query": "roadmap", "types": "event,posts"})
    body = r.json()
    assert body["events"] and body["posts"] and body["users"] == [] and body["processes"] == []
    r = await client.get("/search", headers=a.headers, params=[("q", "roadmap"), ("types", "processes"),
                                                                ("types", "topics")])
    assert r.json()["processes"] and r.json()["events"] == []
    r = await client.get("/search", headers=a.headers, params={"q": "roadmap", "limit": 1})
    assert len(r.json()["events"]) == 1 and len(r.json()["posts"]) == 1


async def test_users_without_email_and_topics(client: httpx.AsyncClient, make_user: MakeUser,
                                              backend: Backend) -> None:
    a, b = await make_user("alpha"), await make_user("zebra")
    await make_event(backend, a.id, "x", topics=["Engineering"])
    r = await client.get("/search/users", headers=a.headers, params={"q": "zeb"})
    assert r.status_code == 200
    hits = r.json()
    assert [u["id"] for u in hits] == [b.id]
    assert "email" not in hits[0] and b.email not in r.text
    assert {"name", "handle", "profileImage", "bio"} <= hits[0].keys()
    # Searching by email finds nobody: emails are not searchable.
    assert (await client.get("/search/users", headers=a.headers, params={"q": b.email})).json() == []
    r = await client.get("/search/topics", headers=a.headers, params={"q": "engin"})
    assert [t["name"] for t in r.json()] == ["Engineering"]
    assert {"id", "name", "category", "color", "createdAt"} <= r.json()[0].keys()


async def test_like_wildcards_are_literal(client: httpx.AsyncClient, make_user: MakeUser, backend: Backend) -> None:
    a = await make_user()
    pct = await make_event(backend, a.id, "Grow 100% faster")
    under = await make_event(backend, a.id, "snake_case rename")
    await make_event(backend, a.id, "Grow 1000 faster")
    await make_event(backend, a.id, "snakeXcase rename")
    assert [e["id"] for e in (await client.get("/search/events", headers=a.headers,
                                                params={"q": "100%"})).json()] == [str(pct)]
    assert [e["id"] for e in (await client.get("/search/events", headers=a.headers,
                                                params={"q": "e_c"})).json()] == [str(under)]
    assert [e["id"] for e in (await client.get("/search/events", headers=a.headers,
                                                params={"q": "%"})).json()] == [str(pct)]
    assert (await client.get("/search/events", headers=a.headers, params={"q": "\\"})).json() == []


async def test_paging_per_kind(client: httpx.AsyncClient, make_user: MakeUser, backend: Backend) -> None:
    a = await make_user()
    for i in range(5):
        await make_post(backend, a.id, f"note {i}")
    first = (await client.get("/search/posts", headers=a.headers, params={"q": "note", "limit": 2})).json()
    rest = (await client.get("/search/posts", headers=a.headers, params={"q": "note", "skip": 2, "limit": 10})).json()
    assert len(first) == 2 and len(rest) == 3
    assert len({p["id"] for p in first + rest}) == 5
    procs = await client.get("/search/processes", headers=a.headers, params={"query": "nothing"})
    assert procs.status_code == 200 and procs.json() == []


async def test_empty_or_bad_query_is_422(client: httpx.AsyncClient, make_user: MakeUser) -> None:
    a = await make_user()
    for url in ("/search", "/search/users", "/search/events", "/search/processes", "/search/posts",
                "/search/topics"):
        cases: list[dict[str, str | int]] = [{}, {"q": ""}, {"q": "   "}, {"q": "x", "limit": 0}, {"q": "x" * 201}]
        for params in cases:
            r = await client.get(url, headers=a.headers, params=params)
            assert r.status_code == 422, (url, params, r.text)
            assert isinstance(r.json()["detail"], str)
    r = await client.get("/search", headers=a.headers, params={"q": "x", "types": "widgets"})
    assert r.status_code == 422
