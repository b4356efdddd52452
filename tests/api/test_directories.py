"""Directories over REST: the tree, its processes, ownership, cycles and deletion."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from sqlalchemy import select

from persistence.models import Directory
from tests.api.checklist_support import make_instance, make_template, process_row
from tests.conftest import Account, Backend, MakeUser

DIRECTORY_KEYS = {"id", "name", "description", "color", "icon", "directoryMetadata", "createdById", "parentId",
                  "processes", "processCount", "createdAt", "updatedAt"}


async def _mkdir(client: httpx.AsyncClient, who: Account, **body: Any) -> dict[str, Any]:
    r = await client.post("/directories", json=body, headers=who.headers)
    assert r.status_code == 201, r.text
    data: dict[str, Any] = r.json()
    return data


async def _directory(backend: Backend, directory_id: str) -> Directory | None:
    async with backend.state.sessionmaker() as db:
        return await db.get(Directory, uuid.UUID(directory_id))


async def test_create_and_list(client: httpx.AsyncClient, make_user: MakeUser) -> None:
    a, b = await make_user("alice"), await make_user("bob")
    top = await _mkdir(client, a, name="Engineering", description="d", color="#fff", icon="gear",
                       metadata={"sort_key": 1})
    assert set(top) == DIRECTORY_KEYS
    assert (top["parentId"], top["createdById"], top["directoryMetadata"]) == (None, a.id, {"sort_key": 1})
    assert top["processes"] == [] and top["processCount"] == 0 and top["createdAt"].endswith("Z")
    child = await _mkdir(client, a, name="Releases", parent_id=top["id"], directoryMetadata={"x": 1})
    camel = await _mkdir(client, a, name="Incidents", parentId=top["id"], directory_metadata={"y": 2})
    assert child["parentId"] == camel["parentId"] == top["id"]
    assert (child["directoryMetadata"], camel["directoryMetadata"]) == ({"x": 1}, {"y": 2})
    await _mkdir(client, b, name="Bob's")

    t = await make_template(client, a, directory_id=top["id"])
    await make_instance(client, a, directory_id=top["id"])  # instances are not counted as the directory's templates
    listed = (await client.get("/directories", headers=a.headers)).json()
    assert [(d["name"], d["processes"], d["processCount"]) for d in listed] == [("Engineering", [t["id"]], 1)]
    children = (await client.get("/directories", params={"parentId": top["id"]}, headers=a.headers)).json()
    assert sorted(d["name"] for d in children) == ["Incidents", "Releases"]
    children = (await client.get("/directories", params={"parent_id": top["id"]}, headers=a.headers)).json()
    assert len(children) == 2
    assert (await client.get("/directories", params={"parent_id": top["id"]}, headers=b.headers)).json() == []


async def test_create_rejects_foreign_parent_and_garbage(client: httpx.AsyncClient, make_user: MakeUser,
                                                         backend: Backend) -> None:
    a, b = await make_user("alice"), await make_user("bob")
    theirs = await _mkdir(client, b, name="Bob's")
    assert (await client.post("/directories", json={"name": "x", "parentId": theirs["id"]},
                              headers=a.headers)).status_code == 404
    for bad in ({}, {"name": ""}, {"name": "x", "parent_id": "nope"}, {"name": "x" * 201}):
        r = await client.post("/directories", json=bad, headers=a.headers)
        assert r.status_code == 422, (bad, r.text)
    async with backend.state.sessionmaker() as db:
        owners = (await db.scalars(select(Directory.created_by_id))).all()
    assert [str(o) for o in owners] == [b.id]


async def test_detail_has_processes_with_steps_and_subdirectories(client: httpx.AsyncClient,
                                                                  make_user: MakeUser) -> None:
    a = await make_user()
    top = await _mkdir(client, a, name="Top")
    sub = await _mkdir(client, a, name="Sub", parentId=top["id"])
    t = await make_template(client, a, directory_id=top["id"])
    # An instance of a template in the same directory is shown through the template; a standalone one is listed.
    r = await client.post("/live-processes", json={"title": "Run", "templateId": t["id"]}, headers=a.headers)
    assert r.json()["directoryId"] == top["id"]
    standalone = await make_instance(client, a, directory_id=top["id"])
    r = await client.get(f"/directories/{top['id']}", headers=a.headers)
    assert r.status_code == 200, r.text
    d = r.json()
    assert set(d) == DIRECTORY_KEYS | {"subdirectories"}
    assert [p["id"] for p in d["processes"]] == [t["id"], standalone["id"]]
    assert d["processCount"] == 1
    first = d["processes"][0]
    assert [s["content"] for s in first["steps"]] == ["Freeze", "Verify"]
    assert len(first["steps"][0]["subSteps"]) == 2 and "connectedEvents" in first
    assert [(s["id"], s["name"]) for s in d["subdirectories"]] == [(sub["id"], "Sub")]
    assert set(d["subdirectories"][0]) == DIRECTORY_KEYS


async def test_other_users_directory_is_404_and_untouched(client: httpx.AsyncClient, make_user: MakeUser,
                                                          backend: Backend) -> None:
    a, b = await make_user("alice"), await make_user("bob")
    d = await _mkdir(client, a, name="Private")
    assert (await client.get(f"/directories/{d['id']}", headers=b.headers)).status_code == 404
    assert (await client.put(f"/directories/{d['id']}", json={"name": "x"}, headers=b.headers)).status_code == 404
    assert (await client.delete(f"/directories/{d['id']}", headers=b.headers)).status_code == 404
    mine = await _mkdir(client, b, name="Bob's")
    assert (await client.put(f"/directories/{mine['id']}", json={"parentId": d["id"]},
                             headers=b.headers)).status_code == 404
    row = await _directory(backend, d["id"])
    assert row is not None and row.name == "Private"


async def test_update_partial_and_cycles(client: httpx.AsyncClient, make_user: MakeUser, backend: Backend) -> None:
    a = await make_user()
    root = await _mkdir(client, a, name="Root", color="#000")
    mid = await _mkdir(client, a, name="Mid", parentId=root["id"])
    leaf = await _mkdir(client, a, name="Leaf", parentId=mid["id"])
    r = await client.put(f"/directories/{root['id']}", json={"name": "Root 2", "metadata": {"k": 1}, "icon": "i"},
                         headers=a.headers)
    assert r.status_code == 200, r.text
    assert (r.json()["name"], r.json()["color"], r.json()["icon"], r.json()["directoryMetadata"]) == (
        "Root 2", "#000", "i", {"k": 1})
    for parent in (root["id"], mid["id"], leaf["id"]):
        r = await client.put(f"/directories/{root['id']}", json={"parent_id": parent}, headers=a.headers)
        assert r.status_code == 422, (parent, r.text)
    assert (await client.put(f"/directories/{root['id']}", json={"name": None},
                             headers=a.headers)).status_code == 422
    row = await _directory(backend, root["id"])
    assert row is not None and row.parent_id is None and row.name == "Root 2"
    # Moving a leaf to the top and then under another branch works.
    r = await client.put(f"/directories/{leaf['id']}", json={"parentId": None}, headers=a.headers)
    assert r.json()["parentId"] is None
    r = await client.put(f"/directories/{mid['id']}", json={"parentId": leaf["id"]}, headers=a.headers)
    assert r.status_code == 200 and r.json()["parentId"] == leaf["id"]


async def test_delete_detaches_processes_and_lifts_children(client: httpx.AsyncClient, make_user: MakeUser,
                                                            backend: Backend) -> None:
    a = await make_user()
    root = await _mkdir(client, a, name="Root")
    doomed = await _mkdir(client, a, name="Doomed", parentId=root["id"])
    child = await _mkdir(client, a, name="Child", parentId=doomed["id"])
    t = await make_template(client, a, directory_id=doomed["id"])
    assert (await client.delete(f"/directories/{doomed['id']}", headers=a.headers)).status_code == 204
    assert await _directory(backend, doomed["id"]) is None
    row = await process_row(backend, t["id"])
    assert row is not None and row.directory_id is None
    lifted = await _directory(backend, child["id"])
    assert lifted is not None and lifted.parent_id == uuid.UUID(root["id"])


async def test_delete_moving_processes(client: httpx.AsyncClient, make_user: MakeUser, backend: Backend) -> None:
    a, b = await make_user("alice"), await make_user("bob")
    doomed = await _mkdir(client, a, name="Doomed")
    target = await _mkdir(client, a, name="Target")
    theirs = await _mkdir(client, b, name="Bob's")
    t = await make_template(client, a, directory_id=doomed["id"])
    r = await client.delete(f"/directories/{doomed['id']}", params={"move_processes": "true",
                                                                    "target_directory_id": theirs["id"]},
                            headers=a.headers)
    assert r.status_code == 404
    assert await _directory(backend, doomed["id"]) is not None
    r = await client.delete(f"/directories/{doomed['id']}", params={"move_processes": "true",
                                                                    "target_directory_id": doomed["id"]},
                            headers=a.headers)
    assert r.status_code == 422
    r = await client.delete(f"/directories/{doomed['id']}", params={"moveProcesses": "true",
                                                                    "targetDirectoryId": target["id"]},
                            headers=a.headers)
    assert r.status_code == 204
    row = await process_row(backend, t["id"])
    assert row is not None and row.directory_id == uuid.UUID(target["id"])
    assert (await client.get(f"/directories/{target['id']}", headers=a.headers)).json()["processCount"] == 1
