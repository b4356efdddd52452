"""JSON as the server takes it in and writes it out, REST and WebSocket alike.

In: a number a JavaScript client cannot hold exactly, or a NUL character PostgreSQL refuses to store, is bad
input, refused before anything is written. Both used to be stored (or to fail deep in a query) and then break
every later read of the row.

Out: a response never fails because of what is stored. Rows written before the rule (or by hand) can still hold
an integer orjson cannot write (it stops at 64 bits); those are written exactly by the standard library instead.
"""

from __future__ import annotations

import json
import math
from typing import Any

import orjson

# Number.MAX_SAFE_INTEGER: past it, a browser silently rounds, and PostgreSQL's jsonb hands back an integer that
# no longer fits 64 bits (1e20 comes back as 100000000000000000000).
MAX_SAFE_INTEGER = 2**53 - 1


def problem(value: Any, where: str = "") -> str | None:
    """The first thing in a decoded JSON value the server refuses, as `field: reason`; None when it is fine.

    Walks with a stack, not recursion: orjson accepts nesting deeper than Python's recursion limit."""
    stack: list[tuple[str, Any]] = [(where, value)]
    while stack:
        path, item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return f"{path or 'value'}: may not contain a NUL character"
        elif isinstance(item, bool) or item is None:
            continue
        elif isinstance(item, int):
            if not -MAX_SAFE_INTEGER <= item <= MAX_SAFE_INTEGER:
                return f"{path or 'value'}: number outside ±(2^53-1)"
        elif isinstance(item, float):
            if not math.isfinite(item) or abs(item) > MAX_SAFE_INTEGER:
                return f"{path or 'value'}: number outside ±(2^53-1)"
        elif isinstance(item, dict):
            for key, child in item.items():
                if "\x00" in key:
                    return f"{path or 'value'}: a key may not contain a NUL character"
                stack.append((f"{path}.{key}" if path else str(key), child))
        elif isinstance(item, list):
            stack.extend((f"{path}[{i}]", child) for i, child in enumerate(item))
    return None


def dumps(value: Any) -> bytes:
    """`value` as JSON bytes: orjson on the hot path; the standard library for what orjson cannot write."""
    try:
        return orjson.dumps(value)
    except orjson.JSONEncodeError:
        # An integer past 64 bits, most likely; anything else unwritable (a type nobody should have put in a
        # response) still raises below, as before.
        return json.dumps(_finite(value), ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()


def _finite(value: Any) -> Any:
    # orjson writes NaN and ±inf as null; keep that where the standard library takes over.
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value
