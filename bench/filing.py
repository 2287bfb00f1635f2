"""Filing throughput of the civic layer alone (no Rasa, no HTTP), on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from sqlalchemy import text

from bench.common import write_result
from civic.cases import file_case
from civic.categories import CATEGORIES
from civic.conversations import get_or_create_conversation
from civic.db import make_engine, make_session_factory, session_scope
from civic.districts import DISTRICTS
from civic.migrate import upgrade

CASES = 3000
THREADS = 4


def measure(url: str) -> dict[str, Any]:
    upgrade(url)
    engine = make_engine(url)
    factory = make_session_factory(engine)
    with session_scope(factory) as session:
        conversation_id = get_or_create_conversation(
            session, channel="rest", external_id=f"bench-{uuid.uuid4().hex}"
        ).id

    def file(i: int) -> None:
        with session_scope(factory) as session:
            file_case(
                session,
                category=CATEGORIES[i % len(CATEGORIES)],
                district=DISTRICTS[i % len(DISTRICTS)],
                place="벤치마크 앞",
                description="benchmark filing",
                channel="rest",
                conversation_id=conversation_id,
                idempotency_key=f"bench-{uuid.uuid4().hex}",
            )

    file(0)  # warm caches (routing table, holidays)
    started = time.perf_counter()
    with ThreadPoolExecutor(THREADS) as pool:
        list(pool.map(file, range(CASES)))
    elapsed = time.perf_counter() - started
    engine.dispose()
    return {
        "cases": CASES,
        "threads": THREADS,
        "seconds": round(elapsed, 2),
        "cases_per_second": round(CASES / elapsed, 1),
    }


def postgres_url() -> str:
    """A throw-away schema in the local PostgreSQL, so the benchmark never touches real data."""
    base = os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    engine = make_engine(base)
    with engine.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    engine.dispose()
    return f"{base}?options=-csearch_path%3D{schema}"


def drop_schema(url: str) -> None:
    schema = url.rsplit("%3D", 1)[1]
    engine = make_engine(url.split("?")[0])
    with engine.begin() as connection:
        connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    engine.dispose()


def main() -> None:
    with tempfile.TemporaryDirectory() as directory:
        sqlite = measure(f"sqlite:///{directory}/bench.db")
    pg_url = postgres_url()
    try:
        postgres = measure(pg_url)
    finally:
        drop_schema(pg_url)
    write_result("filing", {"sqlite": sqlite, "postgresql": postgres, "target_cases_per_second": 300})


if __name__ == "__main__":
    main()
