"""REST routes: market — the public library and my own collections and saved copies."""

from __future__ import annotations

from handlers.market import collections as market
from handlers.market.collections import CollectionCreate, CollectionUpdate, MarketQuery
from handlers.market.shapes import CollectionOut, LibDirectoryOut, LibProcessOut
from handlers.schema import PageQuery
from server.api import ApiRouter, Call
from server.routes.admin import InitOut, seed_library

router = ApiRouter("market")


@router.get("/market/collections", query=MarketQuery, response=list[CollectionOut])
async def list_collections(call: Call) -> list[CollectionOut]:
    """Library collections (`isLibrary: true`) followed by my own collections and saved copies (`sourceId`)."""
    return await market.list_collections(call.ctx, call.query)


@router.get("/market/collections/{collection_id}", response=CollectionOut)
async def get_collection(call: Call) -> CollectionOut:
    """One collection: a library one, or one of mine."""
    return await market.get_collection(call.ctx, call.id("collection_id"))


@router.get("/market/collections/{collection_id}/directories", response=list[LibDirectoryOut])
async def collection_directories(call: Call) -> list[LibDirectoryOut]:
    """A collection's directories with their template processes."""
    return await market.collection_directories(call.ctx, call.id("collection_id"))


@router.post("/market/collections/{collection_id}/save", response=CollectionOut)
async def save_collection(call: Call) -> CollectionOut:
    """Copy a library collection into my workspace (saving again returns the same copy)."""
    return await market.save_collection(call.ctx, call.id("collection_id"))


@router.get("/market/directories", query=PageQuery, response=list[LibDirectoryOut])
async def library_directories(call: Call) -> list[LibDirectoryOut]:
    """The library's directories with their template processes."""
    return await market.library_directories(call.ctx, call.query)


@router.get("/market/processes", query=MarketQuery, response=list[LibProcessOut])
async def library_processes(call: Call) -> list[LibProcessOut]:
    """The library's template processes, optionally of one `category`."""
    return await market.library_processes(call.ctx, call.query)


@router.post("/market/collections", body=CollectionCreate, response=CollectionOut, status=201)
async def create_collection(call: Call) -> CollectionOut:
    """Create a collection of my own (`isLibrary: true` publishes to the library: administrators only)."""
    return await market.create_collection(call.ctx, call.body)


@router.put("/market/collections/{collection_id}", body=CollectionUpdate, response=CollectionOut,
            extra_methods=("PATCH",))
async def update_collection(call: Call) -> CollectionOut:
    """Change a collection (its owner, or an administrator)."""
    return await market.update_collection(call.ctx, call.id("collection_id"), call.body)


@router.delete("/market/collections/{collection_id}")
async def delete_collection(call: Call) -> None:
    """Delete a collection (its owner, or an administrator)."""
    await market.delete_collection(call.ctx, call.id("collection_id"))


@router.post("/market/initialize", response=InitOut, auth=False)
async def initialize(call: Call) -> InitOut:
    """Seed the library collections (as /admin/initialize-library; DEBUG or an admin)."""
    return await seed_library(call)
