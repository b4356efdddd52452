"""The market over REST: the public library, private collections and copies, ownership, save idempotence."""

from __future__ import annotations

import dataclasses
import uuid
from typing import Any

import httpx
from sqlalchemy import func, select

from handlers import seed
from persistence.models import Collection, Directory, Process, Step, SubStep
from tests.conftest import Account, Backend, MakeUser


async def _seed_library(backend: Backend) -> None:
    async with backend.state.sessionmaker.begin() as db:
        await seed.initialize_library(db)


async def _library(client: httpx.AsyncClient, a: Account) -> list[dict[str, Any]]:
    r = await client.get("/market/collections", headers=a.headers)
    assert r.status_code == 200, r.text
    return [c for c in r.json() if c["isLibrary"]]


async def test_library_collections_are_listed_with_their_content(client: httpx.AsyncClient, make_user: MakeUser,
                                                                 backend: Backend) -> None:
    await _seed_library(backend)
    a = await make_user()
    library = await _library(client, a)
    assert [c["title"] for c in library] == ["Startup Success Toolkit", "Product Discovery Essentials",
                                             "Design & Research Excellence"]
    first = library[0]
    assert {"id", "title", "description", "author", "categories", "saves", "directories", "createdAt",
            "isLibrary", "sourceId"} <= set(first)
    assert first["author"]["name"] and first["sourceId"] is None and first["saves"] == 0
    directory = first["directories"][0]
    assert {"id", "name", "description", "color", "processes"} <= set(directory)
    process = directory["processes"][0]
    assert {"id", "title", "description", "category", "icon", "benefits", "steps", "saves", "createdBy",
            "createdAt"} <= set(process)
    assert process["steps"][0]["title"] and process["benefits"]
    r = await client.get(f"/market/collections/{first['id']}", headers=a.headers)
    assert r.status_code == 200 and r.json() == first
    r = await client.get(f"/market/collections/{first['id']}/directories", headers=a.headers)
    assert r.status_code == 200 and r.json() == first["directories"]
    r = await client.get("/market/collections", headers=a.headers, params={"category": "design"})
    assert [c["title"] for c in r.json()] == ["Design & Research Excellence"]
    r = await client.get("/market/collections", headers=a.headers, params={"skip": 1, "limit": 1})
    assert [c["title"] for c in r.json()] == ["Product Discovery Essentials"]


async def test_library_directories_and_processes(client: httpx.AsyncClient, make_user: MakeUser,
                                                 backend: Backend) -> None:
    await _seed_library(backend)
    a = await make_user()
    r = await client.get("/market/directories", headers=a.headers)
    assert r.status_code == 200 and len(r.json()) == 6
    assert all(d["processes"] for d in r.json())
    r = await client.get("/market/processes", headers=a.headers)
    assert r.status_code == 200 and len(r.json()) == 8
    r = await client.get("/market/processes", headers=a.headers, params={"category": "engineering"})
    assert {p["title"] for p in r.json()} == {"Sprint Planning", "Release Checklist"}
    r = await client.get("/market/processes", headers=a.headers, params={"limit": 2, "skip": 7})
    assert len(r.json()) == 1


async def _count(backend: Backend, model: Any, *where: Any) -> int:
    async with backend.state.sessionmaker() as db:
        return await db.scalar(select(func.count()).select_from(model).where(*where)) or 0


