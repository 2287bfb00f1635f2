"""Notification outbox: enqueue messages to citizens, deliver them through per-channel senders."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from civic.db import session_scope, utcnow
from civic.models import OutboxMessage
from civic.settings import get_settings

log = logging.getLogger(__name__)

Sender = Callable[[OutboxMessage], Awaitable[None]]

PENDING, SENT, FAILED, DEAD = "pending", "sent", "failed", "dead"
MAX_BACKOFF_SECONDS = 3600
# The data key under which a secret text waits sealed for its sender (civic.sms); dropped once delivered.
SEALED_TEXT = "sealed_text"
# A claimed row is pushed this far into the future so that no other worker picks it up while we
# send; a worker that dies mid-send thereby only delays the message, never loses it.
LEASE_SECONDS = 300
SEND_TIMEOUT_SECONDS = 60.0

_senders: dict[str, Sender] = {}


class Undeliverable(Exception):
    """Raised by a sender when retrying cannot help (the citizen blocked the bot, the chat is gone)."""


def register_sender(channel: str, sender: Sender) -> None:
    """Deliver `channel`'s messages with `sender`, an async callable that raises on failure."""
    _senders[channel] = sender


def unregister_sender(channel: str) -> None:
    """Stop delivering `channel`'s messages (they stay pending); used by tests and shutdown."""
    _senders.pop(channel, None)


def enqueue(
    session: Session,
    *,
    conversation_id: int,
    channel: str,
    kind: str,
    text: str,
    data: dict[str, Any] | None = None,
    dedupe_key: str,
    held_for_caller: bool = False,
) -> OutboxMessage | None:
    """Queue a message for delivery; None when `dedupe_key` was already queued.

    `held_for_caller` leases the new row to the caller, who delivers it at once with
    `deliver_now`; the worker takes it over only if the caller dies before recording the outcome.
    """
    if session.execute(select(OutboxMessage.id).where(OutboxMessage.dedupe_key == dedupe_key)).first():
        return None
    now = utcnow()
    message = OutboxMessage(
        conversation_id=conversation_id,
        channel=channel,
        kind=kind,
        text=text,
        data=data or {},
        dedupe_key=dedupe_key,
        status=PENDING,
        attempts=0,
        next_attempt_at=now + timedelta(seconds=LEASE_SECONDS) if held_for_caller else now,
    )
    # Two writers may pass the SELECT together on PostgreSQL; the unique key decides, and the
    # savepoint keeps the loser's transaction usable.
    try:
        with session.begin_nested():
            session.add(message)
    except IntegrityError:
        return None
    return message


def backoff(attempts: int) -> timedelta:
    """Delay before retrying after `attempts` failed tries: 2**attempts seconds, at most 1 hour."""
    return timedelta(seconds=min(2**attempts, MAX_BACKOFF_SECONDS))


@dataclass(frozen=True)
class _Outcome:
    message_id: int
    error: str | None
    permanent: bool = False


def _claim(factory: sessionmaker[Session], now: datetime, batch: int) -> list[OutboxMessage]:
    channels = sorted(_senders)
    if not channels:
        return []
    with session_scope(factory) as session:
        query = (
            select(OutboxMessage)
            .where(
                OutboxMessage.status.in_((PENDING, FAILED)),
                OutboxMessage.next_attempt_at <= now,
                OutboxMessage.channel.in_(channels),
            )
            .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id)
            .limit(batch)
        )
        if session.get_bind().dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        rows = list(session.execute(query).scalars())
        for row in rows:
            row.next_attempt_at = now + timedelta(seconds=LEASE_SECONDS)
        session.flush()
        # Detached before commit so the sender can read them whatever the factory's expiry policy.
        for row in rows:
            session.expunge(row)
    return rows


def _record(factory: sessionmaker[Session], outcomes: list[_Outcome], now: datetime) -> None:
    max_attempts = get_settings().outbox_max_attempts
    with session_scope(factory) as session:
        for outcome in outcomes:
            row = session.get(OutboxMessage, outcome.message_id)
            if row is None:
                continue
            row.attempts += 1
            if outcome.error is None:
                row.status, row.sent_at, row.last_error = SENT, now, None
                if (row.data or {}).get("secret"):
                    row.text = ""  # delivered: a secret (a vote receipt, an SMS code) is not kept
                    row.data = {key: value for key, value in row.data.items() if key != SEALED_TEXT}
            elif outcome.permanent or row.attempts >= max_attempts:
                row.status, row.last_error = DEAD, outcome.error
            else:
                row.status, row.last_error = FAILED, outcome.error
                row.next_attempt_at = now + backoff(row.attempts)


async def _send(message: OutboxMessage) -> _Outcome:
    sender = _senders.get(message.channel)
    if sender is None:
        return _Outcome(message.id, "no sender registered")
    try:
        # asyncio.timeout, not wait_for: Python 3.11's wait_for can swallow a cancellation that
        # arrives as the send finishes, and the worker then never stops (a hung shutdown, seen in tests).
        async with asyncio.timeout(SEND_TIMEOUT_SECONDS):
            await sender(message)
    except Undeliverable as exc:
        log.warning("outbox %s via %s undeliverable: %s", message.id, message.channel, exc)
        return _Outcome(message.id, f"undeliverable: {exc}"[:1000], permanent=True)
    except Exception as exc:  # any other sender failure is a retryable delivery failure
        log.warning("outbox %s via %s failed: %s", message.id, message.channel, type(exc).__name__)
        return _Outcome(message.id, f"{type(exc).__name__}: {exc}"[:1000])
    return _Outcome(message.id, None)


def status_counts(session: Session) -> dict[str, int]:
    """How many messages are in each state (pending, sent, failed, dead)."""
    rows = session.execute(select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status)).all()
    return {PENDING: 0, FAILED: 0, DEAD: 0, SENT: 0} | {status: count for status, count in rows}


def undelivered(session: Session, *, limit: int = 200) -> list[OutboxMessage]:
    """Dead letters and messages still being retried, newest first: what the console shows."""
    query = (
        select(OutboxMessage)
        .where(OutboxMessage.status.in_((DEAD, FAILED)))
        .order_by(OutboxMessage.id.desc())
        .limit(limit)
    )
    return list(session.execute(query).scalars())


def retry_dead(session: Session, message_id: int) -> OutboxMessage | None:
    """Gives a dead letter a fresh set of attempts (after the cause was fixed); None if it is not dead."""
    row = session.get(OutboxMessage, message_id)
    if row is None or row.status != DEAD:
        return None
    row.status, row.attempts, row.next_attempt_at = PENDING, 0, utcnow()
    return row


async def deliver_now(session_factory: sessionmaker[Session], message: OutboxMessage) -> bool:
    """Delivers a message enqueued with `held_for_caller=True` right away; True when it was sent."""
    outcome = await _send(message)
    await asyncio.to_thread(_record, session_factory, [outcome], utcnow())
    return outcome.error is None


async def deliver_due(session_factory: sessionmaker[Session], *, now: datetime | None = None, batch: int = 50) -> int:
    """Send up to `batch` due messages; returns how many were attempted (sent or failed)."""
    now = now or utcnow()
    # Database work runs in a thread: SQLite may wait on busy_timeout and must not block the loop.
    rows = await asyncio.to_thread(_claim, session_factory, now, batch)
    outcomes = []
    for message in rows:  # one at a time, oldest first, so a conversation's messages keep order
        outcomes.append(await _send(message))
    if outcomes:
        await asyncio.to_thread(_record, session_factory, outcomes, now)
    return len(outcomes)
