"""Filing throughput of the civic layer alone (no Rasa, no HTTP), on SQLite and PostgreSQL.

The civic layer runs inside several processes in production (action server, web workers), so the
load comes from processes of several threads each, all filing into one database.
"""

from __future__ import annotations

import tempfile
import time
import uuid
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor, wait
from typing import Any

from bench.common import drop_schema, postgres_url, write_result
from civic.cases import file_case
from civic.categories import CATEGORIES
from civic.conversations import get_or_create_conversation
from civic.db import make_engine, make_session_factory, session_scope
from civic.districts import DISTRICTS
from civic.migrate import upgrade

CASES = 6000


def measure(url: str, processes: int, threads: int) -> dict[str, Any]:
    upgrade(url)
    per_process = CASES // processes
    with ProcessPoolExecutor(processes) as pool:
        ready = [pool.submit(file_many, url, per_process, threads, warm_up=True) for _ in range(processes)]
        wait(ready)  # every process has its engine, routing table and holidays loaded
        started = time.perf_counter()
        runs = [pool.submit(file_many, url, per_process, threads) for _ in range(processes)]
        filed = sum(run.result() for run in runs)
    elapsed = time.perf_counter() - started
    return {
        "cases": filed,
        "processes": processes,
        "threads_per_process": threads,
        "seconds": round(elapsed, 2),
        "cases_per_second": round(filed / elapsed, 1),
    }


_engines: dict[str, Any] = {}


def file_many(url: str, count: int, threads: int, warm_up: bool = False) -> int:
    if url not in _engines:
        _engines[url] = make_session_factory(make_engine(url))
    factory = _engines[url]
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

    if warm_up:
        file(0)  # routing table, holidays and connections loaded before the clock starts
        return 0
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(file, range(count)))
    return count


def main() -> None:
    # SQLite has one writer at a time: one sequential filer is its best case; two processes show
    # the cost of the embedded default's two writers (web app and action server) contending.
    sqlite = {}
    for processes, threads in ((1, 1), (2, 2)):
        with tempfile.TemporaryDirectory() as directory:
            sqlite[f"{processes}x{threads}"] = measure(f"sqlite:///{directory}/bench.db", processes, threads)
    pg_url = postgres_url()
    try:
        postgres = {"2x2": measure(pg_url, 2, 2), "2x4": measure(pg_url, 2, 4)}
    finally:
        drop_schema(pg_url)
    write_result("filing", {"sqlite": sqlite, "postgresql": postgres, "target_cases_per_second": 300})


if __name__ == "__main__":
    main()