async def test_save_copies_into_my_workspace_once(client: httpx.AsyncClient, make_user: MakeUser,
                                                  backend: Backend) -> None:
    await _seed_library(backend)
    a = await make_user("alice")
    b = await make_user("bob")
    lib = (await _library(client, a))[0]
    r = await client.post(f"/market/collections/{lib['id']}/save", headers=a.headers)
    assert r.status_code == 200, r.text
    copy = r.json()
    assert copy["id"] != lib["id"] and copy["isLibrary"] is False and copy["sourceId"] == lib["id"]
    assert copy["createdById"] == a.id and copy["title"] == lib["title"]
    assert [d["name"] for d in copy["directories"]] == [d["name"] for d in lib["directories"]]
    assert [[p["title"] for p in d["processes"]] for d in copy["directories"]] == \
        [[p["title"] for p in d["processes"]] for d in lib["directories"]]
    assert copy["directories"][0]["processes"][0]["steps"] == lib["directories"][0]["processes"][0]["steps"]
    owner = uuid.UUID(a.id)
    processes_after_first = await _count(backend, Process, Process.created_by_id == owner)
    assert processes_after_first == sum(len(d["processes"]) for d in lib["directories"])
    assert await _count(backend, Directory, Directory.created_by_id == owner) == len(lib["directories"])
    # The copies are real templates of mine, with steps and substeps.
    async with backend.state.sessionmaker() as db:
        mine = (await db.scalars(select(Process).where(Process.created_by_id == owner))).all()
        assert all(p.is_template for p in mine)
        steps = await db.scalar(select(func.count()).select_from(Step).where(
            Step.process_id.in_([p.id for p in mine])))
        subs = await db.scalar(select(func.count()).select_from(SubStep).join(Step).where(
            Step.process_id.in_([p.id for p in mine])))
        assert steps and subs
    # Saving again: the same copy, nothing new, the save counted once.
    again = await client.post(f"/market/collections/{lib['id']}/save", headers=a.headers)
    assert again.status_code == 200 and again.json()["id"] == copy["id"]
    assert await _count(backend, Process, Process.created_by_id == owner) == processes_after_first
    assert await _count(backend, Collection, Collection.created_by_id == owner) == 1
    lib_now = (await client.get(f"/market/collections/{lib['id']}", headers=b.headers)).json()
    assert lib_now["saves"] == 1
    assert lib_now["directories"][0]["processes"][0]["saves"] == 1
    # Lists: my copy is mine alone.
    mine_listed = [c for c in (await client.get("/market/collections", headers=a.headers)).json()
                   if not c["isLibrary"]]
    assert [c["id"] for c in mine_listed] == [copy["id"]]
    others = (await client.get("/market/collections", headers=b.headers)).json()
    assert all(c["isLibrary"] for c in others)
    assert (await client.get(f"/market/collections/{copy['id']}", headers=b.headers)).status_code == 404
    r = await client.get(f"/market/collections/{copy['id']}/directories", headers=b.headers)
    assert r.status_code == 404
    # A private collection cannot be "saved".
    assert (await client.post(f"/market/collections/{copy['id']}/save", headers=a.headers)).status_code == 400
    assert (await client.post(f"/market/collections/{copy['id']}/save", headers=b.headers)).status_code == 404
    assert (await client.post(f"/market/collections/{uuid.uuid4()}/save", headers=a.headers)).status_code == 404


