"""Engine set-up, session scope and the migration matching the models."""

from __future__ import annotations

import pytest
from alembic import command
from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session, sessionmaker

import civic.db
from civic.db import make_engine, normalize_url, session_scope
from civic.migrate import alembic_config
from civic.models import CaseNumberSequence


def test_postgres_urls_use_psycopg() -> None:
    assert normalize_url("postgresql://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalize_url("postgresql+psycopg://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalize_url("sqlite:///x.db") == "sqlite:///x.db"


def test_sqlite_pragmas(tmp_path: pytest.TempPathFactory) -> None:
    engine = make_engine(f"sqlite:///{tmp_path}/nested/dir/civic.db")
    try:
        with engine.connect() as connection:
            assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
            assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1
            assert connection.execute(text("PRAGMA busy_timeout")).scalar() == 30000
    finally:
        engine.dispose()


def test_session_scope_commits_and_rolls_back(session_factory: sessionmaker[Session]) -> None:
    with session_scope(session_factory) as session:
        session.add(CaseNumberSequence(year=1900, last_value=5))
    with pytest.raises(RuntimeError), session_scope(session_factory) as session:
        session.get_one(CaseNumberSequence, 1900).last_value = 99
        raise RuntimeError("boom")
    with session_scope(session_factory) as session:
        row = session.get_one(CaseNumberSequence, 1900)
        assert row.last_value == 5
        session.delete(row)
    with session_scope(session_factory) as session:
        assert session.execute(select(CaseNumberSequence).where(CaseNumberSequence.year == 1900)).first() is None


def test_session_factory_is_lazy_singleton(monkeypatch: pytest.MonkeyPatch, db_url: str) -> None:
    monkeypatch.setattr(civic.db, "_factory", None)
    monkeypatch.setattr(civic.db, "make_engine", lambda url=None: make_engine(db_url))
    factory = civic.db.get_session_factory()
    try:
        assert civic.db.get_session_factory() is factory
    finally:
        bind = factory.kw["bind"]
        assert isinstance(bind, Engine)
        bind.dispose()


def test_migrations_match_models(engine: Engine, db_url: str) -> None:
    command.check(alembic_config(db_url))  # raises when autogenerate would emit operations
