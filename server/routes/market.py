"""REST routes: market — the public library and my own collections and saved copies."""

from __future__ import annotations

from handlers.market import collections as market
from handlers.market.collections import CollectionCreate, CollectionUpdate, MarketQuery
from handlers.market.shapes import CollectionOut, LibDirectoryOut, LibProcessOut
from handlers.schema import PageQuery
from server.routes.admin import InitOut, seed_library
from server.routing import ApiRouter, Call

router = ApiRouter("market")


@router.get("/market/collections")
async def list_collections(call: Call[None, MarketQuery]) -> list[CollectionOut]:
    """Library collections (`isLibrary: true`) followed by my own collections and saved copies (`sourceId`)."""
    return await market.list_collections(call.ctx, call.query)


@router.get("/market/collections/{collection_id}")
async def get_collection(call: Call) -> CollectionOut:
    """One collection: a library one, or one of mine."""
    return await market.get_collection(call.ctx, call.id("collection_id"))


@router.get("/market/collections/{collection_id}/directories")
async def collection_directories(call: Call) -> list[LibDirectoryOut]:
    """A collection's directories with their template processes."""
    return await market.collection_directories(call.ctx, call.id("collection_id"))


@router.post("/market/collections/{collection_id}/save")
async def save_collection(call: Call) -> CollectionOut:
    """Copy a library collection into my workspace (saving again returns the same copy)."""
    return await market.save_collection(call.ctx, call.id("collection_id"))


@router.get("/market/directories")
async def library_directories(call: Call[None, PageQuery]) -> list[LibDirectoryOut]:
    """The library's directories with their template processes."""
    return await market.library_directories(call.ctx, call.query)


@router.get("/market/processes")
async def library_processes(call: Call[None, MarketQuery]) -> list[LibProcessOut]:
    """The library's template processes, optionally of one `category`."""
    return await market.library_processes(call.ctx, call.query)


@router.post("/market/collections", status=201)
async def create_collection(call: Call[CollectionCreate]) -> CollectionOut:
    """Create a collection of my own (`isLibrary: true` publishes to the library: administrators only)."""
    return await market.create_collection(call.ctx, call.body)


@router.put("/market/collections/{collection_id}",
            extra_methods=("PATCH",))
async def update_collection(call: Call[CollectionUpdate]) -> CollectionOut:
    """Change a collection (its owner, or an administrator)."""
    return await market.update_collection(call.ctx, call.id("collection_id"), call.body)


@router.delete("/market/collections/{collection_id}")
async def delete_collection(call: Call) -> None:
    """Delete a collection (its owner, or an administrator)."""
    await market.delete_collection(call.ctx, call.id("collection_id"))


@router.post("/market/initialize", auth=False)
async def initialize(call: Call) -> InitOut:
    """Seed the library collections (as /admin/initialize-library; DEBUG or an admin)."""
    return await seed_library(call)
