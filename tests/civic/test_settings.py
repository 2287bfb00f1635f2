"""Production by default: placeholder and weak secrets are refused there, by name; development accepts them."""

from __future__ import annotations

import pytest

from civic.settings import PLACEHOLDER_SECRETS, Settings
from tests.production_secrets import PRODUCTION_SECRETS


def test_real_secrets_pass_in_production() -> None:
    assert Settings(environment="production", **PRODUCTION_SECRETS).environment == "production"


def test_the_default_environment_is_production(monkeypatch: pytest.MonkeyPatch) -> None:
    """A deployment that forgets ENVIRONMENT must not run on the repository's placeholders."""
    monkeypatch.delenv("ENVIRONMENT", raising=False)
    assert Settings(_env_file=None, **PRODUCTION_SECRETS).environment == "production"  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="SECRET_KEY must be set to a real secret"):
        Settings(_env_file=None)  # type: ignore[call-arg]


@pytest.mark.parametrize("name", sorted(PLACEHOLDER_SECRETS))
def test_each_placeholder_is_refused_in_production(name: str) -> None:
    values = PRODUCTION_SECRETS | {name.lower(): PLACEHOLDER_SECRETS[name]}
    with pytest.raises(ValueError, match=f"{name} must be set to a real secret"):
        Settings(environment="production", **values)


@pytest.mark.parametrize(
    ("name", "weak", "why"),
    [
        ("SECRET_KEY", "short-secret", "at least 32 characters"),
        ("RASA_AUTH_TOKEN", "a" * 40, "repeats too few characters"),
        ("ACTION_SERVER_TOKEN", "token", "at least 32 characters"),
        ("METADATA_SIGNING_KEY", "ab" * 20, "repeats too few characters"),
        ("PHONE_INDEX_KEY", "password1234", "at least 32 characters"),
        ("PHONE_ENCRYPTION_KEY", "c2hvcnQ=", "32 bytes, not 5"),
        ("PHONE_ENCRYPTION_KEY", "not base64 at all!", "base64"),
        ("LEDGER_SIGNING_KEY", "MDEyMzQ1Njc4OWFiY2RlZg==", "32 bytes, not 16"),
        ("TWILIO_AUTH_TOKEN", "abc123", "32 characters"),
    ],
)
def test_weak_secrets_are_refused_in_production_by_name(name: str, weak: str, why: str) -> None:
    with pytest.raises(ValueError, match=f"{name} is too weak.*{why}"):
        Settings(environment="production", **(PRODUCTION_SECRETS | {name.lower(): weak}))


def test_placeholders_are_accepted_in_development() -> None:
    settings = Settings(environment="development")
    assert settings.secret_key == PLACEHOLDER_SECRETS["SECRET_KEY"]
    assert settings.rasa_auth_token == PLACEHOLDER_SECRETS["RASA_AUTH_TOKEN"]
