"""Topics over REST: everyone reads, only administrators (by is_admin) write; names are unique."""

from __future__ import annotations

import uuid

import httpx

from tests.conftest import MakeUser


async def test_topic_crud_by_admin_and_reads_by_anyone(client: httpx.AsyncClient, make_user: MakeUser) -> None:
    admin = await make_user("root", admin=True)
    a = await make_user("alice")
    r = await client.post("/topics", headers=admin.headers, json={"name": "Design", "category": "Work",
                                                                  "color": "#ec4899"})
    assert r.status_code == 201, r.text
    topic = r.json()
    assert {"id", "name", "category", "color", "createdAt", "updatedAt"} <= set(topic)
    await client.post("/topics", headers=admin.headers, json={"name": "Sales", "category": "Business"})
    r = await client.get("/topics", headers=a.headers)
    assert r.status_code == 200 and [t["name"] for t in r.json()] == ["Design", "Sales"]
    r = await client.get("/topics", headers=a.headers, params={"category": "business"})
    assert [t["name"] for t in r.json()] == ["Sales"]
    r = await client.get("/topics", headers=a.headers, params={"skip": 1, "limit": 1})
    assert [t["name"] for t in r.json()] == ["Sales"]
    r = await client.get(f"/topics/{topic['id']}", headers=a.headers)
    assert r.status_code == 200 and r.json()["name"] == "Design"
    # Partial update keeps the omitted fields.
    r = await client.put(f"/topics/{topic['id']}", headers=admin.headers, json={"color": "#000000"})
    assert r.status_code == 200 and r.json()["category"] == "Work" and r.json()["color"] == "#000000"
    r = await client.delete(f"/topics/{topic['id']}", headers=admin.headers)
    assert r.status_code == 204
    assert (await client.get(f"/topics/{topic['id']}", headers=a.headers)).status_code == 404
    assert (await client.get(f"/topics/{uuid.uuid4()}", headers=a.headers)).status_code == 404


async def test_topic_writes_need_is_admin(client: httpx.AsyncClient, make_user: MakeUser) -> None:
    admin = await make_user("root", admin=True)
    a = await make_user("alice")
    topic = (await client.post("/topics", headers=admin.headers, json={"name": "Ops"})).json()
    assert (await client.post("/topics", headers=a.headers, json={"name": "X"})).status_code == 403
    assert (await client.put(f"/topics/{topic['id']}", headers=a.headers, json={"name": "Y"})).status_code == 403
    assert (await client.delete(f"/topics/{topic['id']}", headers=a.headers)).status_code == 403
    r = await client.get("/topics", headers=a.headers)
    assert [t["name"] for t in r.json()] == ["Ops"]


async def test_topic_name_uniqueness(client: httpx.AsyncClient, make_user: MakeUser) -> None:
    admin = await make_user("root", admin=True)
    first = (await client.post("/topics", headers=admin.headers, json={"name": "Design"})).json()
    other = (await client.post("/topics", headers=admin.headers, json={"name": "Research"})).json()
    assert (await client.post("/topics", headers=admin.headers, json={"name": "design"})).status_code == 409
    r = await client.put(f"/topics/{other['id']}", headers=admin.headers, json={"name": "DESIGN"})
    assert r.status_code == 409
    # Renaming to its own name (another case) is fine.
    r = await client.put(f"/topics/{first['id']}", headers=admin.headers, json={"name": "design"})
    assert r.status_code == 200 and r.json()["name"] == "design"
    for body in ({"name": ""}, {"name": None}, {}, {"name": "x" * 101}):
        assert (await client.post("/topics", headers=admin.headers, json=body)).status_code == 422
    r = await client.put(f"/topics/{first['id']}", headers=admin.headers, json={"name": None})
    assert r.status_code == 422
    names = [t["name"] for t in (await client.get("/topics", headers=admin.headers)).json()]
    assert names == ["design", "Research"]
