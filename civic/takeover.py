"""Live takeover: an operator holds a conversation, talks to the citizen through the outbox, hands it back."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from civic.console_accounts import ConsoleIdentity, can
from civic.console_cases import ActionRefused, PermissionDenied
from civic.conversations import end_handoff, queue_on_transcript
from civic.db import utcnow
from civic.errors import CaseNotFound
from civic.i18n import language
from civic.models import ConsoleUser, Conversation, Message, OutboxMessage, PhoneCall
from civic.phones import decrypt_phone

MAX_OPERATOR_CHARS = 2000
RECENT_MINUTES = 30
LIST_LIMIT = 100
# Channels an operator can write to; a caller is talked to on the phone itself, once bridged.
WRITABLE_CHANNELS = frozenset({"web", "rest", "telegram"})

TAKEN_TEXT = {
    "ko": "120 상담사가 대화에 참여했습니다. 지금부터 상담사가 직접 답변합니다.",
    "en": "A 120 operator has joined the conversation and will answer you from now on.",
    "ja": "120番の相談員が会話に参加しました。これからは相談員がお答えします。",
}
RELEASED_TEXT = {
    "ko": "상담이 끝났습니다. 이제 다시 챗봇이 도와드립니다.",
    "en": "The operator has finished. The chatbot is helping you again.",
    "ja": "相談員との会話が終わりました。ここからはチャットボットがお手伝いします。",
}


class HeldByOther(ActionRefused):
    """Another operator already holds the conversation."""

    def __init__(self, email: str) -> None:
        super().__init__("held_by_other")
        self.email = email


@dataclass(frozen=True)
class ConversationRow:
    """One conversation in the operators' list."""

    id: int
    channel: str
    language: str
    last_message_at: datetime
    handoff_requested_at: datetime | None
    held_by: str | None  # the holder's email
    phone_status: str | None  # queued, bridged, … for calls


def _conversation(session: Session, conversation_id: int) -> Conversation:
    conversation = session.get(Conversation, conversation_id)
    if conversation is None:
        raise CaseNotFound(str(conversation_id))
    return conversation


def _holder_email(session: Session, conversation: Conversation) -> str | None:
    if conversation.held_by_user_id is None:
        return None
    holder = session.get(ConsoleUser, conversation.held_by_user_id)
    return holder.email if holder is not None else None


def phone_call_of(session: Session, conversation: Conversation) -> PhoneCall | None:
    """The call behind a phone conversation (the conversation's external id is the CallSid)."""
    if conversation.channel != "phone":
        return None
    return session.execute(select(PhoneCall).where(PhoneCall.conversation_id == conversation.id)).scalar_one_or_none()


def _tell(session: Session, conversation: Conversation, kind: str, text: str, sender: str, key: str) -> None:
    """Records `text` on the transcript and queues it for the citizen's channel in the same transaction."""
    if conversation.channel not in WRITABLE_CHANNELS:
        return  # a caller hears the operator; nothing is written to them
    # The same form submitted twice is queued and written once (the dedupe key).
    queue_on_transcript(
        session,
        conversation=conversation,
        sender=sender,
        kind=kind,
        text=text,
        dedupe_key=key,
        transcript_data={"outbox_key": key},
    )


def take(session: Session, user: ConsoleIdentity, conversation_id: int) -> Conversation:
    """`user` holds the conversation: the citizen's messages go to them, not to the bot."""
    if not can(user, "take_conversation"):
        raise PermissionDenied("take_conversation")
    conversation = _conversation(session, conversation_id)
    if conversation.held_by_user_id == user.user_id:
        return conversation  # taking twice (a double click) is one takeover
    if conversation.held_by_user_id is not None:
        raise HeldByOther(_holder_email(session, conversation) or "?")
    conversation.held_by_user_id, conversation.held_since = user.user_id, utcnow()
    conversation.rasa_paused = True  # the console pauses Rasa's tracker after this commits
    if conversation.handoff_requested_at is not None:
        end_handoff(session, conversation=conversation)  # someone has it now: it leaves the queue
    lang = language(conversation.language)
    key = f"take:{conversation.id}:{conversation.held_since}"
    _tell(session, conversation, "operator", TAKEN_TEXT[lang], "system", key)
    session.flush()
    return conversation


