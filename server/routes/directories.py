"""REST routes: directories."""

from __future__ import annotations

from handlers.processes import directories
from handlers.processes.directories import (
    DeleteQuery,
    DirectoryChange,
    DirectoryDetail,
    DirectoryIn,
    DirectoryOut,
    DirectoryQuery,
)
from server.routing import ApiRouter, Call

router = ApiRouter("directories")


@router.get("/directories")
async def list_directories(call: Call[None, DirectoryQuery]) -> list[DirectoryOut]:
    """My top-level directories, or the children of `parent_id`."""
    return await directories.list_directories(call.ctx, call.query)


@router.post("/directories", status=201)
async def create_directory(call: Call[DirectoryIn]) -> DirectoryOut:
    """Create a directory (optionally inside one of mine)."""
    return await directories.create_directory(call.ctx, call.body)


@router.get("/directories/{directory_id}")
async def get_directory(call: Call) -> DirectoryDetail:
    """One of my directories with its processes (steps included) and subdirectories."""
    return await directories.get_directory(call.ctx, call.id("directory_id"))


@router.put("/directories/{directory_id}")
async def update_directory(call: Call[DirectoryChange]) -> DirectoryOut:
    """Change a directory (partial); moving it inside itself is refused."""
    return await directories.update_directory(call.ctx, call.id("directory_id"), call.body)


@router.delete("/directories/{directory_id}")
async def delete_directory(call: Call[None, DeleteQuery]) -> None:
    """Delete a directory: processes detached (or moved), subdirectories moved up."""
    await directories.delete_directory(call.ctx, call.id("directory_id"), call.query)
