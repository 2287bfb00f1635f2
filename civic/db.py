"""Database plumbing: declarative base, engine and session factories, transaction scope."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import DateTime, Engine, MetaData, create_engine, event
from sqlalchemy.engine import Connection, Dialect, make_url
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

from civic.settings import get_settings

T = TypeVar("T")
# Row ids are 32-bit integers on PostgreSQL: a larger id from a URL can match nothing, and must not reach a query.
MAX_ROW_ID = 2**31 - 1

# Deterministic constraint names: Alembic's batch mode on SQLite and later migrations need them.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base of every civic table."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def utcnow() -> datetime:
    """The current time as an aware UTC datetime."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on every backend (SQLite keeps no offset, so it stores naive UTC)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; civic stores aware UTC datetimes only")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def normalize_url(url: str) -> str:
    """Map plain `postgresql://` urls to the psycopg 3 driver we ship."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def make_engine(url: str | None = None) -> Engine:
    """An engine for `url` (default: settings.database_url), tuned for concurrent writers."""
    url = normalize_url(url or get_settings().database_url)
    sa_url = make_url(url)
    if sa_url.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True)
    if sa_url.database and sa_url.database != ":memory:":
        Path(sa_url.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url)
    _install_sqlite_hooks(engine)
    return engine


def _install_sqlite_hooks(engine: Engine) -> None:
    # pysqlite's own transaction handling defers BEGIN and cannot do BEGIN IMMEDIATE; we turn it off
    # and emit BEGIN ourselves (SQLAlchemy's documented recipe). IMMEDIATE takes the write lock at
    # the start, so two writers queue on busy_timeout instead of failing with "database is locked"
    # when a deferred reader tries to upgrade to a writer.
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, connection_record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        # In WAL mode NORMAL loses no committed transaction when the process dies (SIGKILL, crash);
        # only an OS crash or power cut can drop the last commits. FULL would fsync every commit
        # and cap filing at the disk's sync rate. Scale mode (PostgreSQL) is fully durable.
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions bound to `engine`; objects stay readable after commit."""
    return sessionmaker(bind=engine, expire_on_commit=False)


@contextmanager
def session_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One unit of work: commit on success, roll back on error, always close."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


async def in_thread(factory: sessionmaker[Session], work: Callable[[Session], T]) -> T:
    """Runs blocking database work in a worker thread, inside one committed transaction.

    The event loop of the web app and the action server must never wait on the database.
    """

    def run() -> T:
        with session_scope(factory) as session:
            return work(session)

    return await asyncio.to_thread(run)


_factory: sessionmaker[Session] | None = None
_factory_lock = threading.Lock()


def get_session_factory() -> sessionmaker[Session]:
    """The process-wide session factory, built on first use from settings."""
    global _factory
    if _factory is None:
        with _factory_lock:
            if _factory is None:
                _factory = make_session_factory(make_engine())
    return _factory
