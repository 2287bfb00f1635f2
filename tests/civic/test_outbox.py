"""Outbox: dedupe on enqueue, delivery through registered senders, back-off, dead letters."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from civic import outbox
from civic.db import utcnow
from civic.models import Conversation, OutboxMessage
from civic.settings import get_settings

MakeConversation = Callable[..., Conversation]


@pytest.fixture
def channel() -> Iterator[str]:
    """A channel name of this test only, so no other sender or row interferes."""
    name = f"t{uuid.uuid4().hex[:12]}"
    yield name
    outbox.unregister_sender(name)


def _enqueue(session: Session, conversation: Conversation, channel: str, key: str) -> OutboxMessage | None:
    return outbox.enqueue(
        session,
        conversation_id=conversation.id,
        channel=channel,
        kind="case_status",
        text=f"hello {key}",
        dedupe_key=key,
    )


def _deliver(factory: sessionmaker[Session], now: datetime) -> int:
    return asyncio.run(outbox.deliver_due(factory, now=now))


def test_enqueue_dedupes(session: Session, make_conversation: MakeConversation, channel: str) -> None:
    conversation = make_conversation()
    key = uuid.uuid4().hex
    assert _enqueue(session, conversation, channel, key) is not None
    assert _enqueue(session, conversation, channel, key) is None
    rows = session.execute(select(OutboxMessage).where(OutboxMessage.dedupe_key == key)).all()
    assert len(rows) == 1


def test_delivery_with_registered_sender(
    session: Session, bound_factory: sessionmaker[Session], make_conversation: MakeConversation, channel: str
) -> None:
    conversation = make_conversation()
    first = _enqueue(session, conversation, channel, uuid.uuid4().hex)
    second = _enqueue(session, conversation, channel, uuid.uuid4().hex)
    assert first is not None and second is not None
    session.commit()
    sent: list[tuple[int, str]] = []

    async def sender(message: OutboxMessage) -> None:
        sent.append((message.id, message.text))

    outbox.register_sender(channel, sender)
    now = utcnow() + timedelta(seconds=1)
    assert _deliver(bound_factory, now) == 2
    assert sent == [(first.id, first.text), (second.id, second.text)]
    for row in (first, second):
        session.refresh(row)
        assert (row.status, row.attempts, row.sent_at) == ("sent", 1, now)
    assert _deliver(bound_factory, now) == 0


def test_unregistered_channel_stays_pending(
    session: Session, bound_factory: sessionmaker[Session], make_conversation: MakeConversation, channel: str
) -> None:
    message = _enqueue(session, make_conversation(), channel, uuid.uuid4().hex)
    assert message is not None
    session.commit()
    assert _deliver(bound_factory, utcnow() + timedelta(hours=2)) == 0
    session.refresh(message)
    assert (message.status, message.attempts) == ("pending", 0)


def test_backoff_then_dead(
    session: Session,
    bound_factory: sessionmaker[Session],
    make_conversation: MakeConversation,
    channel: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(get_settings(), "outbox_max_attempts", 3)
    message = _enqueue(session, make_conversation(), channel, uuid.uuid4().hex)
    assert message is not None
    session.commit()
    calls: list[int] = []

    async def broken(message: OutboxMessage) -> None:
        calls.append(message.id)
        raise ConnectionError("telegram is down")

    outbox.register_sender(channel, broken)
    now = utcnow() + timedelta(seconds=1)
    assert _deliver(bound_factory, now) == 1
    session.refresh(message)
    assert (message.status, message.attempts) == ("failed", 1)
    assert message.next_attempt_at == now + timedelta(seconds=2)
    assert message.last_error == "ConnectionError: telegram is down"

    assert _deliver(bound_factory, now + timedelta(seconds=1)) == 0  # not due yet
    now += timedelta(seconds=2)
    assert _deliver(bound_factory, now) == 1
    session.refresh(message)
    assert (message.status, message.attempts) == ("failed", 2)
    assert message.next_attempt_at == now + timedelta(seconds=4)

    now += timedelta(seconds=4)
    assert _deliver(bound_factory, now) == 1
    session.refresh(message)
    assert (message.status, message.attempts) == ("dead", 3)
    assert _deliver(bound_factory, now + timedelta(days=1)) == 0
    assert len(calls) == 3


def test_backoff_is_capped() -> None:
    assert outbox.backoff(0) == timedelta(seconds=1)
    assert outbox.backoff(5) == timedelta(seconds=32)
    assert outbox.backoff(30) == timedelta(hours=1)


def test_a_secret_text_is_sent_once_then_wiped(
    session: Session, bound_factory: sessionmaker[Session], make_conversation: MakeConversation, channel: str
) -> None:
    receipt = "[receipt 0123456789abcdef0123456789abcdef]"
    message = outbox.enqueue(
        session,
        conversation_id=make_conversation().id,
        channel=channel,
        kind="reply",
        text=receipt,
        data={"secret": True},
        dedupe_key=uuid.uuid4().hex,
    )
    assert message is not None
    session.commit()
    sent: list[str] = []

    async def sender(row: OutboxMessage) -> None:
        sent.append(row.text)

    outbox.register_sender(channel, sender)
    assert _deliver(bound_factory, utcnow() + timedelta(seconds=1)) == 1
    session.refresh(message)
    assert sent == [receipt] and (message.status, message.text) == ("sent", "")
