"""The inbox: raw channel updates stored before they are acknowledged, handed out until handled."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from civic.db import utcnow
from civic.models import InboundUpdate

PENDING, HANDLED, FAILED = "pending", "handled", "failed"
# While an update is leased to a worker no other worker re-queues it; a worker that died
# mid-update only delays it by this much.
LEASE_SECONDS = 120
MAX_ATTEMPTS = 5


@dataclass(frozen=True)
class PendingUpdate:
    update_key: str
    payload: dict[str, Any]
    attempts: int


def accept_many(session: Session, *, channel: str, updates: list[tuple[str, dict[str, Any]]]) -> list[bool]:
    """Stores a batch of updates with one statement; for each, whether it was new (False for a replay).

    INSERT … ON CONFLICT DO NOTHING RETURNING (PostgreSQL, SQLite ≥ 3.35) tells which rows went in,
    so the unique key alone decides between Telegram's retries and concurrent web workers.
    """
    if not updates:
        return []
    now = utcnow()
    lease = now + timedelta(seconds=LEASE_SECONDS)
    rows: dict[str, dict[str, Any]] = {}
    for key, payload in updates:
        rows.setdefault(
            key,
            {
                "channel": channel,
                "update_key": key,
                "payload": payload,
                "status": PENDING,
                "attempts": 1,
                "lease_until": lease,
                "received_at": now,
            },
        )
    insert = postgresql_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    statement = (
        insert(InboundUpdate)
        .values(list(rows.values()))
        .on_conflict_do_nothing(index_elements=["channel", "update_key"])
        .returning(InboundUpdate.update_key)
    )
    inserted = set(session.execute(statement).scalars())
    results = []
    for key, _ in updates:
        results.append(key in inserted)
        inserted.discard(key)  # the same update twice in one batch: only the first is new
    return results


def mark_handled(session: Session, *, channel: str, update_key: str) -> None:
    session.execute(
        update(InboundUpdate)
        .where(InboundUpdate.channel == channel, InboundUpdate.update_key == update_key)
        .values(status=HANDLED, handled_at=utcnow(), last_error=None)
    )


def mark_failed_attempt(session: Session, *, channel: str, update_key: str, error: str) -> None:
    """Leaves the update pending for a later attempt, or gives up after MAX_ATTEMPTS."""
    row = session.execute(
        select(InboundUpdate).where(InboundUpdate.channel == channel, InboundUpdate.update_key == update_key)
    ).scalar_one_or_none()
    if row is None or row.status != PENDING:
        return
    row.last_error = error[:1000]
    if row.attempts >= MAX_ATTEMPTS:
        row.status = FAILED


def claim_stale(
    session: Session, *, channel: str, now: datetime | None = None, limit: int = 100
) -> list[PendingUpdate]:
    """Pending updates whose lease ran out (their worker died or failed), leased again, oldest first."""
    now = now or utcnow()
    query = (
        select(InboundUpdate)
        .where(InboundUpdate.channel == channel, InboundUpdate.status == PENDING, InboundUpdate.lease_until <= now)
        .order_by(InboundUpdate.id)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    claimed = []
    for row in session.execute(query).scalars():
        if row.attempts >= MAX_ATTEMPTS:
            row.status = FAILED
            continue
        row.attempts += 1
        row.lease_until = now + timedelta(seconds=LEASE_SECONDS)
        claimed.append(PendingUpdate(row.update_key, dict(row.payload), row.attempts))
    return claimed


def give_up(session: Session, *, channel: str, update_key: str) -> None:
    """Marks an update that can never be handled (unreadable) as failed at once."""
    session.execute(
        update(InboundUpdate)
        .where(InboundUpdate.channel == channel, InboundUpdate.update_key == update_key)
        .values(status=FAILED)
    )
