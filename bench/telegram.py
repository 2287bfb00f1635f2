"""Telegram webhook: acknowledgement latency and rate under load, then every update handled exactly once.

Starts the real stack (Rasa, action server, web app) on a throw-away SQLite database with its Bot API
pointed at the local fake, posts updates to `/telegram/webhook` at a fixed open-loop rate (a tenth of
them sent twice, as Telegram does after a lost answer), then waits for the dialogue work queued
behind the acknowledgements to drain and reconciles the inbox, the transcript and the fake's sends.
"""

from __future__ import annotations

import asyncio
import json
import random
import tempfile
import time
from collections import Counter
from typing import Any

from sqlalchemy import func, select

from bench.common import RawHttpConnection, drop_schema, percentiles, postgres_url, write_result
from civic.db import make_engine, make_session_factory
from civic.migrate import upgrade
from civic.models import Conversation, InboundUpdate, Message, OutboxMessage
from telephony.local_twilio import serve_in_thread as serve
from tests.e2e.stack import running_stack
from tests.fakes import telegram_api as tg

SECRET = "bench-telegram-secret"
RATE_PER_SECOND = 200
SECONDS = 15
CHATS = 250
REPLAY_SHARE = 0.1
MESSAGES = ["안녕하세요", "hello", "こんにちは", "도움말", "SR-2026-000001 처리 상황 알려주세요", "고마워요"]
DRAIN_TIMEOUT_SECONDS = 900
CONNECTIONS = 64


async def post_updates(web_url: str, updates: list[dict[str, Any]], rate: float) -> dict[str, Any]:
    """Posts `updates` at `rate` per second (open loop: a slow answer does not slow the schedule)."""
    latencies: list[float] = []
    statuses: Counter[str] = Counter()
    headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
    bodies = [json.dumps(update).encode() for update in updates]
    idle: asyncio.Queue[RawHttpConnection] = asyncio.Queue()
    for _ in range(CONNECTIONS):
        idle.put_nowait(await RawHttpConnection.open(web_url))

    async def one(body: bytes, at: float) -> None:
        await asyncio.sleep(max(0.0, at - time.perf_counter()))
        started = time.perf_counter()  # from the scheduled instant would hide nothing: we start on time
        connection = await idle.get()
        try:
            status, _ = await connection.post("/telegram/webhook", body, headers)
            statuses[str(status)] += 1
            latencies.append((time.perf_counter() - started) * 1000)
            idle.put_nowait(connection)
        except (OSError, asyncio.IncompleteReadError, ValueError) as error:
            statuses[type(error).__name__] += 1
            connection.close()
            idle.put_nowait(await RawHttpConnection.open(web_url))

    start = time.perf_counter() + 0.5
    await asyncio.gather(*(one(body, start + i / rate) for i, body in enumerate(bodies)))
    elapsed = time.perf_counter() - start
    while not idle.empty():
        idle.get_nowait().close()
    return {
        "posted": len(updates),
        "offered_rate_per_s": rate,
        "achieved_rate_per_s": round(len(latencies) / elapsed, 1),
        "statuses": dict(statuses),
        "ack_ms": percentiles(latencies),
    }


def build_updates() -> tuple[list[dict[str, Any]], set[int]]:
    chats = [900_000_000 + i for i in range(CHATS)]
    unique = [tg.text_update(random.choice(chats), random.choice(MESSAGES)) for _ in range(RATE_PER_SECOND * SECONDS)]
    posted = list(unique)
    for update in random.sample(unique, int(len(unique) * REPLAY_SHARE)):
        posted.insert(min(len(posted), posted.index(update) + random.randint(1, 50)), update)
    return posted, {u["update_id"] for u in unique}


def reconcile(url: str, update_ids: set[int], fake: tg.FakeTelegramAPI) -> dict[str, Any]:
    engine = make_engine(url)
    factory = make_session_factory(engine)
    with factory() as session:
        statuses = dict(
            session.execute(select(InboundUpdate.status, func.count()).group_by(InboundUpdate.status)).all()
        )
        keys = Counter(
            session.execute(
                select(Message.dedupe_key)
                .join(Conversation, Conversation.id == Message.conversation_id)
                .where(Conversation.channel == "telegram", Message.direction == "in")
            ).scalars()
        )
        replies = session.scalar(select(func.count()).select_from(OutboxMessage).where(OutboxMessage.kind == "reply"))
        reply_status = dict(
            session.execute(
                select(OutboxMessage.status, func.count())
                .where(OutboxMessage.kind == "reply")
                .group_by(OutboxMessage.status)
            ).all()
        )
    engine.dispose()
    expected = {f"tg:{i}" for i in update_ids}
    return {
        "inbox": statuses,
        "lost": len(expected - set(keys)),
        "handled_twice": sum(1 for key, n in keys.items() if n > 1),
        "reply_messages_queued": replies,
        "reply_delivery": reply_status,
        "bot_api_send_message_calls": len(fake.calls_to("sendMessage")),
    }


async def wait_drained(url: str, total: int) -> float:
    engine = make_engine(url)
    factory = make_session_factory(engine)
    started = time.perf_counter()
    try:
        while time.perf_counter() - started < DRAIN_TIMEOUT_SECONDS:
            with factory() as session:
                pending = session.scalar(
                    select(func.count()).select_from(InboundUpdate).where(InboundUpdate.status == "pending")
                )
                count = session.scalar(select(func.count()).select_from(InboundUpdate))
            if count == total and not pending:
                break
            await asyncio.sleep(1)
    finally:
        engine.dispose()
    return round(time.perf_counter() - started, 1)


def measure(url: str) -> dict[str, Any]:
    fake = tg.FakeTelegramAPI()
    with serve(fake.app) as api_url:
        upgrade(url)
        env = {
            "TELEGRAM_BOT_TOKEN": fake.token,
            "TELEGRAM_BASE_URL": api_url,
            "TELEGRAM_WEBHOOK_SECRET": SECRET,
            "TELEGRAM_MODE": "webhook",
        }
        with running_stack(url, web_env=env) as stack:
            fake.wait_for(lambda: fake.webhook is not None, timeout=60)
            warm, _ = build_updates()
            warm = warm[:20]
            asyncio.run(post_updates(stack.web_url, warm, rate=20))
            posted, unique_ids = build_updates()
            started = time.perf_counter()
            load = asyncio.run(post_updates(stack.web_url, posted, rate=RATE_PER_SECOND))
            drain = asyncio.run(wait_drained(url, total=len(unique_ids) + len({u["update_id"] for u in warm})))
            total_seconds = round(time.perf_counter() - started, 1)
            result = reconcile(url, unique_ids, fake)
    return {
        "unique_updates": len(unique_ids),
        "replayed_updates": len(posted) - len(unique_ids),
        "load": load,
        "seconds_until_all_handled_after_load": drain,
        "seconds_from_first_post_to_all_handled": total_seconds,
        **result,
    }


def main() -> None:
    with tempfile.TemporaryDirectory() as directory:
        sqlite = measure(f"sqlite:///{directory}/bench.db")
    pg_url = postgres_url()
    try:
        postgresql = measure(pg_url)
    finally:
        drop_schema(pg_url)
    write_result(
        "telegram",
        {
            "chats": CHATS,
            "sqlite": sqlite,
            "postgresql": postgresql,
            "targets": {"ack_p95_ms": 50, "acks_per_s": 200, "lost": 0, "handled_twice": 0},
        },
    )


if __name__ == "__main__":
    main()
