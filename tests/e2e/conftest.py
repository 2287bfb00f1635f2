"""One real stack per test session: Rasa, the action server and the web app on the test database."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from civic.db import make_session_factory
from tests.e2e.stack import ROOT, ChatClient, Stack, running_stack


@pytest.fixture(scope="session")
def stack(db_url: str, engine: Engine) -> Iterator[Stack]:
    if not list((ROOT / "models").glob("*.tar.gz")):
        pytest.fail("no trained model in models/: run `make train` (make test does it)")
    with running_stack(db_url) as running:
        yield running


@pytest.fixture(scope="session")
def db(engine: Engine) -> sessionmaker[Session]:
    """Sessions on the database the stack writes to (committed data, read back by the tests)."""
    return make_session_factory(engine)


@pytest.fixture
def citizen(stack: Stack) -> ChatClient:
    return ChatClient(stack.web_url)
