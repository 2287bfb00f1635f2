"""Ballots per second with the ledger append, on PostgreSQL and SQLite, and the offline check of the export.

100,000 voters cast one ballot each through `civic.votes.BallotBox` (the web app's group commit:
votes arriving together share one transaction, one log append and one signed checkpoint) from
200 concurrent clients; then the poll is closed, exported and verified offline, and inclusion
proofs are read back from the database.
"""

from __future__ import annotations

import asyncio
import os
import random
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

from bench.common import drop_schema, percentiles, postgres_url, write_result
from civic import ledger, polls, votes
from civic.db import make_engine, make_session_factory, session_scope, utcnow
from civic.migrate import upgrade
from civic.models import Poll
from civic.polls import NewPoll
from civic.votes import BallotBox, VoteRequest

BALLOTS = int(os.environ.get("BENCH_BALLOTS", "100000"))
CLIENTS = 200
PROOF_SAMPLES = 500
UNBATCHED_BALLOTS = 5000


async def vote_all(box: BallotBox, poll_id: int, ballots: int) -> tuple[list[float], dict[str, int]]:
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    next_voter = iter(range(ballots))

    async def client() -> None:
        for voter in next_voter:
            request = VoteRequest(f"+8210{voter:08d}", 1 + voter % 3, "web")
            started = time.perf_counter()
            outcome = await box.cast(poll_id, request)
            latencies.append((time.perf_counter() - started) * 1000)
            statuses[outcome.status] = statuses.get(outcome.status, 0) + 1

    await asyncio.gather(*(client() for _ in range(CLIENTS)))
    return latencies, statuses


def measure(url: str, ballots: int) -> dict[str, Any]:
    upgrade(url)
    engine = make_engine(url)
    factory = make_session_factory(engine)
    now = utcnow()
    with session_scope(factory) as session:
        poll, _ = polls.create_poll(
            session,
            NewPoll("bench poll", ["A", "B", "C"], now - timedelta(minutes=1), now + timedelta(days=1)),
            kind="policy",
            created_by="bench",
        )
        poll_id = poll.id

    async def run() -> tuple[list[float], dict[str, int], float]:
        box = BallotBox(factory)
        started = time.perf_counter()
        latencies, statuses = await vote_all(box, poll_id, ballots)
        elapsed = time.perf_counter() - started
        await box.aclose()
        return latencies, statuses, elapsed

    latencies, statuses, elapsed = asyncio.run(run())
    with session_scope(factory) as session:
        votes.close_poll(session, poll_id, early=True)
    with session_scope(factory) as session:
        poll = session.get(Poll, poll_id)
        assert poll is not None
        started = time.perf_counter()
        data = ledger.export(session, poll)
        export_seconds = time.perf_counter() - started
        proof_ms = []
        for index in random.sample(range(ballots), min(PROOF_SAMPLES, ballots)):
            started = time.perf_counter()
            ledger.inclusion_proof(session, poll, index, poll.ledger_size)
            proof_ms.append((time.perf_counter() - started) * 1000)
        checkpoints = len(data["checkpoints"])
    started = time.perf_counter()
    report = ledger.verify_export(data, key=str(ledger.city_key()))
    verify_seconds = time.perf_counter() - started
    engine.dispose()
    return {
        "ballots": ballots,
        "clients": CLIENTS,
        "statuses": statuses,
        "ballots_per_second": round(ballots / elapsed, 1),
        "seconds": round(elapsed, 1),
        "vote_ms": percentiles(latencies),
        "checkpoints_signed": checkpoints,
        "mean_ballots_per_checkpoint": round(ballots / max(1, checkpoints - 1), 1),
        "export_seconds": round(export_seconds, 2),
        "offline_verify_seconds": round(verify_seconds, 2),
        "offline_verify_ok": report.ok,
        "tally": report.tally,
        "db_inclusion_proof_ms": percentiles(proof_ms) | {"mean": round(statistics.fmean(proof_ms), 3)},
    }


def unbatched(url: str, ballots: int = UNBATCHED_BALLOTS, threads: int = 4) -> dict[str, Any]:
    """One ballot per transaction (the chat's path: each action casts its own vote), from `threads` writers."""
    engine = make_engine(url)
    factory = make_session_factory(engine)
    now = utcnow()
    with session_scope(factory) as session:
        poll, _ = polls.create_poll(
            session,
            NewPoll("bench poll, one per transaction", ["A", "B"], now - timedelta(minutes=1), now + timedelta(days=1)),
            kind="policy",
            created_by="bench",
        )
        poll_id = poll.id

    def one(voter: int) -> float:
        started = time.perf_counter()
        with session_scope(factory) as session:
            votes.cast_votes(session, poll_id, [VoteRequest(f"+8219{voter:08d}", 1 + voter % 2, "telegram")])
        return (time.perf_counter() - started) * 1000

    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        latencies = list(pool.map(one, range(ballots)))
    elapsed = time.perf_counter() - started
    engine.dispose()
    return {
        "ballots": ballots,
        "threads": threads,
        "ballots_per_second": round(ballots / elapsed, 1),
        "vote_ms": percentiles(latencies),
    }


def main() -> None:
    pg_url = postgres_url()
    try:
        postgresql = measure(pg_url, BALLOTS) | {"one_ballot_per_transaction": unbatched(pg_url)}
    finally:
        drop_schema(pg_url)
    with tempfile.TemporaryDirectory() as directory:
        url = f"sqlite:///{directory}/bench.db"
        sqlite = measure(url, BALLOTS) | {"one_ballot_per_transaction": unbatched(url)}
    write_result(
        "votes",
        {
            "postgresql": postgresql,
            "sqlite": sqlite,
            "targets": {"postgresql_ballots_per_second": 500, "offline_verify_seconds_100k": 10},
        },
    )


if __name__ == "__main__":
    main()
