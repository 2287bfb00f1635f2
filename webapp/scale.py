"""Scale mode's glue: the environment of Rasa replicas derived from DATABASE_URL and REDIS_URL."""

from __future__ import annotations

import argparse
import shlex

from sqlalchemy import create_engine, make_url, text

from civic.db import normalize_url

RASA_SCHEMA = "rasa"  # Rasa's table is named `events`: its own schema keeps it apart from the city's tables
# Rasa's SQL pool defaults to 50 + 100 connections per replica; a few replicas would exhaust PostgreSQL.
RASA_POOL_SIZE, RASA_MAX_OVERFLOW = 5, 5
# A replica killed mid-turn leaves its conversation's lock in Redis for this long (Rasa's default is 60 s).
# A form turn takes well under a second, so 15 s still never cuts a live turn short.
RASA_LOCK_LIFETIME_SECONDS = 15


def rasa_env(
    database_url: str, redis_url: str, *, schema: str = RASA_SCHEMA, lock_prefix: str = "civic"
) -> dict[str, str]:
    """Variables endpoints-scaled.yml reads, for a tracker store in `schema` and a Redis lock store."""
    db = make_url(normalize_url(database_url))
    if not db.drivername.startswith("postgresql"):
        raise ValueError("scale mode keeps Rasa's conversations in PostgreSQL: set DATABASE_URL to postgresql://…")
    redis = make_url(redis_url)
    return {
        "RASA_DB_HOST": db.host or "127.0.0.1",
        "RASA_DB_PORT": str(db.port or 5432),
        "RASA_DB_NAME": db.database or "postgres",
        "RASA_DB_USER": db.username or "postgres",
        "RASA_DB_PASSWORD": db.password or "",
        "POSTGRESQL_SCHEMA": schema,
        "SQL_POOL_SIZE": str(RASA_POOL_SIZE),
        "SQL_MAX_OVERFLOW": str(RASA_MAX_OVERFLOW),
        "RASA_REDIS_HOST": redis.host or "127.0.0.1",
        "RASA_REDIS_PORT": str(redis.port or 6379),
        "RASA_REDIS_DB": (redis.database or "0"),
        "RASA_LOCK_PREFIX": lock_prefix,
        "TICKET_LOCK_LIFETIME": str(RASA_LOCK_LIFETIME_SECONDS),
    }


def ensure_schema(database_url: str, schema: str = RASA_SCHEMA) -> None:
    """Creates Rasa's schema if missing: Rasa refuses to start without it."""
    if not schema.replace("_", "").isalnum():
        raise ValueError(f"bad schema name {schema!r}")
    engine = create_engine(normalize_url(database_url))
    try:
        with engine.begin() as connection:
            connection.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
    finally:
        engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("database_url")
    parser.add_argument("redis_url")
    args = parser.parse_args()
    ensure_schema(args.database_url)
    for name, value in rasa_env(args.database_url, args.redis_url).items():
        print(f"export {name}={shlex.quote(value)}")


if __name__ == "__main__":
    main()
