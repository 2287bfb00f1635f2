"""Shared fixtures: a migrated test database and a session per test that is rolled back."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import Connection, Engine, create_engine, make_url, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from civic.db import make_engine, make_session_factory, normalize_url
from civic.migrate import upgrade
from telephony.local_twilio import serve_in_thread
from tests.fakes.rasa import FakeRasa

# The app defaults to production, which refuses the repository's placeholder secrets: the tests run as "test"
# whatever the shell says (the Makefile exports "development" for `make run`, which serves the API docs).
os.environ["ENVIRONMENT"] = "test"


def _postgres_schema_url(url: str) -> Iterator[str]:
    """A fresh schema for this test session, dropped at the end; yields a url that uses it."""
    admin = create_engine(url)
    try:
        with admin.connect() as connection:
            connection.execute(text("SELECT 1"))
    except OperationalError as exc:
        admin.dispose()
        message = f"PostgreSQL requested by DATABASE_URL but unreachable: {exc.orig}"
        if os.environ.get("CI"):
            pytest.fail(message)  # CI must never go green by skipping the PostgreSQL run
        pytest.skip(message)
    schema = f"test_{uuid.uuid4().hex[:12]}"
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        scoped = make_url(url).update_query_dict({"options": f"-csearch_path={schema}"})
        yield scoped.render_as_string(hide_password=False)
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(scope="session")
def db_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """DATABASE_URL when set (PostgreSQL: in a throw-away schema), else a temporary SQLite file."""
    url = os.environ.get("DATABASE_URL")
    if not url:
        yield f"sqlite:///{tmp_path_factory.mktemp('db') / 'civic.db'}"
    elif url.startswith("sqlite"):
        yield url
    else:
        yield from _postgres_schema_url(normalize_url(url))


@pytest.fixture(scope="session")
def engine(db_url: str) -> Iterator[Engine]:
    """An engine on the test database, migrated to head with departments synced."""
    upgrade(db_url)
    engine = make_engine(db_url)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions that really commit: for tests of concurrency across connections."""
    return make_session_factory(engine)


@pytest.fixture
def connection(engine: Engine) -> Iterator[Connection]:
    """A connection inside a transaction that is rolled back after the test."""
    connection = engine.connect()
    transaction = connection.begin()
    yield connection
    transaction.rollback()
    connection.close()


@pytest.fixture
def bound_factory(connection: Connection) -> sessionmaker[Session]:
    """Sessions whose commits are savepoints inside the test's rolled-back transaction."""
    return sessionmaker(bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False)


@pytest.fixture
def session(bound_factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session whose work, committed or not, disappears after the test."""
    session = bound_factory()
    yield session
    session.close()


@pytest.fixture(scope="module")
def rasa() -> Iterator[FakeRasa]:
    """A fake Rasa REST channel on a local port (its `url`), recording turns and tracker events."""
    fake = FakeRasa()
    with serve_in_thread(fake.app) as url:
        fake.url = url
        yield fake
