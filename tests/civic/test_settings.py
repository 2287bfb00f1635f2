"""Placeholder secrets are fine for development and refused anywhere else."""

from __future__ import annotations

import pytest

from civic.settings import PLACEHOLDER_SECRETS, Settings

REAL = {
    "secret_key": "s" * 40,
    "phone_encryption_key": "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
    "phone_index_key": "i" * 40,
    "ledger_signing_key": "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
    "twilio_auth_token": "t" * 32,
}


def test_real_secrets_pass_in_production() -> None:
    assert Settings(environment="production", **REAL).environment == "production"


@pytest.mark.parametrize("name", sorted(PLACEHOLDER_SECRETS))
def test_each_placeholder_is_refused_in_production(name: str) -> None:
    values = REAL | {name.lower(): PLACEHOLDER_SECRETS[name]}
    with pytest.raises(ValueError, match=name):
        Settings(environment="production", **values)


def test_placeholders_are_accepted_in_development() -> None:
    settings = Settings(environment="development")
    assert settings.secret_key == PLACEHOLDER_SECRETS["SECRET_KEY"]
