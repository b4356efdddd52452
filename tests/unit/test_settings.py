"""Settings: names of the original kept, embedded default, loud failures on bad or placeholder secrets."""

from __future__ import annotations

from pathlib import Path

import pytest

from server.settings import ConfigError, load_settings, normalize_database_url

GOOD = "k" * 40


def test_embedded_default_is_a_sqlite_file(tmp_path: Path) -> None:
    s = load_settings({"SECRET_KEY": GOOD, "DATA_DIR": str(tmp_path)}, env_file=None)
    assert s.database_url == f"sqlite+aiosqlite:///{tmp_path}/conversme.db"
    assert s.redis_url == "memory://" and s.is_sqlite and not s.debug


def test_postgresql_urls_work_as_written() -> None:
    assert normalize_database_url("postgresql://u@h/db") == "postgresql+asyncpg://u@h/db"
    assert normalize_database_url("postgres://u@h/db") == "postgresql+asyncpg://u@h/db"
    assert normalize_database_url("postgresql+asyncpg://u@h/db") == "postgresql+asyncpg://u@h/db"


@pytest.mark.parametrize("secret", ["", "changeme", "your-secret-key", "short"])
def test_missing_or_placeholder_secret_stops_startup_outside_debug(secret: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        load_settings({"SECRET_KEY": secret, "DATA_DIR": str(tmp_path)}, env_file=None)


def test_debug_generates_a_random_key_once_and_keeps_it(tmp_path: Path) -> None:
    env = {"DEBUG": "true", "DATA_DIR": str(tmp_path)}
    first = load_settings(env, env_file=None).secret_key
    second = load_settings(env, env_file=None).secret_key
    other = load_settings({"DEBUG": "true", "DATA_DIR": str(tmp_path / "other")}, env_file=None).secret_key
    assert first == second and len(first) >= 32 and first != other
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0


def test_env_file_is_read_and_environment_wins(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text(f"# comment\nSECRET_KEY='{GOOD}'\nAPI_PORT=9000\nexport API_HOST=0.0.0.0\n")
    s = load_settings({"API_PORT": "9100", "DATA_DIR": str(tmp_path)}, env_file=env_file)
    assert s.secret_key == GOOD and s.api_port == 9100 and s.api_host == "0.0.0.0"


def test_bad_values_fail_loudly(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="API_PORT"):
        load_settings({"SECRET_KEY": GOOD, "API_PORT": "eighty"}, env_file=None)
    with pytest.raises(ConfigError, match="DEBUG"):
        load_settings({"SECRET_KEY": GOOD, "DEBUG": "maybe"}, env_file=None)
    with pytest.raises(ConfigError, match="ALGORITHM"):
        load_settings({"SECRET_KEY": GOOD, "ALGORITHM": "none"}, env_file=None)
    # Every media URL starts with the prefix: one the link rule refuses would serve them all as null.
    for prefix in ("//cdn.example/uploads", "uploads", "https://cdn.example/uploads", "/up loads"):
        with pytest.raises(ConfigError, match="UPLOAD_URL_PREFIX"):
            load_settings({"SECRET_KEY": GOOD, "UPLOAD_URL_PREFIX": prefix}, env_file=None)
    media = load_settings({"SECRET_KEY": GOOD, "UPLOAD_URL_PREFIX": "/media"}, env_file=None)
    assert media.upload_url_prefix == "/media"


def test_allowed_origins_include_frontend_and_extra(tmp_path: Path) -> None:
    s = load_settings({"SECRET_KEY": GOOD, "FRONTEND_URL": "https://app.example.com/",
                       "CORS_ORIGINS": "https://a.example.com, https://b.example.com"}, env_file=None)
    assert s.allowed_origins == ("https://app.example.com", "https://a.example.com", "https://b.example.com")


def test_env_example_can_be_copied_as_is(tmp_path: Path) -> None:
    """Trailing comments are not part of values, and every documented default loads."""
    example = Path(__file__).resolve().parents[2] / ".env.example"
    env_file = tmp_path / ".env"
    env_file.write_text(example.read_text().replace("SECRET_KEY=", "SECRET_KEY=" + GOOD, 1))
    s = load_settings({"DATA_DIR": str(tmp_path)}, env_file=env_file)
    assert s.api_port == 8000 and s.access_token_expire_minutes == 15 and s.max_upload_bytes == 26214400
    assert s.redis_url == "memory://" and s.openai_api_key == "" and s.frontend_url == "http://localhost:3000"


def test_storage_is_local_by_default_and_a_bucket_by_url(tmp_path: Path) -> None:
    s = load_settings({"SECRET_KEY": GOOD, "DATA_DIR": str(tmp_path)}, env_file=None)
    assert not s.storage.is_bucket and s.storage.upload_dir == tmp_path / "uploads"
    s = load_settings({"SECRET_KEY": GOOD, "STORAGE_URL": "s3://files/prod", "AWS_ENDPOINT_URL": "http://m:9000",
                       "AWS_ACCESS_KEY_ID": "id", "AWS_SECRET_ACCESS_KEY": "key", "AWS_DEFAULT_REGION": "auto",
                       "STORAGE_PRESIGN": "false", "STORAGE_PRESIGN_SECONDS": "60"}, env_file=None)
    cfg = s.storage
    assert cfg.is_bucket and cfg.bucket_and_prefix() == ("files", "prod")
    assert (cfg.endpoint, cfg.access_key_id, cfg.secret_access_key) == ("http://m:9000", "id", "key")
    assert cfg.region == "auto"
    assert not cfg.presign and cfg.presign_seconds == 60
    # The S3-specific endpoint wins over the general one, as in the AWS tools.
    s = load_settings({"SECRET_KEY": GOOD, "STORAGE_URL": "s3://files", "AWS_ENDPOINT_URL": "http://a",
                       "AWS_ENDPOINT_URL_S3": "http://b"}, env_file=None)
    assert s.storage.endpoint == "http://b" and s.storage.bucket_and_prefix() == ("files", "")


@pytest.mark.parametrize(("env", "message"), [
    ({"STORAGE_URL": "gs://bucket"}, "STORAGE_URL"),
    ({"STORAGE_URL": "s3://"}, "STORAGE_URL"),
    ({"STORAGE_URL": "s3://b", "AWS_ACCESS_KEY_ID": "id"}, "go together"),
    ({"STORAGE_PRESIGN_SECONDS": "0"}, "STORAGE_PRESIGN_SECONDS"),
    ({"STORAGE_PRESIGN": "maybe"}, "STORAGE_PRESIGN"),
])
def test_bad_storage_settings_stop_startup(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings({"SECRET_KEY": GOOD, **env}, env_file=None)
