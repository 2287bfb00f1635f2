"""Conversations and their transcript: one row per chat thread, one per message, deduplicated."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from civic.db import utcnow
from civic.i18n import LANGUAGES
from civic.models import Conversation, Message
from civic.outbox import enqueue

CHANNELS: tuple[str, ...] = ("web", "telegram", "phone", "rest")
DIRECTIONS: tuple[str, ...] = ("in", "out")
SENDERS: tuple[str, ...] = ("citizen", "bot", "operator", "system")
# Inbound: "received" once stored, "answered" once the bot replied, "unanswered" when the NLU was
# down and an operator must look, "to_operator" when an operator held the conversation; outbound: "sent".
MESSAGE_STATUSES: tuple[str, ...] = ("received", "answered", "unanswered", "to_operator", "sent")


def _find(session: Session, channel: str, external_id: str) -> Conversation | None:
    query = select(Conversation).where(Conversation.channel == channel, Conversation.external_id == external_id)
    return session.execute(query).scalar_one_or_none()


def get_or_create_conversation(
    session: Session, *, channel: str, external_id: str, language: str | None = None
) -> Conversation:
    """The conversation for (channel, external_id), created if new; `language` updates it."""
    if language is not None and language not in LANGUAGES:
        raise ValueError(f"unsupported language {language!r}")
    conversation = _find(session, channel, external_id)
    if conversation is None:
        now = utcnow()
        candidate = Conversation(
            channel=channel,
            external_id=external_id,
            language=language or "ko",
            created_at=now,
            last_message_at=now,
        )
        # Two first messages of the same chat can arrive together (web workers, Telegram retries):
        # the unique (channel, external_id) picks one winner and the savepoint lets the loser re-read.
        try:
            with session.begin_nested():
                session.add(candidate)
            return candidate
        except IntegrityError:
            conversation = _find(session, channel, external_id)
            if conversation is None:
                raise
    if language is not None and conversation.language != language:
        conversation.language = language
    return conversation


def record_message(
    session: Session,
    *,
    conversation: Conversation,
    direction: str,
    sender: str,
    text: str,
    data: dict[str, Any] | None = None,
    dedupe_key: str | None = None,
    status: str | None = None,
) -> Message | None:
    """Append a message to the transcript; None if `dedupe_key` was already seen in it.

    `status` defaults to "received" for inbound and "sent" for outbound messages.
    """
    if direction not in DIRECTIONS or sender not in SENDERS:
        raise ValueError(f"bad direction/sender {direction!r}/{sender!r}")
    status = status or ("received" if direction == "in" else "sent")
    if status not in MESSAGE_STATUSES:
        raise ValueError(f"bad message status {status!r}")
    if dedupe_key is not None and _seen(session, conversation.id, dedupe_key):
        return None
    now = utcnow()
    message = Message(
        conversation_id=conversation.id,
        direction=direction,
        sender=sender,
        text=text,
        data=data or {},
        dedupe_key=dedupe_key,
        status=status,
        created_at=now,
    )
    # Channel retries (Telegram update_id, Twilio tokens) can race on two workers; the unique
    # (conversation_id, dedupe_key) keeps one, and the savepoint keeps the loser's transaction alive.
    try:
        with session.begin_nested():
            session.add(message)
    except IntegrityError:
        if dedupe_key is None:
            raise
        return None
    conversation.last_message_at = now
    return message


def _seen(session: Session, conversation_id: int, dedupe_key: str) -> bool:
    query = select(Message.id).where(Message.conversation_id == conversation_id, Message.dedupe_key == dedupe_key)
    return session.execute(query).first() is not None


def request_handoff(session: Session, *, conversation: Conversation, reason: str) -> None:
    """Ask for a 120 operator to take over the conversation."""
    conversation.handoff_requested_at = utcnow()
    conversation.handoff_reason = reason
    session.flush()


def end_handoff(session: Session, *, conversation: Conversation) -> None:
    """Give the conversation back to the bot."""
    conversation.handoff_requested_at = None
    conversation.handoff_reason = None
    session.flush()


def transcript(session: Session, conversation_id: int, after_id: int = 0, limit: int = 200) -> list[Message]:
    """Messages of a conversation with id > `after_id`, oldest first, at most `limit`."""
    query = (
        select(Message)
        .where(Message.conversation_id == conversation_id, Message.id > after_id)
        .order_by(Message.id)
        .limit(limit)
    )
    return list(session.execute(query).scalars())


def queue_on_transcript(
    session: Session,
    *,
    conversation: Conversation,
    sender: str,
    kind: str,
    text: str,
    dedupe_key: str,
    transcript_data: dict[str, Any],
    outbox_data: dict[str, Any] | None = None,
) -> Message | None:
    """Queue `text` for the citizen and write it on the transcript now, the outbox row pointing at it (transcript_id).

    The web chat reads its transcript, so this is its delivery; Telegram sends the row, with the buttons it names.
    None when `dedupe_key` was queued before (a retry): it is on the transcript already.
    """
    row = enqueue(
        session,
        conversation_id=conversation.id,
        channel=conversation.channel,
        kind=kind,
        text=text,
        dedupe_key=dedupe_key,
        data={},
    )
    if row is None:
        return None
    message = record_message(
        session, conversation=conversation, direction="out", sender=sender, text=text, data=transcript_data
    )
    assert message is not None
    session.flush()
    row.data = (outbox_data or {}) | {"transcript_id": message.id}
    return message
