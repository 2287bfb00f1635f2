"""Conversations and transcript: one row per chat, dedupe of retried messages, handoff."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy.orm import Session

import civic.conversations
from civic.conversations import (
    get_or_create_conversation,
    record_message,
    request_handoff,
    transcript,
)
from civic.models import Conversation, Message


def test_get_or_create_is_idempotent(session: Session) -> None:
    external_id = uuid.uuid4().hex
    one = get_or_create_conversation(session, channel="telegram", external_id=external_id)
    two = get_or_create_conversation(session, channel="telegram", external_id=external_id, language="ja")
    other = get_or_create_conversation(session, channel="web", external_id=external_id)
    assert one.id == two.id != other.id
    assert one.language == "ja"


def test_get_or_create_race(session: Session, monkeypatch: pytest.MonkeyPatch) -> None:
    external_id = uuid.uuid4().hex
    winner = get_or_create_conversation(session, channel="web", external_id=external_id)
    real_find = civic.conversations._find
    calls: list[str] = []

    def late_find(session: Session, channel: str, external_id: str) -> Conversation | None:
        calls.append(external_id)
        return None if len(calls) == 1 else real_find(session, channel, external_id)

    monkeypatch.setattr(civic.conversations, "_find", late_find)
    assert get_or_create_conversation(session, channel="web", external_id=external_id) is winner


def test_record_message_dedupes(session: Session) -> None:
    conversation = get_or_create_conversation(session, channel="telegram", external_id=uuid.uuid4().hex)
    before = conversation.last_message_at
    first = record_message(
        session, conversation=conversation, direction="in", sender="citizen", text="안녕하세요",
        dedupe_key="update:1",
    )  # fmt: skip
    again = record_message(
        session, conversation=conversation, direction="in", sender="citizen", text="안녕하세요",
        dedupe_key="update:1",
    )  # fmt: skip
    reply = record_message(
        session, conversation=conversation, direction="out", sender="bot", text="무엇을 도와드릴까요?",
        data={"buttons": [{"title": "신고", "payload": "/report_complaint"}]},
    )  # fmt: skip
    assert first is not None and again is None and reply is not None
    assert (first.status, reply.status) == ("received", "sent")
    assert conversation.last_message_at >= before
    assert [m.id for m in transcript(session, conversation.id)] == [first.id, reply.id]
    assert [m.id for m in transcript(session, conversation.id, after_id=first.id)] == [reply.id]
    assert transcript(session, conversation.id, limit=1) == [first]
    assert reply.data["buttons"][0]["payload"] == "/report_complaint"


def test_record_message_race(session: Session, monkeypatch: pytest.MonkeyPatch) -> None:
    conversation = get_or_create_conversation(session, channel="phone", external_id=uuid.uuid4().hex)

    def hello() -> Message | None:
        return record_message(
            session, conversation=conversation, direction="in", sender="citizen", text="여보세요", dedupe_key="CA1:1"
        )

    assert hello() is not None
    # As if the other worker's row appeared between our SELECT and INSERT.
    monkeypatch.setattr(civic.conversations, "_seen", lambda *args: False)
    assert hello() is None
    assert len(transcript(session, conversation.id)) == 1


def test_record_message_validates(session: Session) -> None:
    conversation = get_or_create_conversation(session, channel="web", external_id=uuid.uuid4().hex)
    with pytest.raises(ValueError):
        record_message(session, conversation=conversation, direction="sideways", sender="bot", text="")
    with pytest.raises(ValueError):
        record_message(session, conversation=conversation, direction="in", sender="citizen", text="", status="lost")


def test_request_handoff(session: Session) -> None:
    conversation = get_or_create_conversation(session, channel="web", external_id=uuid.uuid4().hex)
    request_handoff(session, conversation=conversation, reason="citizen asked for a human")
    assert conversation.handoff_requested_at is not None
    assert conversation.handoff_reason == "citizen asked for a human"
