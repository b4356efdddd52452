"""Each setting is declared once (server/settings.py); reading, `.env.example` and the docs follow from it."""

from __future__ import annotations

import dataclasses
import difflib
import re
from pathlib import Path

import pytest

from server.envconfig import Declared, declared, render
from server.settings import ConfigError, Settings, env_example, load_settings

ROOT = Path(__file__).resolve().parents[2]
GOOD = "k" * 40
SETTINGS = declared(Settings)
BY_ENV = {d.env: d for d in SETTINGS}
ALIASES = {alias: d for d in SETTINGS for alias in d.spec.aliases}


def base(tmp_path: Path) -> dict[str, str]:
    return {"SECRET_KEY": GOOD, "DATA_DIR": str(tmp_path)}


def test_every_field_is_a_declared_setting_with_a_doc() -> None:
    fields = [f.name for f in dataclasses.fields(Settings)]
    assert [d.attr for d in SETTINGS] == fields, "a Settings field without setting(...): it would never be read"
    assert all(d.spec.doc.strip() for d in SETTINGS)


def test_env_example_is_rendered_from_the_declarations() -> None:
    written = (ROOT / ".env.example").read_text(encoding="utf-8")
    expected = env_example()
    diff = "\n".join(difflib.unified_diff(written.splitlines(), expected.splitlines(), ".env.example",
                                          "declared", lineterm=""))
    assert written == expected, f"regenerate: python -m server.settings > .env.example\n{diff}"


def test_env_example_lists_each_setting_once_with_its_default_and_doc() -> None:
    lines = [line for line in (ROOT / ".env.example").read_text().splitlines() if re.match(r"(# )?[A-Z0-9_]+=", line)]
    listed = {}
    for line in lines:
        commented = line.startswith("# ")
        name, _, rest = line.removeprefix("# ").partition("=")
        value, _, doc = rest.partition(" # ")
        assert name not in listed, f"{name} listed twice"
        listed[name] = (commented, value.strip(), doc.strip())
    assert set(listed) == set(BY_ENV), f"extra: {set(listed) - set(BY_ENV)}, missing: {set(BY_ENV) - set(listed)}"
    for name, (commented, value, doc) in listed.items():
        d = BY_ENV[name]
        assert value == render(d.default) and doc.startswith(d.spec.doc), name
        assert commented == bool(d.spec.derived), f"{name}: a derived default is shown commented out, others not"


