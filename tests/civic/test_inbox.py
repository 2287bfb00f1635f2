"""The inbox of channel updates: stored once, leased, retried after a crash, given up after MAX_ATTEMPTS."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from civic import inbox
from civic.db import utcnow
from civic.models import InboundUpdate


def test_a_batch_stores_each_update_once(session: Session) -> None:
    first = inbox.accept_many(session, channel="telegram", updates=[("1", {"update_id": 1}), ("2", {"update_id": 2})])
    again = inbox.accept_many(
        session, channel="telegram", updates=[("2", {"update_id": 2}), ("3", {"update_id": 3}), ("3", {"x": 1})]
    )
    assert first == [True, True]
    assert again == [False, True, False]  # a replay, a new one, and the new one repeated in the batch
    stored = session.execute(select(InboundUpdate).where(InboundUpdate.update_key == "3")).scalar_one()
    assert stored.payload == {"update_id": 3} and stored.status == inbox.PENDING and stored.attempts == 1
    # The same key on another channel is another update.
    assert inbox.accept_many(session, channel="sms", updates=[("1", {})]) == [True]


def test_a_leased_update_is_not_recovered_until_its_lease_ends(session: Session) -> None:
    inbox.accept_many(session, channel="telegram", updates=[("10", {"update_id": 10})])
    assert inbox.claim_stale(session, channel="telegram") == []
    later = utcnow() + timedelta(seconds=inbox.LEASE_SECONDS + 1)
    claimed = inbox.claim_stale(session, channel="telegram", now=later)
    assert [(c.update_key, c.attempts) for c in claimed] == [("10", 2)]
    assert inbox.claim_stale(session, channel="telegram", now=later) == []  # leased again


def test_handled_updates_are_never_recovered(session: Session) -> None:
    inbox.accept_many(session, channel="telegram", updates=[("20", {})])
    inbox.mark_handled(session, channel="telegram", update_key="20")
    later = utcnow() + timedelta(seconds=inbox.LEASE_SECONDS + 1)
    assert inbox.claim_stale(session, channel="telegram", now=later) == []
    row = session.execute(select(InboundUpdate).where(InboundUpdate.update_key == "20")).scalar_one()
    assert row.status == inbox.HANDLED and row.handled_at is not None


def test_failed_attempts_end_in_failed_after_max_attempts(session: Session) -> None:
    inbox.accept_many(session, channel="telegram", updates=[("30", {})])
    now = utcnow()
    for attempt in range(2, inbox.MAX_ATTEMPTS + 1):
        inbox.mark_failed_attempt(session, channel="telegram", update_key="30", error="boom")
        now += timedelta(seconds=inbox.LEASE_SECONDS + 1)
        assert [c.attempts for c in inbox.claim_stale(session, channel="telegram", now=now)] == [attempt]
    inbox.mark_failed_attempt(session, channel="telegram", update_key="30", error="still boom")
    row = session.execute(select(InboundUpdate).where(InboundUpdate.update_key == "30")).scalar_one()
    assert row.status == inbox.FAILED and row.last_error == "still boom"


def test_an_unreadable_update_is_given_up_at_once(session: Session) -> None:
    inbox.accept_many(session, channel="telegram", updates=[("40", {"garbage": True})])
    inbox.give_up(session, channel="telegram", update_key="40")
    later = utcnow() + timedelta(seconds=inbox.LEASE_SECONDS + 1)
    assert inbox.claim_stale(session, channel="telegram", now=later) == []