async def test_create_update_delete_own_collection(client: httpx.AsyncClient, make_user: MakeUser,
                                                   backend: Backend) -> None:
    a = await make_user("alice")
    b = await make_user("bob")
    r = await client.post("/market/collections", headers=a.headers, json={
        "title": "My kit", "description": "d", "categories": ["Ops"],
        "directories": [{"name": "Dir", "color": "#111111", "processes": [{
            "title": "Proc", "category": "Ops", "icon": "x", "benefits": ["fast"],
            "steps": [{"title": "One", "description": "first"}, {"title": "Two"}]}]}]})
    assert r.status_code == 201, r.text
    c = r.json()
    assert c["isLibrary"] is False and c["author"]["name"] == "Alice" and c["categories"] == ["Ops"]
    proc = c["directories"][0]["processes"][0]
    assert proc["steps"] == [{"title": "One", "description": "first"}, {"title": "Two", "description": ""}]
    # Owner updates partially.
    r = await client.put(f"/market/collections/{c['id']}", headers=a.headers, json={"title": "Renamed"})
    assert r.status_code == 200 and r.json()["title"] == "Renamed" and r.json()["categories"] == ["Ops"]
    assert r.json()["description"] == "d"
    # Others: 404 (cannot see it), nothing changed.
    assert (await client.put(f"/market/collections/{c['id']}", headers=b.headers,
                             json={"title": "Hacked"})).status_code == 404
    assert (await client.delete(f"/market/collections/{c['id']}", headers=b.headers)).status_code == 404
    r = await client.get(f"/market/collections/{c['id']}", headers=a.headers)
    assert r.json()["title"] == "Renamed"
    # Including my own directory by id works; someone else's directory is 404 and nothing is created.
    my_dir_id = c["directories"][0]["id"]
    r = await client.post("/market/collections", headers=b.headers, json={"title": "steal",
                                                                         "directories": [my_dir_id]})
    assert r.status_code == 404
    assert await _count(backend, Collection, Collection.created_by_id == uuid.UUID(b.id)) == 0
    # Validation: nothing created.
    for body in ({"title": ""}, {"description": "no title"}, {"title": "x", "directories": [{"processes": []}]}):
        assert (await client.post("/market/collections", headers=b.headers, json=body)).status_code == 422
    assert (await client.post("/market/collections", headers=b.headers,
                              json={"title": "pub", "isLibrary": True})).status_code == 403
    assert await _count(backend, Collection, Collection.created_by_id == uuid.UUID(b.id)) == 0
    # Deleting my collection leaves its directory and template in my workspace.
    assert (await client.delete(f"/market/collections/{c['id']}", headers=a.headers)).status_code == 204
    assert (await client.get(f"/market/collections/{c['id']}", headers=a.headers)).status_code == 404
    assert await _count(backend, Process, Process.created_by_id == uuid.UUID(a.id)) == 1


async def test_library_collection_changes_need_an_admin(client: httpx.AsyncClient, make_user: MakeUser,
                                                        backend: Backend) -> None:
    await _seed_library(backend)
    admin = await make_user("root", admin=True)
    a = await make_user("alice")
    lib = (await _library(client, a))[2]
    assert (await client.put(f"/market/collections/{lib['id']}", headers=a.headers,
                             json={"title": "x"})).status_code == 403
    assert (await client.delete(f"/market/collections/{lib['id']}", headers=a.headers)).status_code == 403
    r = await client.put(f"/market/collections/{lib['id']}", headers=admin.headers,
                         json={"categories": ["Design"], "author": {"name": "Team", "avatar": "/a.png"}})
    assert r.status_code == 200 and r.json()["author"] == {"name": "Team", "avatar": "/a.png"}
    assert r.json()["title"] == lib["title"]
    # An admin may publish a new library collection.
    r = await client.post("/market/collections", headers=admin.headers, json={
        "title": "Published", "isLibrary": True,
        "directories": [{"name": "D", "processes": [{"title": "P", "steps": [{"title": "s"}]}]}]})
    assert r.status_code == 201 and r.json()["isLibrary"] is True and r.json()["createdById"] is None
    assert "Published" in [c["title"] for c in await _library(client, a)]
    templates_before = await _count(backend, Process)
    r = await client.delete(f"/market/collections/{lib['id']}", headers=admin.headers)
    assert r.status_code == 204
    gone = sum(len(d["processes"]) for d in lib["directories"])
    assert await _count(backend, Process) == templates_before - gone
    assert lib["title"] not in [c["title"] for c in await _library(client, a)]


async def test_market_initialize_in_debug_is_idempotent(client: httpx.AsyncClient, backend: Backend) -> None:
    original = backend.state.settings
    backend.state.settings = dataclasses.replace(original, debug=True)
    try:
        r = await client.post("/market/initialize")
        assert r.status_code == 200, r.text
        assert r.json()["success"] is True and r.json()["message"]
        counts = [await _count(backend, m) for m in (Collection, Directory, Process, Step, SubStep)]
        r = await client.post("/market/initialize")
        assert r.status_code == 200 and r.json()["message"] == "the library is already initialized"
        assert [await _count(backend, m) for m in (Collection, Directory, Process, Step, SubStep)] == counts
    finally:
        backend.state.settings = original
