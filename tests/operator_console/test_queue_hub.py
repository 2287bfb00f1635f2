"""The live queue's hub: each web worker alone, or workers sharing one watcher and fanning out through Redis."""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from redis import asyncio as aioredis
from redis.exceptions import RedisError
from sqlalchemy.orm import Session, sessionmaker

from civic.cases import file_case
from civic.db import make_engine, make_session_factory, session_scope
from operator_console.queue_hub import QueueHub

REDIS_URL = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"


@pytest.fixture
async def redis_url() -> AsyncIterator[str]:
    client = aioredis.from_url(REDIS_URL)
    try:
        await client.ping()
    except (RedisError, OSError) as error:
        message = f"Redis unreachable at {REDIS_URL}: {error}"
        if os.environ.get("CI"):
            pytest.fail(message)  # CI must never go green by leaving out the scale-mode tests
        pytest.skip(message)
    finally:
        await client.aclose()
    yield REDIS_URL


def file_one(session_factory: sessionmaker[Session], marker: str) -> str:
    with session_scope(session_factory) as session:
        case = file_case(
            session, category="noise", district="마포구", place="합정역", description=marker, channel="web"
        )
        return case.number


async def until(condition: Callable[[], bool], timeout: float) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.05)


async def next_with(stream: asyncio.Queue[str], number: str, timeout: float = 5.0) -> dict[str, object]:
    """The first snapshot on `stream` that lists case `number`."""
    async with asyncio.timeout(timeout):
        while True:
            snapshot = json.loads(await stream.get())
            if any(item["title"] == number for item in snapshot["items"]):
                return snapshot  # type: ignore[no-any-return]


async def test_alone_a_worker_pushes_a_new_case_to_its_streams(session_factory: sessionmaker[Session]) -> None:
    hub = QueueHub(session_factory)
    stream = hub.subscribe()
    task = asyncio.create_task(hub.run())
    try:
        await asyncio.sleep(0.6)
        number = await asyncio.to_thread(file_one, session_factory, f"alone {uuid.uuid4().hex}")
        await next_with(stream, number)
    finally:
        task.cancel()
    hub.unsubscribe(stream)
    assert hub._streams == set()


async def test_alone_a_worker_reads_nothing_while_no_console_watches(session_factory: sessionmaker[Session]) -> None:
    reads: list[int] = []

    def counting() -> Session:
        reads.append(1)
        return session_factory()

    hub = QueueHub(session_factory)
    hub.session_factory = counting  # type: ignore[assignment]
    task = asyncio.create_task(hub.run())
    try:
        await asyncio.sleep(1.2)
        assert reads == []  # two ticks and more, and not one query
        stream = hub.subscribe()
        number = await asyncio.to_thread(file_one, session_factory, f"watched {uuid.uuid4().hex}")
        await next_with(stream, number)
        assert reads
    finally:
        task.cancel()


async def test_workers_share_one_watcher_and_every_stream_gets_the_case(
    session_factory: sessionmaker[Session], redis_url: str
) -> None:
    hubs = [QueueHub(session_factory, redis_url=redis_url) for _ in range(3)]
    streams = [hub.subscribe() for hub in hubs]
    tasks = [asyncio.create_task(hub.run()) for hub in hubs]
    try:
        # An app of an earlier test module may still hold the lead for up to its lease (3 s).
        await until(lambda: sum(hub.leading for hub in hubs) == 1, timeout=8.0)
        await asyncio.sleep(1.0)
        assert sum(hub.leading for hub in hubs) == 1  # the database is read by one worker
        number = await asyncio.to_thread(file_one, session_factory, f"shared {uuid.uuid4().hex}")
        await asyncio.gather(*(next_with(stream, number) for stream in streams))
        # The watcher dies (a SIGKILLed worker): another takes over once its lead expires.
        leader = next(i for i, hub in enumerate(hubs) if hub.leading)
        tasks[leader].cancel()
        survivors = [i for i in range(3) if i != leader]
        later = await asyncio.to_thread(file_one, session_factory, f"after {uuid.uuid4().hex}")
        await asyncio.gather(*(next_with(streams[i], later, timeout=8.0) for i in survivors))
        assert sum(hubs[i].leading for i in survivors) == 1
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def test_another_database_on_the_same_redis_is_not_mixed_in(
    session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    other_engine = make_engine(f"sqlite:///{tmp_path / 'other.db'}")
    ours, again = QueueHub(session_factory, redis_url=REDIS_URL), QueueHub(session_factory, redis_url=REDIS_URL)
    theirs = QueueHub(make_session_factory(other_engine), redis_url=REDIS_URL)
    assert ours.channel == again.channel and ours.leader_key == again.leader_key  # one database, one watcher
    assert theirs.channel != ours.channel and theirs.leader_key != ours.leader_key
    other_engine.dispose()
