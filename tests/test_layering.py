"""Imports point one way (see docs/architecture.md):
server → everything; ai → handlers, adapters, persistence, channels; jobs → handlers, adapters, persistence,
channels; handlers → adapters, persistence, channels.topics/messages; adapters → persistence; channels →
nothing of ours; persistence → nothing above it."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("server", "ai", "channels", "handlers", "adapters", "persistence", "jobs", "migrations")

ALLOWED: dict[str, set[str]] = {
    "server": {"server", "ai", "handlers", "adapters", "channels", "jobs", "persistence", "migrations"},
    "ai": {"ai", "handlers", "adapters", "persistence", "channels"},
    "jobs": {"jobs", "handlers", "adapters", "persistence", "channels"},
    "handlers": {"handlers", "adapters", "persistence", "channels"},
    "adapters": {"adapters", "persistence"},
    "channels": {"channels"},
    "persistence": {"persistence", "migrations"},
    "migrations": {"migrations", "persistence"},
}
# handlers may use only the wire-level parts of channels, never the hub or the connection machinery.
HANDLERS_MAY_USE_CHANNELS = {"channels.topics", "channels.messages"}
# The sans-I/O protocol core and the wire messages import only the standard library and the serializer.
PURE_CHANNELS = {"channels/protocol.py", "channels/messages.py", "channels/topics.py", "channels/wire_json.py"}
PURE_ALLOWED_THIRD_PARTY = {"orjson"}


def _imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
            names.extend(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def _sources() -> list[Path]:
    return [p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")]


def test_imports_point_one_way() -> None:
    violations = []
    for path in _sources():
        layer = path.relative_to(ROOT).parts[0]
        for name in _imports(path):
            top = name.split(".")[0]
            if top in PACKAGES and top not in ALLOWED[layer]:
                violations.append(f"{path.relative_to(ROOT)} imports {name}")
            wire_only = any(name == m or name.startswith(m + ".") for m in HANDLERS_MAY_USE_CHANNELS)
            if layer == "handlers" and top == "channels" and name != "channels" and not wire_only:
                violations.append(f"{path.relative_to(ROOT)} imports {name}")
    assert violations == []


def test_protocol_core_is_pure() -> None:
    import sys

    stdlib = set(sys.stdlib_module_names)
    violations = []
    for rel in PURE_CHANNELS:
        path = ROOT / rel
        if not path.exists():
            continue
        for name in _imports(path):
            top = name.split(".")[0]
            if top not in stdlib and top not in PURE_ALLOWED_THIRD_PARTY and top != "channels" and top != "__future__":
                violations.append(f"{rel} imports {name}")
    assert violations == []


def test_nothing_opens_connections_at_import() -> None:
    """Module level code must not build engines or clients (they belong in the lifespan)."""
    suspicious = ("create_engine(", "create_async_engine(", "Redis.from_url(", "AsyncOpenAI(")
    found = []
    for path in _sources():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in tree.body:
            if isinstance(node, ast.Assign | ast.AnnAssign | ast.Expr):
                segment = ast.get_source_segment(path.read_text(encoding="utf-8"), node) or ""
                if any(s in segment for s in suspicious):
                    found.append(f"{path.relative_to(ROOT)}: {segment[:60]}")
    assert found == []


def test_the_architecture_page_states_the_same_rules() -> None:
    """docs/architecture.md's import table is the layering newcomers read: it must match ALLOWED."""
    documented: dict[str, set[str]] = {}
    for line in (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[0].startswith("`") and cells[0].strip("`") in ALLOWED:
            documented[cells[0].strip("`")] = {name.strip() for name in cells[2].split(",")}
    assert documented == ALLOWED
