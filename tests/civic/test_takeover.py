"""Live takeover as a service: who may hold a conversation, what reaches the citizen, handing back."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from civic import console_accounts as accounts
from civic import takeover
from civic.console_accounts import ConsoleIdentity
from civic.console_cases import ActionRefused, PermissionDenied
from civic.conversations import request_handoff
from civic.models import Conversation, Message, OutboxMessage
from civic.phones import encrypt_phone
from civic.routing import department_for

MakeConversation = Callable[..., Conversation]


def person(session: Session, role: str) -> ConsoleIdentity:
    email = f"{role}-{uuid.uuid4().hex[:8]}@seoul.example.kr"
    department = department_for(session, category="noise", district="마포구").code if role == "official" else None
    user = accounts.create_user(
        session, email=email, password="correct horse battery", role=role, department_code=department
    )
    session.flush()
    return ConsoleIdentity(user.id, email, role, user.department_id, department, "session")


def outbox_of(session: Session, conversation: Conversation) -> list[OutboxMessage]:
    query = select(OutboxMessage).where(OutboxMessage.conversation_id == conversation.id).order_by(OutboxMessage.id)
    return list(session.execute(query).scalars())


def transcript_of(session: Session, conversation: Conversation) -> list[Message]:
    query = select(Message).where(Message.conversation_id == conversation.id).order_by(Message.id)
    return list(session.execute(query).scalars())


def test_taking_holds_the_conversation_leaves_the_queue_and_tells_the_citizen(
    session: Session, make_conversation: MakeConversation
) -> None:
    operator = person(session, "operator")
    conversation = make_conversation(channel="telegram", language="en")
    request_handoff(session, conversation=conversation, reason="asks for a human")
    takeover.take(session, operator, conversation.id)
    assert conversation.held_by_user_id == operator.user_id and conversation.held_since is not None
    assert conversation.handoff_requested_at is None
    [notice] = outbox_of(session, conversation)
    assert notice.channel == "telegram" and notice.text == takeover.TAKEN_TEXT["en"]
    [line] = transcript_of(session, conversation)
    assert line.sender == "system" and notice.data["transcript_id"] == line.id
    # A double click is one takeover, with one notice.
    takeover.take(session, operator, conversation.id)
    assert len(outbox_of(session, conversation)) == 1


def test_a_second_operator_cannot_take_a_held_conversation(
    session: Session, make_conversation: MakeConversation
) -> None:
    first, second = person(session, "operator"), person(session, "operator")
    conversation = make_conversation(channel="web")
    takeover.take(session, first, conversation.id)
    with pytest.raises(takeover.HeldByOther) as refused:
        takeover.take(session, second, conversation.id)
    assert refused.value.email == first.email
    assert conversation.held_by_user_id == first.user_id


def test_officials_may_not_take_conversations(session: Session, make_conversation: MakeConversation) -> None:
    official = person(session, "official")
    conversation = make_conversation(channel="web")
    with pytest.raises(PermissionDenied):
        takeover.take(session, official, conversation.id)
    assert conversation.held_by_user_id is None


def test_the_operators_message_is_on_the_transcript_and_queued_once_per_key(
    session: Session, make_conversation: MakeConversation
) -> None:
    operator = person(session, "operator")
    conversation = make_conversation(channel="telegram")
    takeover.take(session, operator, conversation.id)
    row = takeover.say(session, operator, conversation.id, "  <b>곧 단속반이 갑니다</b>  ", key="k" * 32)
    assert row is not None and row.kind == "operator" and row.text == "<b>곧 단속반이 갑니다</b>"
    again = takeover.say(session, operator, conversation.id, "<b>곧 단속반이 갑니다</b>", key="k" * 32)
    assert again is not None and again.id == row.id
    operator_lines = [m for m in transcript_of(session, conversation) if m.sender == "operator"]
    assert [m.text for m in operator_lines] == ["<b>곧 단속반이 갑니다</b>"]
    assert row.data["transcript_id"] == operator_lines[0].id


@pytest.mark.parametrize(
    ("text", "code"), [("", "text_required"), ("   ", "text_required"), ("가" * 2001, "text_too_long")]
)
def test_empty_or_huge_operator_messages_are_refused(
    session: Session, make_conversation: MakeConversation, text: str, code: str
) -> None:
    operator = person(session, "operator")
    conversation = make_conversation(channel="web")
    takeover.take(session, operator, conversation.id)
    with pytest.raises(ActionRefused) as refused:
        takeover.say(session, operator, conversation.id, text, key="a" * 32)
    assert refused.value.code == code
    assert [m.sender for m in transcript_of(session, conversation)] == ["system"]


def test_only_the_holder_may_write_or_hand_back(session: Session, make_conversation: MakeConversation) -> None:
    holder, other = person(session, "operator"), person(session, "operator")
    conversation = make_conversation(channel="web")
    takeover.take(session, holder, conversation.id)
    with pytest.raises(ActionRefused, match="not_holding"):
        takeover.say(session, other, conversation.id, "hello", key="b" * 32)
    with pytest.raises(ActionRefused, match="not_holding"):
        takeover.release(session, other, conversation.id)
    assert conversation.held_by_user_id == holder.user_id


def test_an_admin_may_free_a_conversation_someone_left_held(
    session: Session, make_conversation: MakeConversation
) -> None:
    holder, admin = person(session, "operator"), person(session, "admin")
    conversation = make_conversation(channel="web", language="ja")
    takeover.take(session, holder, conversation.id)
    takeover.release(session, admin, conversation.id)
    assert conversation.held_by_user_id is None and conversation.held_since is None
    assert outbox_of(session, conversation)[-1].text == takeover.RELEASED_TEXT["ja"]


def test_callers_get_no_written_notices(session: Session, make_conversation: MakeConversation) -> None:
    operator = person(session, "operator")
    conversation = make_conversation(channel="phone")
    takeover.take(session, operator, conversation.id)
    with pytest.raises(ActionRefused, match="channel_not_writable"):
        takeover.say(session, operator, conversation.id, "hello", key="c" * 32)
    takeover.release(session, operator, conversation.id)
    assert outbox_of(session, conversation) == []


def test_the_list_shows_held_and_waiting_conversations(session: Session, make_conversation: MakeConversation) -> None:
    operator = person(session, "operator")
    held, waiting = make_conversation(channel="web"), make_conversation(channel="telegram")
    takeover.take(session, operator, held.id)
    request_handoff(session, conversation=waiting, reason="asks for a human")
    rows = {row.id: row for row in takeover.conversations_for(session, operator)}
    assert rows[held.id].held_by == operator.email
    assert rows[waiting.id].handoff_requested_at is not None and rows[waiting.id].held_by is None
    with pytest.raises(PermissionDenied):
        takeover.conversations_for(session, person(session, "official"))


def test_the_desk_phone_is_read_back_decrypted(session: Session) -> None:
    operator = person(session, "operator")
    assert takeover.desk_phone_of(session, operator) is None
    user = accounts.find_user(session, operator.email)
    assert user is not None
    user.desk_phone_ciphertext = encrypt_phone("+8221200120")
    assert takeover.desk_phone_of(session, operator) == "+8221200120"
