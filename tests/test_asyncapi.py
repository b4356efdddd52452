"""docs/asyncapi.yaml and docs/realtime.md checked against the code, so neither drifts silently.

What is compared: client and server ops, error codes and `left` reasons (typed Literals in channels.messages,
so mypy refuses any other at the call sites), close codes, limits and their settings, topic kinds and
patterns, the push registry, the published events (handlers.catalogue: names, topic kinds, payload schemas),
the Python models and enums the schemas mirror, and real frames built by channels/ (the sans-I/O protocol and
the memory hub) validated against the document's JSON schemas. The frames shown in the guide (lines
starting with `→ ` or `← `) are validated too.

Pushes marked `x-status: planned` or `reserved` may be absent from the code; `unreachable` pushes must be
registered but refused by the frame parser (a name the contract uses that the parser does not accept)."""

from __future__ import annotations

import dataclasses
import enum
import functools
import importlib
import json
import re
import uuid
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft7Validator
from pydantic import BaseModel
from pydantic.alias_generators import to_camel
from referencing import Registry
from referencing.jsonschema import DRAFT7

from channels import coalesce, topics
from channels import messages as m
from channels.hub import HISTORY_SECONDS, HISTORY_SIZE
from channels.memory_hub import MemoryHub
from channels.protocol import Close, ConnectionProtocol, Limits
from handlers import catalogue, realtime
from handlers.accounts.users import UserBrief
from handlers.events.chat import ChatMessageOut
from handlers.schema import Out
from server.settings import Settings, load_settings

ROOT = Path(__file__).resolve().parent.parent
DOC_PATH = ROOT / "docs" / "asyncapi.yaml"
GUIDE_PATH = ROOT / "docs" / "realtime.md"
BASE = "urn:conversme:asyncapi"
WHERE = "docs/asyncapi.yaml"
OPTIONAL = {"planned", "reserved"}  # x-status values that may be missing from the code
UNREACHABLE = "unreachable"  # a push registered in the server but refused by channels.messages.parse
EVENT_ID = "0b0e3c36-9c1f-4e55-8b59-5f1f3a1c2d10"
TOPIC = f"event:{EVENT_ID}"


# ---- loading and resolving the document ---------------------------------------------------------------


@functools.cache
def doc() -> dict[str, Any]:
    loaded = yaml.safe_load(DOC_PATH.read_text(encoding="utf-8"))
    assert isinstance(loaded, dict), f"{WHERE} is not a mapping"
    return loaded


