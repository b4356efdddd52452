"""Structured logs: JSON lines with the request id on every one, and no token, password or key in any.

The end-to-end test runs a real `conversme serve` with LOG_FORMAT=json, signs in, makes authenticated
REST and WebSocket calls, and reads everything the process wrote."""

from __future__ import annotations

import io
import json
import logging
import re
import sys
from pathlib import Path

import httpx
import pytest

from channels.client import RealtimeClient
from server.logging import REDACTED, JsonFormatter, RedactingFilter, Redactor, configure, log_config, log_format
from server.middleware import RequestIdFilter, request_id_var
from server.settings import ConfigError, load_settings
from tests.conftest import SECRET
from tests.realtime.harness import ServerProcess, server_env

JWT = ("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwiZXhwIjoxNzAwMDAwMDAwfQ."
       "c2lnbmF0dXJlLXRoYXQtaXMtbG9uZw")


@pytest.mark.parametrize("text, secret", [
    ("headers: {'authorization': 'Bearer abcdefgh12345678'}", "abcdefgh12345678"),
    ("Authorization: Bearer abcdefgh12345678", "abcdefgh12345678"),
    ("(b'authorization', b'Bearer abcdefgh12345678')", "abcdefgh12345678"),
    ("calling with bearer abcdefgh12345678 now", "abcdefgh12345678"),
    ("login form username=a@b.c&password=hunter22hunter", "hunter22hunter"),
    ('{"password": "hunter22hunter", "email": "a@b.c"}', "hunter22hunter"),
    ('{"refreshToken": "r-abcdef0123456789"}', "r-abcdef0123456789"),
    ("refresh_token=r-abcdef0123456789", "r-abcdef0123456789"),
    (f"GET /ws?token={JWT}", JWT),
    (f"decoded {JWT} for user", JWT),
    ("OPENAI_API_KEY=sk-proj-abcdefghijklmnop1234", "sk-proj-abcdefghijklmnop1234"),
    ("openai said: invalid key sk-abcdefghijklmnopqrstuvwx", "sk-abcdefghijklmnopqrstuvwx"),
    ("connect to postgresql://conversme:pg-pass-1234@db:5432/x failed", "pg-pass-1234"),
    ("redis://:redis-pass-1234@cache:6379/0 unreachable", "redis-pass-1234"),
    ("secret_key=abcdefabcdefabcdef", "abcdefabcdefabcdef"),
])
def test_redactor_removes_secret_shapes(text: str, secret: str) -> None:
    out = Redactor()(text)
    assert secret not in out and REDACTED in out, out


def test_redactor_keeps_ordinary_text_and_removes_configured_values() -> None:
    redact = Redactor([SECRET, "short"])
    assert redact("token expired") == "token expired"
    assert redact("GET /events/me 200") == "GET /events/me 200"
    assert redact("password too short") == "password too short"
    assert redact(f"key is {SECRET}!") == f"key is {REDACTED}!"
    assert redact("a short word") == "a short word"  # values under 8 characters are not treated as secrets
    assert redact("postgresql://postgres@127.0.0.1:5432/db") == "postgresql://postgres@127.0.0.1:5432/db"


def _capture(fmt: logging.Formatter, redactor: Redactor | None = None) -> tuple[logging.Logger, io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RequestIdFilter())
    handler.addFilter(RedactingFilter(redactor))
    handler.setFormatter(fmt)
    logger = logging.getLogger(f"test.ship.{id(stream)}")
    logger.handlers = [handler]
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    return logger, stream


def test_json_lines_carry_request_id_extras_and_scrubbed_tracebacks() -> None:
    logger, stream = _capture(JsonFormatter(role="api", instance="i-1"), Redactor([SECRET]))
    token = request_id_var.set("abc123")
    try:
        logger.info("user %s signed in with %s", "ada", f"Bearer {JWT}", extra={"user_id": "u-1"})
        try:
            raise RuntimeError(f"boom with {SECRET} and password=hunter22hunter")
        except RuntimeError:
            logger.exception("failed")
    finally:
        request_id_var.reset(token)
    logger.warning("outside any request")
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    first, second, third = lines
    assert first["request_id"] == "abc123" and first["level"] == "info" and first["role"] == "api"
    assert first["instance"] == "i-1" and first["user_id"] == "u-1"
    assert first["msg"] == f"user ada signed in with Bearer {REDACTED}"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", first["ts"])
    assert second["msg"] == "failed" and "RuntimeError" in second["exc"]
    assert SECRET not in second["exc"] and "hunter22hunter" not in second["exc"]
    assert third["request_id"] == "-"


