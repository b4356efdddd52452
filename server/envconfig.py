"""Settings declared once as dataclass fields (`setting(default, doc)`), read from an environment by their type.

The field is the declaration: its name gives the variable (`api_port` → `API_PORT`), its annotation the parsing
(bool, int, float, str, Path, tuple[str, ...]), its default the value when the variable is unset, and the metadata
the doc and the checks. `.env.example` is rendered from the same fields (`render_env_file`)."""

from __future__ import annotations

import dataclasses
import re
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")
Value = bool | int | float | str | Path | tuple[str, ...]


class ConfigError(Exception):
    """A setting is missing or invalid; start-up stops with this message."""


@dataclass(frozen=True)
class Spec:
    """What a field declares besides its name, type and default."""

    doc: str
    group: str
    aliases: tuple[str, ...] = ()  # read when the variable itself is unset or empty (as the AWS tools do)
    choices: tuple[str, ...] = ()  # the accepted values (compared case-insensitively when `fold` is set)
    fold: bool = False  # strip and lower-case a text value before it is checked and kept
    low: float | None = None  # numbers: the smallest accepted value
    high: float | None = None  # numbers: the largest accepted value
    unit: str = ""  # numbers: what they count ("seconds"), named in the error message
    schemes: tuple[str, ...] = ()  # text: a non-empty value must start with one of these
    derived: str = ""  # the default depends on other settings: said here, and `.env.example` leaves it unset


def setting(default: T, doc: str, *, group: str, aliases: tuple[str, ...] = (), choices: tuple[str, ...] = (),
            fold: bool = False, low: float | None = None, high: float | None = None, unit: str = "",
            schemes: tuple[str, ...] = (), derived: str = "") -> T:
    """A settings field: `api_port: int = setting(8000, "port it listens on", group="server")`."""
    spec = Spec(doc=doc, group=group, aliases=aliases, choices=choices, fold=fold, low=low, high=high, unit=unit,
                schemes=schemes, derived=derived)
    made: T = field(default=default, metadata={"setting": spec})
    return made


@dataclass(frozen=True)
class Declared:
    """One setting as declared: its attribute, variable, type, default and spec."""

    attr: str
    env: str
    kind: type
    default: Value
    spec: Spec


def declared(cls: type) -> list[Declared]:
    """The settings fields of `cls`, in declaration order."""
    hints = typing.get_type_hints(cls)
    found = []
    for f in dataclasses.fields(cls):
        spec = f.metadata.get("setting")
        if isinstance(spec, Spec):
            kind = hints[f.name]
            origin = typing.get_origin(kind)
            found.append(Declared(f.name, f.name.upper(), origin or kind, f.default, spec))  # type: ignore[arg-type]
    return found


# ---- reading a value ----------------------------------------------------------------------------------------

TRUE = frozenset({"1", "true", "yes", "on"})
FALSE = frozenset({"0", "false", "no", "off", ""})  # empty: off (a blank `KEY=` line switches a flag off)


def parse_bool(name: str, value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in TRUE:
        return True
    if lowered in FALSE:
        return False
    raise ConfigError(f"{name} must be true or false (also 1/0, yes/no, on/off), got {value!r}")


def _number(d: Declared, raw: str) -> int | float:
    what = "a whole number" if d.kind is int else "a number"
    if d.spec.unit:
        what += f" of {d.spec.unit}"
    try:
        number: int | float = int(raw) if d.kind is int else float(raw)
    except ValueError:
        raise ConfigError(f"{d.env} must be {what}, got {raw!r}") from None
    low, high = d.spec.low, d.spec.high
    if (low is not None and number < low) or (high is not None and number > high):
        span = (f"between {low:g} and {high:g}" if low is not None and high is not None
                else f"at least {low:g}" if low is not None else f"at most {high:g}")
        raise ConfigError(f"{d.env} must be {span}, got {raw!r}")
    return number


def _text(d: Declared, raw: str) -> str:
    value = raw.strip().lower() if d.spec.fold else raw
    if d.spec.choices and value not in d.spec.choices:
        shown = ", ".join(c or "empty" for c in d.spec.choices)
        raise ConfigError(f"{d.env} must be one of {shown}, got {raw!r}")
    if d.spec.schemes and value.strip() and not value.strip().startswith(d.spec.schemes):
        raise ConfigError(f"{d.env} must be a URL starting with {' or '.join(d.spec.schemes)}, got {raw!r}")
    return value.strip() if d.spec.schemes else value


def parse(d: Declared, raw: str) -> Value:
    """`raw` as the declared type; a ConfigError naming the variable when it is not one."""
    if d.kind is bool:
        return parse_bool(d.env, raw)
    if d.kind in (int, float):
        return _number(d, raw)
    if d.kind is tuple:
        return tuple(part.strip() for part in raw.split(",") if part.strip())
    if d.kind is Path:
        return Path(raw.strip())
    return _text(d, raw)


def raw_value(d: Declared, env: Mapping[str, str]) -> str | None:
    """The variable's text, or an alias's; None when unset. Numbers and paths treat an empty value as unset."""
    for name in (d.env, *d.spec.aliases):
        raw = env.get(name)
        if raw is None or (not raw.strip() and (d.spec.aliases or d.kind in (int, float, Path))):
            continue
        return raw
    return None


def read(cls: type[T], env: Mapping[str, str], *, resolve: Callable[[Mapping[str, str], dict[str, Value]], None]
         ) -> T:
    """Every declared field of `cls` from `env` (unset: the default), then `resolve` (the checks and defaults that
    involve several settings), then the object."""
    values: dict[str, Value] = {}
    for d in declared(cls):
        raw = raw_value(d, env)
        values[d.attr] = d.default if raw is None else parse(d, raw)
    resolve(env, values)
    return cls(**values)


# ---- .env files ---------------------------------------------------------------------------------------------


def read_env_file(path: Path) -> dict[str, str]:
    """Parse a `.env` file: KEY=VALUE lines, `#` comments, optional quotes."""
    values: dict[str, str] = {}
    if not path.is_file():
        return values
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        key = key.strip().removeprefix("export ").strip()
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        else:
            # An unquoted value ends at ` #`: `.env.example` documents each setting on its own line.
            value = re.split(r"\s+#", value, maxsplit=1)[0].strip() if not value.startswith("#") else ""
        values[key] = value
    return values


def render(value: Value) -> str:
    """A default as it is written in a `.env` file."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, tuple):
        return ",".join(value)
    return str(value)


def render_env_file(cls: type, header: str, groups: Mapping[str, str]) -> str:
    """`.env.example`: every setting with its default and doc, in declaration order, under its group's title.
    A setting whose default is derived from others is shown commented out, so a copy leaves it derived."""
    lines = header.rstrip("\n").splitlines()
    group = None
    for d in declared(cls):
        if d.spec.group != group:
            group = d.spec.group
            lines += ["", f"# --- {groups[group]} ---"]
        assignment = f"{'# ' if d.spec.derived else ''}{d.env}={render(d.default)}"
        doc = d.spec.doc + (f" (unset: {d.spec.derived})" if d.spec.derived else "")
        lines.append(f"{assignment:<29} # {doc}")
    return "\n".join(lines) + "\n"