def pointed(ref: str) -> Any:
    """The node a local `$ref` (`#/a/b`) points at (one step; it may hold a `$ref` itself)."""
    assert ref.startswith("#/"), f"{WHERE}: only local refs are expected, got {ref}"
    node: Any = doc()
    for part in ref[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def deref(node: Any) -> Any:
    """Follow local `$ref`s until a node without one."""
    seen = 0
    while isinstance(node, dict) and "$ref" in node:
        ref = node["$ref"]
        node = pointed(ref)
        seen += 1
        assert seen < 20, f"{WHERE}: $ref loop at {ref}"
    return node


def channel() -> dict[str, Any]:
    socket: dict[str, Any] = doc()["channels"]["socket"]
    return socket


def schemas() -> dict[str, Any]:
    found: dict[str, Any] = doc()["components"]["schemas"]
    return found


def message(name: str) -> dict[str, Any]:
    found: dict[str, Any] = deref(doc()["components"]["messages"][name])
    return found


def validator(pointer: str) -> Draft7Validator:
    registry: Registry[Any] = Registry().with_resource(BASE, DRAFT7.create_resource(doc()))
    return Draft7Validator({"$ref": f"{BASE}#{pointer}"}, registry=registry,
                           format_checker=Draft7Validator.FORMAT_CHECKER)


def problems(pointer: str, instance: Any) -> list[str]:
    return [f"{'/'.join(str(p) for p in e.absolute_path) or '(frame)'}: {e.message}"
            for e in validator(pointer).iter_errors(instance)]


def assert_valid(pointer: str, instance: Any, what: str) -> None:
    found = problems(pointer, instance)
    assert not found, f"{what} does not match {WHERE}{pointer}:\n  " + "\n  ".join(found) + \
        f"\n  frame: {json.dumps(instance)[:400]}"


def payload_pointer(name: str) -> str:
    msg = doc()["components"]["messages"][name]
    if "$ref" in msg:
        return f"{str(msg['$ref'])[1:]}/payload"
    return f"/components/messages/{name}/payload"


def branches(schema: Any) -> list[dict[str, Any]]:
    schema = deref(schema)
    if "oneOf" in schema:
        return [b for part in schema["oneOf"] for b in branches(part)]
    return [schema]


def op_consts(message_name: str) -> set[str]:
    ops = set()
    for branch in branches(message(message_name)["payload"]):
        const = deref(branch.get("properties", {}).get("op", {})).get("const")
        assert isinstance(const, str), f"{WHERE}: message {message_name} has a payload without an `op` const"
        ops.add(const)
    return ops


def declared_keys(message_name: str) -> set[str]:
    return {key for branch in branches(message(message_name)["payload"]) for key in branch.get("properties", {})}


def message_name(node: Any) -> str:
    """The components/messages name behind a (channel) message reference."""
    while isinstance(node, dict) and "$ref" in node:
        ref = node["$ref"]
        if ref.startswith("#/components/messages/"):
            return str(ref.rsplit("/", 1)[1])
        node = pointed(ref)
    raise AssertionError(f"{WHERE}: cannot tell which message {node!r} is")


def operations(action: str) -> Iterator[tuple[str, dict[str, Any]]]:
    for name, op in doc()["operations"].items():
        if op["action"] == action:
            yield name, op


def server_messages() -> set[str]:
    names = {message_name(ref) for _, op in operations("send") for ref in op["messages"]}
    names |= {message_name(ref) for _, op in operations("receive") for ref in op.get("reply", {}).get("messages", [])}
    return names


def client_messages() -> set[str]:
    return {message_name(ref) for _, op in operations("receive") for ref in op["messages"]}


def entries(items: list[dict[str, Any]], allowed: set[str]) -> dict[str | None, list[dict[str, Any]]]:
    """Entries by x-status (None: served today)."""
    out: dict[str | None, list[dict[str, Any]]] = {None: [], **{status: [] for status in allowed}}
    for item in items:
        status = item.get("x-status")
        name = item.get("name") or item.get("event")
        assert status is None or status in allowed, f"{WHERE}: x-status {status!r} of {name} is not one of " \
                                                    f"{sorted(allowed)}"
        out[status].append(item)
    return out


def pushes() -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = message("push")["x-pushes"]
    return found


def events() -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = message("msg")["x-events"]
    return found


# ---- ops and frames -------------------------------------------------------------------------------------


def test_document_is_asyncapi_3_with_the_socket_channel() -> None:
    assert str(doc()["asyncapi"]).startswith("3."), f"{WHERE} must be an AsyncAPI 3 document"
    assert channel()["address"] == "/ws"
    assert doc()["info"]["version"] == "1"
    assert m.SUBPROTOCOL == "conversme.v1"
    for name in doc()["components"]["messages"]:
        Draft7Validator.check_schema(deref(message(name)["payload"]))


def test_client_ops_are_the_code_ops() -> None:
    documented = set().union(*(op_consts(n) for n in client_messages()))
    assert documented == set(m.CLIENT_OPS), (
        f"client ops: documented {sorted(documented)}, channels.messages.CLIENT_OPS {sorted(m.CLIENT_OPS)}; "
        f"missing from {WHERE}: {sorted(set(m.CLIENT_OPS) - documented)}, "
        f"not in the code: {sorted(documented - set(m.CLIENT_OPS))}")


def test_server_ops_are_the_code_ops() -> None:
    documented = set().union(*(op_consts(n) for n in server_messages()))
    assert documented == set(m.SERVER_OPS), (
        f"server ops: documented {sorted(documented)}, channels.messages.SERVER_OPS {sorted(m.SERVER_OPS)}; "
        f"missing from {WHERE}: {sorted(set(m.SERVER_OPS) - documented)}, "
        f"not in the code: {sorted(documented - set(m.SERVER_OPS))}")


def test_error_codes_and_left_reasons() -> None:
    """Every code or reason the server passes is typed `channels.messages.ErrorCode` / `LeftReason` (mypy
    refuses any other), so documenting those two lists documents everything the code can emit."""
    for schema, code in (("ErrorCode", m.ERROR_CODES), ("LeftReason", m.LEFT_REASONS)):
        documented = schemas()[schema]
        assert documented["enum"] == list(code), f"{schema} in {WHERE}: {documented['enum']}, channels.messages: {code}"
        assert set(documented["x-descriptions"]) == set(code), f"every {schema} needs one x-descriptions entry"


def test_close_codes() -> None:
    code = {name: value for name, value in vars(Close).items() if name.isupper() and isinstance(value, int)}
    documented = {c["name"]: c["code"] for c in channel()["x-close-codes"]}
    assert documented == code, f"x-close-codes in {WHERE} {documented} != channels.protocol.Close {code}"
    for item in channel()["x-close-codes"]:
        assert item.get("meaning") and item.get("client"), f"close code {item['code']} needs meaning and client"
    from channels.client import FINAL_CODES
    assert set(code.values()) >= FINAL_CODES, "the Python client treats an undocumented close code as final"


def test_limits_and_their_settings() -> None:
    defaults = Settings()
    expected: dict[str, Any] = {f.name: getattr(Limits(), f.name) for f in dataclasses.fields(Limits)}
    expected |= {"ws_heartbeat_timeout": defaults.ws_heartbeat_timeout,
                 "ws_max_queue_bytes": defaults.ws_max_queue_bytes,
                 "history_size": HISTORY_SIZE, "history_seconds": HISTORY_SECONDS}
    assert defaults.ws_auth_timeout == Limits().auth_timeout and defaults.ws_heartbeat == Limits().heartbeat, \
        "server settings and protocol Limits disagree on a default"
    documented = {name: item["value"] for name, item in channel()["x-limits"].items()}
    assert documented == expected, f"x-limits in {WHERE}: {documented}\n  code defaults: {expected}"
    for name, item in channel()["x-limits"].items():
        if "setting" in item:
            attr = item["setting"].lower()
            assert getattr(defaults, attr) == item["value"], \
                f"x-limits {name}: {item['setting']} defaults to {getattr(defaults, attr)}, documented {item['value']}"
            loaded = load_settings({"SECRET_KEY": "k" * 48, item["setting"]: "7"}, env_file=None)
            assert getattr(loaded, attr) == 7, f"x-limits {name}: setting {item['setting']} is not read"


def test_topics() -> None:
    kinds = {name[4:] for name in dir(topics) if name.startswith("for_")}
    documented = {t["kind"] for t in channel()["x-topics"]}
    assert documented == kinds, f"x-topics in {WHERE}: {sorted(documented)}, channels.topics: {sorted(kinds)}"
    pattern = re.compile(schemas()["Topic"]["pattern"])
    samples = [f"{k}:{uuid.uuid4()}" for k in kinds] + [f"event:{str(uuid.uuid4()).upper()}"]
    bad = [f"room:{uuid.uuid4()}", "event:123", f"event:{uuid.uuid4()}x", "event"]
    for text in samples + bad:
        assert bool(pattern.match(text)) == bool(m.TOPIC_RE.match(text)), f"Topic pattern and TOPIC_RE disagree: {text}"
    assert all(pattern.match(t) for t in samples) and not any(pattern.match(t) for t in bad)
    assert schemas()["EventName"]["pattern"] == m.EVENT_RE.pattern, "EventName pattern != channels.messages.EVENT_RE"
    assert schemas()["Ref"]["maxLength"] == m.MAX_REF


# ---- pushes and published events ----------------------------------------------------------------------


def _parses(kind: str, event: str) -> str | None:
    """None when channels.messages.parse accepts a push of `event`, else its complaint."""
    frame = json.dumps({"op": "push", "ref": "1", "topic": f"{kind}:{uuid.uuid4()}", "event": event, "data": {}})
    try:
        m.parse(frame)
    except m.FrameError as exc:
        return exc.message
    return None


def test_pushes_are_the_push_registry() -> None:
    status = entries(pushes(), OPTIONAL | {UNREACHABLE})
    served, unreachable = status[None], status[UNREACHABLE]
    optional = [p for s in OPTIONAL for p in status[s]]
    in_code = set(realtime.PUSHES)
    documented = {(p["topicKind"], p["event"]) for p in served + unreachable}
    everything = documented | {(p["topicKind"], p["event"]) for p in optional}
    missing = in_code - everything
    assert not missing, f"pushes in handlers.realtime.PUSHES missing from x-pushes in {WHERE}: " \
                        f"{sorted(f'{k} {e}' for k, e in missing)}"
    stale = documented - in_code
    assert not stale, f"pushes documented as served but not in handlers.realtime.PUSHES: " \
                      f"{sorted(f'{k} {e}' for k, e in stale)} (mark them x-status: planned, or remove them)"
    for kind, event in sorted(in_code & {(p["topicKind"], p["event"]) for p in optional}):
        warnings.warn(f"push {kind} {event} is served now: drop its x-status in {WHERE}", stacklevel=1)
    names = {p["event"] for p in pushes()}
    assert set(schemas()["PushEventName"]["enum"]) == names, "PushEventName enum != the events in x-pushes"
    published_names = {e["name"] for e in events()}
    for p in pushes():
        assert set(p["publishes"]) <= published_names, f"push {p['event']} publishes undocumented events"
        complaint = _parses(p["topicKind"], p["event"])
        if p in served:
            assert complaint is None, f"push {p['event']!r} is refused by channels.messages.parse: {complaint}"
        elif p in unreachable:
            assert complaint is not None, f"push {p['event']!r} is accepted by the frame parser now: drop its " \
                                          f"`x-status: unreachable` in {WHERE} (and its note in docs/realtime.md)"
        elif complaint is not None:
            warnings.warn(f"planned push {p['event']!r} would be refused by the frame parser: {complaint}",
                          stacklevel=1)


def _refs(data: Any) -> set[str]:
    """The components/schemas an x-events `data` refers to (directly or through oneOf)."""
    if "$ref" in data:
        return {str(data["$ref"]).rsplit("/", 1)[1]}
    return {name for part in data["oneOf"] for name in _refs(part)}


def _schema_of(payload: type, path: str) -> str:
    """A model's schema names it in x-python; a TypedDict payload's schema has its name and keys."""
    if issubclass(payload, BaseModel):
        found = [name for name, s in schemas().items() if s.get("x-python") == path]
        assert len(found) == 1, f"{len(found)} schemas in {WHERE} have x-python: {path}"
        return found[0]
    schema = schemas()[payload.__name__]
    required = payload.__required_keys__  # type: ignore[attr-defined]
    assert set(schema["properties"]) == set(payload.__annotations__), f"{payload.__name__}: {WHERE} vs {path}"
    assert set(schema.get("required", [])) == set(required), f"{payload.__name__}.required: {WHERE} vs {path}"
    return payload.__name__


def test_the_catalogue_is_the_published_events() -> None:
    """Publishers name events only through handlers.catalogue, so the catalogue is what the server publishes:
    x-events must list exactly its entries, with the same topic kinds and payload schemas."""
    documented = {e["name"]: e for e in events()}
    assert len(documented) == len(events()), f"x-events in {WHERE} lists a name twice"
    assert set(documented) == set(catalogue.EVENTS), (
        f"x-events in {WHERE} vs handlers.catalogue: missing {sorted(set(catalogue.EVENTS) - set(documented))}, "
        f"not in the catalogue {sorted(set(documented) - set(catalogue.EVENTS))}")
    assert set(schemas()["PublishedEventName"]["enum"]) == set(documented), "PublishedEventName enum != x-events"
    for name, entry in catalogue.EVENTS.items():
        assert m.EVENT_RE.match(name), f"event name {name} is not noun.verb"
        assert set(documented[name]["topicKinds"]) == set(entry.kinds), f"{name}: topic kinds differ"
        found = {_schema_of(t, path) for t, path in zip(entry.payload_types(), entry.payload, strict=True)}
        assert found == _refs(documented[name]["data"]), f"{name}: payload {entry.payload} vs {WHERE} {found}"
        for schema in found:
            assert set(schemas()[schema].get("x-python-exclude", [])) == entry.exclude, f"{name}: exclude"


def test_every_catalogue_entry_is_used_and_typed() -> None:
    """An entry nobody publishes would be documented for nothing; its `Event[...]` annotation (what mypy checks
    publishers against) must name the payload classes it lists."""
    sources = "\n".join(p.read_text(encoding="utf-8") for pkg in ("handlers", "jobs", "server", "ai")
                        for p in (ROOT / pkg).rglob("*.py") if p.name != "catalogue.py")
    for const, entry in vars(catalogue).items():
        if isinstance(entry, catalogue.Event):
            assert re.search(rf"\b{const}\b", sources), f"nothing publishes catalogue.{const}"
            annotated = set(re.findall(r"\w+", catalogue.__annotations__[const])) - {"Event"}
            assert annotated == {path.rsplit(".", 1)[1] for path in entry.payload}, const
    assert catalogue.AI_DELTA.name == coalesce.DELTA
    assert {e.name for e in (catalogue.AI_COMPLETED, catalogue.AI_ERROR, catalogue.AI_CANCELLED)} == coalesce.TERMINAL


# ---- schemas mirror the Python models and enums --------------------------------------------------------


def _json_types(schema: Any, defs: dict[str, Any]) -> set[str]:
    if not isinstance(schema, dict):
        return {"any"}
    if "$ref" in schema:
        ref = schema["$ref"]
        return _json_types(defs[ref.rsplit("/", 1)[1]] if ref.startswith("#/$defs/") else deref(schema), defs)
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return set().union(*(_json_types(s, defs) for s in schema[key]))
    if "const" in schema:
        return {_type_of(schema["const"])}
    if "enum" in schema and "type" not in schema:
        return {_type_of(v) for v in schema["enum"]}
    kind = schema.get("type")
    if kind is None:
        return {"any"}
    return {kind} if isinstance(kind, str) else set(kind)


def _type_of(value: Any) -> str:
    return {bool: "boolean", int: "integer", float: "number", str: "string", type(None): "null"}.get(
        type(value), "object")


def test_schemas_mirror_their_python_models() -> None:
    checked = 0
    for name, schema in schemas().items():
        target = schema.get("x-python")
        if target is None:
            continue
        module, _, attr = target.rpartition(".")
        obj = getattr(importlib.import_module(module), attr)
        checked += 1
        if isinstance(obj, type) and issubclass(obj, enum.Enum):
            assert schema["enum"] == [e.value for e in obj], f"{name}.enum in {WHERE} != {target}"
            continue
        assert isinstance(obj, type) and issubclass(obj, BaseModel), f"{name}: x-python {target} is not a model"
        excluded = set(schema.get("x-python-exclude", []))
        props = schema["properties"]
        if issubclass(obj, Out):
            model = obj.model_json_schema(by_alias=True, mode="serialization")
            produced = {k: v for k, v in model["properties"].items() if k not in excluded}
            assert set(props) == set(produced), (
                f"{name} in {WHERE} vs {target}: missing {sorted(set(produced) - set(props))}, "
                f"extra {sorted(set(props) - set(produced))}")
            for key, spec in produced.items():
                want, have = _json_types(spec, model.get("$defs", {})), _json_types(props[key], {})
                if "any" not in want | have:
                    assert want == have, f"{name}.{key} in {WHERE} allows {sorted(have)}, {target} {sorted(want)}"
        else:
            accepted = {to_camel(f) for f in obj.model_fields if f not in excluded}
            assert set(props) == accepted, (
                f"{name} in {WHERE} vs {target} input fields: missing {sorted(accepted - set(props))}, "
                f"extra {sorted(set(props) - accepted)}")
    assert checked >= 20


def test_presence_meta_is_the_user_brief() -> None:
    meta = schemas()["PresenceMeta"]
    assert set(meta["properties"]) == set(UserBrief.model_json_schema(by_alias=True)["properties"])


# ---- real frames against the schemas ------------------------------------------------------------------


def _frames(proto: ConnectionProtocol) -> list[dict[str, Any]]:
    return [json.loads(text) for text in proto.data_to_send()]


def _check(frame: dict[str, Any], name: str) -> None:
    assert_valid(payload_pointer(name), frame, f"a real `{frame.get('op')}` frame ({name})")
    undeclared = set(frame) - declared_keys(name)
    assert not undeclared, f"a real {name} frame has keys {sorted(undeclared)} that {WHERE} does not declare"
    if isinstance(frame.get("error"), dict):
        assert set(frame["error"]) <= set(schemas()["Error"]["properties"])


def _brief() -> dict[str, Any]:
    return UserBrief(id=uuid.uuid4(), name="Ada", handle="ada", profile_image=None).model_dump(mode="json")


def _chat() -> ChatMessageOut:
    return ChatMessageOut(id=uuid.uuid4(), event_id=uuid.UUID(EVENT_ID), author_id=uuid.uuid4(), author=None,
                          text="hello", created_at=datetime.now(UTC))


def test_frames_of_the_protocol_match_the_document() -> None:
    proto = ConnectionProtocol(Limits(), now=0.0)
    proto.receive_text('{"op":"auth","ref":"1","token":"t"}', now=0.0)
    [auth] = proto.commands()
    proto.auth_ok(auth.ref, str(uuid.uuid4()), uuid.uuid4().hex, expires_at=900.0)
    [reply] = _frames(proto)
    _check(reply, "authReply")

    proto.receive_text('{"op":"refresh","ref":"r","token":"t2"}', now=1.0)
    [refresh] = proto.commands()
    proto.refresh_ok(refresh.ref, 1800.0)
    proto.refresh_failed("r2", "token expired")
    ok, failed = _frames(proto)
    _check(ok, "refreshReply")
    _check(failed, "refreshReply")

    since = {"epoch": "e", "offset": 3}
    proto.receive_text(json.dumps({"op": "join", "ref": "2", "topic": TOPIC, "since": since}), 2.0)
    [join] = proto.commands()
    assert isinstance(join, m.Join)
    user = _brief()
    proto.join_ok(join.ref, join.topic, {"epoch": "6f1c2a9e0d4b7a13", "offset": 3, "recovered": True,
                                         "presence": {user["id"]: user}})
    other = f"live:{uuid.uuid4()}"
    proto.receive_text(json.dumps({"op": "join", "ref": "3", "topic": other}), 2.0)
    proto.commands()
    proto.join_failed("3", other, "not_found", "live context not found")
    joined, refused = _frames(proto)
    _check(joined, "joinReply")
    _check(refused, "joinReply")

    proto.receive_text(json.dumps({"op": "push", "ref": "4", "topic": TOPIC, "event": "chat.send",
                                   "data": {"text": "hi"}}), 3.0)
    [push] = proto.commands()
    proto.push_ok(push.ref, realtime.reply_data(_chat()))
    proto.push_failed("5", "invalid", "text: field required")
    pushed, push_failed = _frames(proto)
    _check(pushed, "pushReply")
    _check(push_failed, "pushReply")
    assert_valid("/components/schemas/ChatMessageOut", pushed["data"], "a chat.send reply's data")

    proto.receive_text('{"op":"ping","ref":"6"}', 4.0)
    proto.receive_text('{"op":"ping"}', 4.0)
    for frame in _frames(proto):
        _check(frame, "pong")

    proto.receive_text("not json", 5.0)
    proto.receive_text('{"op":"subscribe","ref":"7"}', 5.0)
    proto.receive_text(json.dumps({"op": "push", "ref": "8", "topic": f"user:{uuid.uuid4()}", "event": "x.y"}), 5.0)
    proto.receive_bytes(b"\x00", 5.0)
    bad, unknown, not_joined, binary = _frames(proto)
    _check(bad, "error")
    _check(binary, "error")
    assert (unknown["error"]["code"], not_joined["error"]["code"]) == ("unknown_op", "not_joined")
    for frame in (unknown, not_joined):
        assert any(not problems(payload_pointer(n), frame) for n in server_messages() if n.endswith("Reply"))

    proto.receive_text(json.dumps({"op": "leave", "ref": "9", "topic": TOPIC}), 6.0)
    proto.commands()
    [left_reply] = _frames(proto)
    _check(left_reply, "leaveReply")

    for reason in m.LEFT_REASONS:
        proto.receive_text(json.dumps({"op": "join", "ref": "j", "topic": TOPIC}), 7.0)
        proto.commands()
        proto.join_ok("j", TOPIC, {"epoch": "e", "offset": 0, "recovered": False, "presence": {}})
        proto.removed(TOPIC, reason)
        frames = _frames(proto)
        _check(frames[-1], "left")


def test_every_error_code_fits_both_error_frames() -> None:
    for code in m.ERROR_CODES:
        _check(json.loads(m.reply_error("1", code, "text")), "joinReply")
        _check(json.loads(m.reply_error("1", code, "text")), "pushReply")
        _check(json.loads(m.error(code, "text")), "error")


class _Recorder:
    def __init__(self) -> None:
        self.user_id = "u1"
        self.frames: list[dict[str, Any]] = []

    def on_msg(self, topic: str, offset: int, frame: str) -> None:
        self.frames.append(json.loads(frame))

    def on_presence(self, topic: str, frame: str) -> None:
        self.frames.append(json.loads(frame))

    def on_removed(self, topic: str, user_id: str, reason: str) -> None:
        pass

    def on_resync(self, topic: str) -> None:
        pass


async def test_frames_of_the_hub_match_the_document() -> None:
    hub = MemoryHub()
    recorder = _Recorder()
    await hub.subscribe(TOPIC, recorder)
    chat = _chat().model_dump(mode="json", by_alias=True)
    await hub.publish(TOPIC, "chat.message", chat)
    user = _brief()
    await hub.track(TOPIC, "c1", user["id"], user)
    await hub.untrack(TOPIC, "c1", user["id"])
    msg, joined, gone = recorder.frames
    _check(msg, "msg")
    _check(joined, "presence")
    _check(gone, "presence")
    entry = next(e for e in events() if e["name"] == "chat.message")
    assert_valid(f"/components/schemas/{entry['data']['$ref'].rsplit('/', 1)[1]}", msg["data"], "chat.message data")


def test_examples_in_the_document_are_valid_frames() -> None:
    client = client_messages()
    for name, raw in doc()["components"]["messages"].items():
        for example in message(name).get("examples", []):
            assert_valid(payload_pointer(name), example["payload"], f"example {example['name']} of {name}")
            if name in client:
                command = m.parse(json.dumps(example["payload"]))
                assert type(command).__name__.lower() == example["payload"]["op"], f"example {example['name']}"
        del raw


# ---- the guide's frames -------------------------------------------------------------------------------

FRAME_LINE = re.compile(r"^\s*(?://\s*)?(→|←) (\{.*\})\s*$")


def guide_frames() -> list[tuple[int, str, str]]:
    found = []
    for number, line in enumerate(GUIDE_PATH.read_text(encoding="utf-8").splitlines(), start=1):
        match = FRAME_LINE.match(line)
        if match:
            found.append((number, match.group(1), match.group(2)))
    return found


def test_frames_shown_in_the_guide_are_valid() -> None:
    frames = guide_frames()
    assert len(frames) >= 15, "docs/realtime.md should show its example frames as `→ {…}` / `← {…}` lines"
    by_op_client = {op: n for n in client_messages() for op in op_consts(n)}
    server = server_messages()
    failures = []
    for number, arrow, text in frames:
        frame = json.loads(text)
        where = f"docs/realtime.md:{number}"
        if arrow == "→":
            name = by_op_client.get(frame.get("op"))
            if name is None:
                failures.append(f"{where}: unknown client op {frame.get('op')!r}")
                continue
            m.parse(text)
            found = problems(payload_pointer(name), frame)
            failures += [f"{where}: {p}" for p in found]
        else:
            candidates = [n for n in server if frame.get("op") in op_consts(n)]
            if not any(not problems(payload_pointer(n), frame) for n in candidates):
                failures.append(f"{where}: matches no server message with op {frame.get('op')!r}")
            if frame.get("op") == "msg":
                entry = next((e for e in events() if e["name"] == frame["event"]), None)
                if entry is None:
                    failures.append(f"{where}: event {frame['event']} is not in x-events")
                elif "$ref" in entry["data"]:
                    failures += [f"{where}: data: {p}" for p in problems(entry["data"]["$ref"][1:], frame["data"])]
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("name", ["docs/realtime.md", "docs/asyncapi.yaml"])
def test_readme_links_the_docs(name: str) -> None:
    assert name in (ROOT / "README.md").read_text(encoding="utf-8"), f"README.md should link {name}"
