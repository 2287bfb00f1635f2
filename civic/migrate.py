"""Bring a database to the current schema and routing table: `python -m civic.migrate`."""

from __future__ import annotations

import logging

from alembic import command
from alembic.config import Config

from civic.db import make_engine, make_session_factory, normalize_url, session_scope
from civic.routing import sync_departments
from civic.settings import PROJECT_ROOT, get_settings

log = logging.getLogger(__name__)

ALEMBIC_INI = PROJECT_ROOT / "alembic.ini"


def alembic_config(url: str | None = None) -> Config:
    """Alembic's config for `url` (default settings.database_url), without touching logging."""
    config = Config(str(ALEMBIC_INI))
    # Passed as an attribute, not a main option: configparser would choke on '%' in passwords.
    config.attributes["url"] = normalize_url(url or get_settings().database_url)
    config.attributes["configure_logging"] = False
    return config


def upgrade(url: str | None = None) -> None:
    """Run every pending migration, then upsert the departments of the routing table."""
    config = alembic_config(url)
    command.upgrade(config, "head")
    engine = make_engine(config.attributes["url"])
    try:
        with session_scope(make_session_factory(engine)) as session:
            changed = sync_departments(session)
        log.info("departments synced: %d changed", changed)
    finally:
        engine.dispose()


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    upgrade()