def test_the_example_copied_as_is_loads_the_declared_defaults(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text((ROOT / ".env.example").read_text().replace("SECRET_KEY=", "SECRET_KEY=" + GOOD, 1))
    loaded = load_settings({"DATA_DIR": "data"}, env_file=env_file)
    defaults = Settings()
    for d in SETTINGS:
        if d.attr != "secret_key":
            assert getattr(loaded, d.attr) == getattr(defaults, d.attr), d.env


@pytest.mark.parametrize("d", [d for d in SETTINGS if not d.spec.derived], ids=lambda d: d.env)
def test_a_declared_default_written_out_reads_back_as_itself(d: Declared, tmp_path: Path) -> None:
    env = {**base(tmp_path), d.env: render(d.default)}
    if d.env == "SECRET_KEY":
        env["DEBUG"] = "true"  # the empty default is refused outside DEBUG
    value = getattr(load_settings(env, env_file=None), d.attr)
    assert value == d.default or d.env in ("SECRET_KEY", "DATA_DIR")
    assert type(value) is type(d.default)


@pytest.mark.parametrize("d", [d for d in SETTINGS if d.kind in (bool, int, float)], ids=lambda d: d.env)
def test_a_value_of_the_wrong_type_stops_startup_naming_the_variable(d: Declared, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=rf"^{d.env} must be .*got 'lots'"):
        load_settings({**base(tmp_path), d.env: "lots"}, env_file=None)


@pytest.mark.parametrize("d", [d for d in SETTINGS if d.spec.low is not None], ids=lambda d: d.env)
def test_a_number_out_of_range_stops_startup(d: Declared, tmp_path: Path) -> None:
    assert d.spec.low is not None
    with pytest.raises(ConfigError, match=rf"^{d.env} must be (at least|between)"):
        load_settings({**base(tmp_path), d.env: str(int(d.spec.low) - 1)}, env_file=None)


@pytest.mark.parametrize("d", [d for d in SETTINGS if d.spec.schemes], ids=lambda d: d.env)
def test_a_url_of_another_kind_stops_startup(d: Declared, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=rf"^{d.env} must be a URL starting with"):
        load_settings({**base(tmp_path), d.env: "ftp://example.com"}, env_file=None)


def test_accepted_forms(tmp_path: Path) -> None:
    for text, flag in (("1", True), ("yes", True), ("ON", True), ("True", True), ("0", False), ("no", False),
                       ("off", False), ("", False)):
        assert load_settings({**base(tmp_path), "AUTO_REPORTS": text}, env_file=None).auto_reports is flag
    s = load_settings({**base(tmp_path), "WS_PUSH_RATE": "2.5", "DB_POOL_TIMEOUT": "7", "API_PORT": " 9000 ",
                       "TRUSTED_PROXIES": "10.0.0.0/8, ,192.168.0.0/16", "LOG_LEVEL": "WARNING",
                       "API_WORKERS": "", "DATABASE_URL": "postgres://u@h/db", "REDIS_URL": "",
                       "AWS_ENDPOINT_URL_S3": "", "AWS_ENDPOINT_URL": "http://minio:9000"}, env_file=None)
    assert (s.ws_push_rate, s.db_pool_timeout, s.api_port) == (2.5, 7.0, 9000)
    assert s.trusted_proxies == ("10.0.0.0/8", "192.168.0.0/16") and s.log_level == "warning"
    assert s.api_workers == 1, "an empty number is unset"
    assert s.database_url == "postgresql+asyncpg://u@h/db" and s.redis_url == s.broker_url == "memory://"
    assert s.aws_endpoint_url_s3 == "http://minio:9000"
    assert s.upload_dir == tmp_path / "uploads" and s.reports_dir == tmp_path / "reports"


@pytest.mark.parametrize(("env", "message"), [
    ({"LOG_LEVEL": "verbose"}, "LOG_LEVEL must be one of critical, error"),
    ({"JOB_TIMEOUT": "200"}, "JOB_TIMEOUT must be shorter than JOB_REDELIVER_SECONDS"),
    ({"DATABASE_URL": "mysql://h/db"}, "DATABASE_URL must be a postgresql:// or sqlite:/// URL"),
    ({"REDIS_URL": "redis.example:6379"}, "REDIS_URL must be a URL starting with memory://"),
    ({"API_WORKERS": "0"}, "API_WORKERS must be at least 1"),
    ({"STORAGE_PRESIGN_SECONDS": "604801"}, "STORAGE_PRESIGN_SECONDS must be between 1 and 604800"),
    ({"WS_AUTH_TIMEOUT": "soon"}, "WS_AUTH_TIMEOUT must be a number of seconds, got 'soon'"),
])
def test_messages_name_the_variable_and_what_it_accepts(env: dict[str, str], message: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings({**base(tmp_path), **env}, env_file=None)
    assert str(err.value).startswith(message)


# ---- the docs that list settings --------------------------------------------------------------------------

DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
NONE = {"none", "empty", "unset", "—", "-"}


def _tables(text: str) -> list[tuple[list[str], list[list[str]]]]:
    tables, rows = [], []
    for line in [*text.splitlines(), ""]:
        if line.startswith("|"):
            rows.append([c.strip() for c in line.strip().strip("|").split("|")])
        elif rows:
            if len(rows) > 2:
                tables.append((rows[0], [r for r in rows[2:]]))
            rows = []
    return tables


def _literal(cell: str) -> str | None:
    """A plain default (`8000`, `true`, `cm:`, none) as .env would write it; None for prose."""
    text = re.sub(r"\s*\(.*\)$", "", cell.strip()).strip("`")  # `empty (OpenAI)`: the part before the brackets
    if text.lower() in NONE:
        return ""
    return text if re.fullmatch(r"[\w.:/@+-]+", text) and "`" not in text else None


def _same(documented: str, d: Declared) -> bool:
    written = render(d.default)
    try:
        return float(documented) == float(written)
    except ValueError:
        return documented == written


def test_settings_tables_in_the_docs_name_declared_settings_with_their_defaults() -> None:
    checked, problems = 0, []
    for path in DOCS:
        for header, rows in _tables(path.read_text(encoding="utf-8")):
            if header[0].lower() not in ("setting", "secret"):
                continue
            has_default = len(header) > 1 and header[1].lower() == "default"
            for row in rows:
                names = re.findall(r"`([A-Z][A-Z0-9_]*\*?)`", row[0])
                where = f"{path.relative_to(ROOT)}: {row[0]}"
                for name in names:
                    found = ([d for d in SETTINGS if d.env.startswith(name[:-1])] if name.endswith("*")
                             else [d for d in (BY_ENV.get(name), ALIASES.get(name)) if d])
                    if not found:
                        problems.append(f"{where}: {name} is not a setting")
                defaults = [c.strip() for c in row[1].split(",")] if has_default else []
                if names and len(defaults) == len(names) and not any(n.endswith("*") for n in names):
                    for name, cell in zip(names, defaults, strict=True):
                        literal = _literal(cell)
                        if literal is not None and name in BY_ENV and not BY_ENV[name].spec.derived:
                            checked += 1
                            if not _same(literal, BY_ENV[name]):
                                problems.append(f"{where}: {name} documented as {cell}, declared "
                                                f"{render(BY_ENV[name].default)!r}")
    assert problems == [], "\n".join(problems)
    assert checked >= 30, "the doc tables' defaults are no longer being compared"