def _held_by(session: Session, user: ConsoleIdentity, conversation_id: int) -> Conversation:
    conversation = _conversation(session, conversation_id)
    if conversation.held_by_user_id != user.user_id:
        raise ActionRefused("not_holding")
    return conversation


def say(session: Session, user: ConsoleIdentity, conversation_id: int, text: str, *, key: str) -> OutboxMessage | None:
    """Queues the operator's `text` to the citizen; `key` (the form's one-time key) makes a resend one message."""
    conversation = _held_by(session, user, conversation_id)
    if conversation.channel not in WRITABLE_CHANNELS:
        raise ActionRefused("channel_not_writable")
    text = (text or "").strip()
    if not text:
        raise ActionRefused("text_required")
    if len(text) > MAX_OPERATOR_CHARS:
        raise ActionRefused("text_too_long")
    if not key or len(key) > 64:
        raise ActionRefused("key_required")
    dedupe_key = f"operator:{conversation.id}:{key}"
    _tell(session, conversation, "operator", text, "operator", dedupe_key)
    return session.execute(select(OutboxMessage).where(OutboxMessage.dedupe_key == dedupe_key)).scalar_one()


def release(session: Session, user: ConsoleIdentity | None, conversation_id: int) -> Conversation:
    """Gives the conversation back to the bot; `user` None is the system (a bridged call ended)."""
    conversation = _conversation(session, conversation_id)
    # An admin may free a conversation left held by someone who went home.
    others = user is not None and conversation.held_by_user_id != user.user_id
    if others and (conversation.held_by_user_id is None or user is None or user.role != "admin"):
        raise ActionRefused("not_holding")
    if conversation.held_by_user_id is None:
        return conversation
    held_since = conversation.held_since
    conversation.held_by_user_id, conversation.held_since = None, None
    lang = language(conversation.language)
    _tell(session, conversation, "operator", RELEASED_TEXT[lang], "system", f"release:{conversation.id}:{held_since}")
    session.flush()
    return conversation


def desk_phone_of(session: Session, user: ConsoleIdentity) -> str | None:
    """The operator's desk line in E.164, where a caller taken from the phone queue is bridged."""
    row = session.get(ConsoleUser, user.user_id)
    if row is None or row.desk_phone_ciphertext is None:
        return None
    return decrypt_phone(row.desk_phone_ciphertext)


def release_all_held_by(session: Session, user_id: int) -> int:
    """Gives back every conversation `user_id` holds (their account was deactivated); how many."""
    held = session.execute(select(Conversation.id).where(Conversation.held_by_user_id == user_id)).scalars().all()
    for conversation_id in held:
        release(session, None, conversation_id)
    return len(held)


def holder_of(session: Session, conversation_id: int) -> str | None:
    """The email of the operator holding the conversation, or None when the bot has it."""
    return _holder_email(session, _conversation(session, conversation_id))


def conversations_for(session: Session, user: ConsoleIdentity, *, now: datetime | None = None) -> list[ConversationRow]:
    """What an operator can take: held ones, hand-off requests, and conversations active in the last half hour."""
    if not can(user, "take_conversation"):
        raise PermissionDenied("take_conversation")
    since = (now or utcnow()) - timedelta(minutes=RECENT_MINUTES)
    rows = session.execute(
        select(Conversation, ConsoleUser.email, PhoneCall.status)
        .outerjoin(ConsoleUser, ConsoleUser.id == Conversation.held_by_user_id)
        .outerjoin(PhoneCall, PhoneCall.conversation_id == Conversation.id)
        .where(
            or_(
                Conversation.held_by_user_id.is_not(None),
                Conversation.handoff_requested_at.is_not(None),
                Conversation.last_message_at >= since,
            )
        )
        .order_by(Conversation.last_message_at.desc())
        .limit(LIST_LIMIT)
    ).all()
    return [
        ConversationRow(c.id, c.channel, c.language, c.last_message_at, c.handoff_requested_at, email, status)
        for c, email, status in rows
    ]


def messages_after(session: Session, conversation_id: int, after_id: int, limit: int = 200) -> list[Message]:
    """The transcript after `after_id`, for the operator's live view."""
    _conversation(session, conversation_id)
    return list(
        session.execute(
            select(Message)
            .where(Message.conversation_id == conversation_id, Message.id > after_id)
            .order_by(Message.id)
            .limit(limit)
        ).scalars()
    )