def test_uvicorn_access_lines_become_fields() -> None:
    logger, stream = _capture(JsonFormatter())
    record = logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
                               ("10.0.0.1:5555", "GET", f"/x?access_token={JWT}", "1.1", 200), None)
    logger.handle(record)
    entry = json.loads(stream.getvalue())
    assert entry["method"] == "GET" and entry["status"] == 200 and entry["client"] == "10.0.0.1:5555"
    assert JWT not in stream.getvalue() and entry["path"] == f"/x?access_token={REDACTED}"


def test_log_format_setting(tmp_path: Path) -> None:
    base = {"SECRET_KEY": SECRET, "DATA_DIR": str(tmp_path)}
    assert log_format(load_settings(base, env_file=None)) == "json"
    assert log_format(load_settings({**base, "DEBUG": "true"}, env_file=None)) == "text"
    assert log_format(load_settings({**base, "DEBUG": "true", "LOG_FORMAT": "JSON"}, env_file=None)) == "json"
    assert log_format(load_settings({**base, "LOG_FORMAT": "text"}, env_file=None)) == "text"
    with pytest.raises(ConfigError, match="LOG_FORMAT"):
        load_settings({**base, "LOG_FORMAT": "xml"}, env_file=None)


def test_configure_routes_uvicorn_into_one_handler(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    settings = load_settings({"SECRET_KEY": SECRET, "DATA_DIR": str(tmp_path), "LOG_FORMAT": "json"}, env_file=None)
    config = log_config(settings, "worker")
    assert config["loggers"]["uvicorn.access"]["propagate"] is True
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        configure(settings, "worker")
        logging.getLogger("uvicorn.error").info("hello %s", SECRET)
        handler = logging.getLogger().handlers[0]
        assert isinstance(handler, logging.StreamHandler) and handler.stream is sys.stderr
        out = capsys.readouterr().err.strip().splitlines()[-1]
        entry = json.loads(out)
        assert entry["msg"] == f"hello {REDACTED}" and entry["role"] == "worker"
    finally:
        root.handlers, _ = saved
        root.setLevel(saved[1])


async def test_a_real_server_logs_json_with_request_ids_and_no_secrets(tmp_path: Path) -> None:
    env = server_env("", "", tmp_path, LOG_FORMAT="json", LOG_LEVEL="info")
    env.pop("DATABASE_URL")
    env.pop("REDIS_URL")
    server = ServerProcess(env).start()
    password = "correct horse battery staple"
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as api:
            r = await api.post("/users", json={"email": "ada@example.com", "password": password, "name": "Ada",
                                               "handle": "ada"})
            assert r.status_code == 201, r.text
            bad = await api.post("/auth/token", data={"username": "ada@example.com", "password": password + "!"})
            assert bad.status_code == 401
            login = await api.post("/auth/token", data={"username": "ada@example.com", "password": password})
            tokens = login.json()
            access, refresh = tokens["accessToken"], tokens["refreshToken"]
            me = await api.get("/users/me", headers={"Authorization": f"Bearer {access}"})
            assert me.status_code == 200
            request_id = me.headers["x-request-id"]
            # A client that puts its token in the URL anyway: the access log must not keep it.
            await api.get(f"/health?token={access}")
            renewed = await api.post("/auth/refresh", json={"refreshToken": refresh})
            assert renewed.status_code == 200
        async with RealtimeClient(server.ws_url, token=access) as client:
            await client.ping()
    finally:
        server.stop()
    text = server.log()
    lines = [line for line in text.splitlines() if line.strip()]
    assert lines, "the server wrote no log"
    entries = [json.loads(line) for line in lines]  # every line is one JSON object
    assert all("request_id" in e and "ts" in e and "level" in e and "msg" in e for e in entries)
    access_lines = [e for e in entries if e["logger"] == "uvicorn.access"]
    assert {e["path"].split("?")[0] for e in access_lines} >= {"/users", "/auth/token", "/users/me", "/auth/refresh"}
    assert all(re.fullmatch(r"[0-9a-f]{32}", e["request_id"]) for e in access_lines)
    assert any(e["request_id"] == request_id and e["path"] == "/users/me" for e in access_lines)
    assert any(e["msg"].startswith(("WebSocket /ws", '127.0.0.1')) or "/ws" in e["msg"] for e in entries)
    for secret in (password, access, refresh, tokens["accessToken"], SECRET):
        assert secret not in text
