"""Alembic environment: civic's metadata, the url from settings or `-x url=...`."""

from __future__ import annotations

from logging.config import fileConfig

from alembic import context
from sqlalchemy import Connection, make_url

import civic.models  # noqa: F401  (registers every table on Base.metadata)
from civic.db import Base, make_engine, normalize_url
from civic.settings import get_settings

config = context.config
if config.config_file_name is not None and config.attributes.get("configure_logging", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = Base.metadata


def _url() -> str:
    # Precedence: `alembic -x url=...`, then a url handed in by civic.migrate, then settings.
    url = context.get_x_argument(as_dictionary=True).get("url") or config.attributes.get("url")
    return normalize_url(url or get_settings().database_url)


def _configure(dialect: str, connection: Connection | None = None, url: str | None = None) -> None:
    context.configure(
        connection=connection,
        url=url,
        target_metadata=target_metadata,
        # SQLite cannot ALTER most things; batch mode recreates the table instead.
        render_as_batch=dialect == "sqlite",
        compare_type=True,
        literal_binds=connection is None,
    )


def run_migrations_offline() -> None:
    url = _url()
    _configure(make_url(url).get_backend_name(), url=url)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    handed_in: Connection | None = config.attributes.get("connection")
    if handed_in is not None:  # a caller that owns the connection (and maybe a transaction)
        _configure(handed_in.dialect.name, connection=handed_in)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = make_engine(_url())
    try:
        with engine.connect() as connection:
            _configure(connection.dialect.name, connection=connection)
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
