"""The real web app (create_app with its lifespan) in this process, on the test database, for TestClient tests."""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from fastapi.testclient import TestClient

from civic import db as civic_db
from civic.settings import get_settings
from telephony.local_twilio import FakeTwilioAPI


def new_phone() -> str:
    """A random Korean mobile number that libphonenumber accepts (010-5xxx is not allocated)."""
    return f"010-{random.choice('2346789')}{random.randint(0, 999):03d}-{random.randint(0, 9999):04d}"


@contextmanager
def running_app(db_url: str, twilio: FakeTwilioAPI, **extra_env: str) -> Iterator[TestClient]:
    """The app on `db_url`, its SMS going to `twilio`; settings and the session factory restored after."""
    from webapp.main import create_app

    env = {
        "ENVIRONMENT": "test",
        "DATABASE_URL": db_url,
        "TWILIO_API_BASE_URL": twilio.url,  # type: ignore[attr-defined]
        "TWILIO_ACCOUNT_SID": twilio.account_sid,
        "TWILIO_AUTH_TOKEN": twilio.auth_token,
        "OUTBOX_POLL_SECONDS": "0.05",
        "TELEGRAM_BOT_TOKEN": "",  # a developer's .env must not start Telegram here
        "ASR_PRELOAD": "false",  # speech models load on a phone line's first turn, not for every test app
    } | extra_env
    # Settings and the session factory are process-wide caches: rebuilt for the app, restored after.
    previous_factory = civic_db._factory
    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        get_settings.cache_clear()
        civic_db._factory = None
        try:
            with TestClient(create_app()) as test_client:
                yield test_client
        finally:
            if civic_db._factory is not None:
                civic_db._factory.kw["bind"].dispose()
            civic_db._factory = previous_factory
    get_settings.cache_clear()
