"""Scale mode's suite: one scaled stack (two web workers, two Rasa replicas) on PostgreSQL and Redis."""

from __future__ import annotations

import os
from collections.abc import Iterator

import psycopg
import pytest
import redis

from bench.soak import DEFAULT_DATABASE_URL, DEFAULT_REDIS_URL, SoakConfig, SoakTarget, soak_target
from tests.e2e.stack import ROOT

# The short form of `make soak`, the one CI runs; citizens think faster than in the 5-minute run so
# that a visit (report, status, SMS code, vote) fits in the minute.
SHORT_SOAK_SECONDS, SHORT_SOAK_CITIZENS, SHORT_SOAK_THINK_SECONDS = 60.0, 50, (3.0, 9.0)


def postgres_url() -> str:
    url = os.environ.get("DATABASE_URL", "")
    return url if url.startswith("postgresql") else os.environ.get("TEST_POSTGRES_URL", DEFAULT_DATABASE_URL)


def unreachable(postgres: str, redis_url: str) -> list[str]:
    """Why the services scale mode needs cannot be used (empty when both answer)."""
    problems = []
    try:
        psycopg.connect(postgres, connect_timeout=3).close()
    except psycopg.Error as error:
        problems.append(f"PostgreSQL at {postgres}: {error}")
    try:
        redis.Redis.from_url(redis_url, socket_connect_timeout=3).ping()
    except redis.RedisError as error:
        problems.append(f"Redis at {redis_url}: {error}")
    return problems


@pytest.fixture(scope="package")
def soak_config() -> SoakConfig:
    postgres, redis_url = postgres_url(), os.environ.get("REDIS_URL", DEFAULT_REDIS_URL)
    problems = unreachable(postgres, redis_url)
    if problems:
        message = "scale mode needs PostgreSQL and Redis: " + "; ".join(problems)
        if os.environ.get("CI"):
            pytest.fail(message)  # CI must never go green by skipping scale mode
        pytest.skip(message)
    if not list((ROOT / "models").glob("*.tar.gz")):
        pytest.fail("no trained model in models/: run `make train` (make test does it)")
    return SoakConfig(
        seconds=SHORT_SOAK_SECONDS,
        citizens=SHORT_SOAK_CITIZENS,
        think_seconds=SHORT_SOAK_THINK_SECONDS,
        database_url=postgres,
        redis_url=redis_url,
    )


@pytest.fixture(scope="package")
def target(soak_config: SoakConfig) -> Iterator[SoakTarget]:
    """Started once for the package: test_replicas.py uses it first, then test_soak.py soaks it."""
    with soak_target(soak_config) as started:
        yield started
