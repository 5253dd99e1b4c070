import stat

import pytest
from pydantic import SecretStr, ValidationError

from orchestrator.auth import Role, Tokens, load_tokens
from orchestrator.config import OrchestratorSettings
from sandbox.errors import FailedPreconditionError


def test_tokens_are_generated_once_and_kept_private(tmp_path):
    first = load_tokens(tmp_path, user=None, admin=None)
    assert len(first.user) >= 32
    assert first.user != first.admin
    for name in ("token", "admin-token"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o600
    assert load_tokens(tmp_path, user=None, admin=None) == first


def test_configured_tokens_win_and_nothing_is_stored(tmp_path):
    tokens = load_tokens(tmp_path, user=SecretStr("u" * 20), admin=SecretStr("a" * 20))
    assert tokens == Tokens(user="u" * 20, admin="a" * 20)
    assert list(tmp_path.iterdir()) == []


def test_a_truncated_stored_token_is_refused(tmp_path):
    (tmp_path / "token").write_text("short\n")
    with pytest.raises(FailedPreconditionError, match="delete it"):
        load_tokens(tmp_path, user=None, admin=None)


def test_roles():
    tokens = Tokens(user="u" * 20, admin="a" * 20)
    assert tokens.role_of("u" * 20) is Role.USER
    assert tokens.role_of("a" * 20) is Role.ADMIN
    assert tokens.role_of("u" * 19) is None
    assert tokens.role_of("") is None


def test_short_tokens_from_the_environment_are_rejected(monkeypatch, tmp_path):
    monkeypatch.setenv("AGENTOS_TOKEN", "1234")
    with pytest.raises(ValidationError, match="at least 16 characters"):
        OrchestratorSettings(data_dir=tmp_path)


def test_settings_come_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("AGENTOS_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("AGENTOS_PORT", "9123")
    monkeypatch.setenv("AGENTOS_ADMIN_TOKEN", "z" * 24)
    settings = OrchestratorSettings()
    assert (settings.data_dir, settings.port) == (tmp_path, 9123)
    assert settings.admin_token.get_secret_value() == "z" * 24
    assert OrchestratorSettings(port=7000).port == 7000  # flags beat the environment
