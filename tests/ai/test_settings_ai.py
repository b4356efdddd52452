"""The AI settings are read from the environment with their defaults, and bad values stop the start."""

from __future__ import annotations

from pathlib import Path

import pytest

from server.settings import ConfigError, Settings, load_settings


@pytest.fixture
def base(tmp_path: Path) -> dict[str, str]:
    return {"DEBUG": "true", "DATA_DIR": str(tmp_path)}


def test_defaults_and_overrides(base: dict[str, str]) -> None:
    default = load_settings(base, env_file=None)
    assert default.openai_transcribe_model == "whisper-1"
    assert (default.openai_timeout, default.ai_lease_seconds) == (30.0, 5.0)
    assert default.ai_tokens_per_minute_user == Settings().ai_tokens_per_minute_user == 20_000
    custom = load_settings({**base, "OPENAI_TRANSCRIBE_MODEL": "gpt-4o-mini-transcribe", "OPENAI_TIMEOUT": "2.5",
                            "AI_TOKENS_PER_MINUTE_USER": "0", "AI_TOKENS_PER_MINUTE_SESSION": "500",
                            "AI_CONTEXT_TOKENS": "3000", "AI_MAX_OUTPUT_TOKENS": "200", "AI_LEASE_SECONDS": "1.5",
                            "MAX_AUDIO_BYTES": "1024"}, env_file=None)
    assert custom.openai_transcribe_model == "gpt-4o-mini-transcribe" and custom.openai_timeout == 2.5
    assert (custom.ai_tokens_per_minute_user, custom.ai_tokens_per_minute_session) == (0, 500)
    assert (custom.ai_context_tokens, custom.ai_max_output_tokens, custom.max_audio_bytes) == (3000, 200, 1024)
    assert custom.ai_lease_seconds == 1.5


@pytest.mark.parametrize("key", ["OPENAI_TIMEOUT", "AI_TOKENS_PER_MINUTE_USER", "MAX_AUDIO_BYTES"])
def test_bad_values_stop_the_start(base: dict[str, str], key: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings({**base, key: "lots"}, env_file=None)
    assert key in str(err.value)
