"""One real stack per test session: Rasa, the action server and the web app on the test database."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from civic.db import make_session_factory
from telephony.local_twilio import FakeTwilioAPI, local_twilio
from telephony.local_twilio import serve_in_thread as serve
from tests.e2e.stack import ROOT, ChatClient, Stack, running_stack
from tests.fakes.telegram_api import FakeTelegramAPI

TELEGRAM_SECRET = "e2e-telegram-secret"


@pytest.fixture(scope="package")
def telegram_api() -> Iterator[FakeTelegramAPI]:
    """The Bot API the stack's web app talks to (Telegram itself is out of reach)."""
    fake = FakeTelegramAPI()
    with serve(fake.app) as url:
        fake.url = url  # type: ignore[attr-defined]
        yield fake


@pytest.fixture(scope="package")
def twilio_api() -> Iterator[FakeTwilioAPI]:
    """The Twilio REST API the stack's web app sends SMS through (verification codes)."""
    with local_twilio("AC" + "e2e0" * 8, "e2e-twilio-auth-token") as fake:
        yield fake


@pytest.fixture(scope="package")
def stack(db_url: str, engine: Engine, telegram_api: FakeTelegramAPI, twilio_api: FakeTwilioAPI) -> Iterator[Stack]:
    """Started once for tests/e2e and stopped when the package ends: its outbox worker shares the test
    database, and left running it would deliver later tests' outbox rows to its own fakes."""
    if not list((ROOT / "models").glob("*.tar.gz")):
        pytest.fail("no trained model in models/: run `make train` (make test does it)")
    telegram_env = {
        "TELEGRAM_BOT_TOKEN": telegram_api.token,
        "TELEGRAM_BASE_URL": telegram_api.url,  # type: ignore[attr-defined]
        "TELEGRAM_WEBHOOK_SECRET": TELEGRAM_SECRET,
        "TELEGRAM_MODE": "webhook",
    }
    twilio_env = {
        "TWILIO_API_BASE_URL": twilio_api.url,  # type: ignore[attr-defined]
        "TWILIO_ACCOUNT_SID": twilio_api.account_sid,
        "TWILIO_AUTH_TOKEN": twilio_api.auth_token,
    }
    with running_stack(db_url, web_env=telegram_env | twilio_env) as running:
        yield running


@pytest.fixture(scope="session")
def db(engine: Engine) -> sessionmaker[Session]:
    """Sessions on the database the stack writes to (committed data, read back by the tests)."""
    return make_session_factory(engine)


@pytest.fixture
def citizen(stack: Stack) -> ChatClient:
    return ChatClient(stack.web_url)
