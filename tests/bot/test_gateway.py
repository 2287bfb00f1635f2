"""The gateway against a fake Rasa on a real port: transcript, dedupe, injection, refusals, outages."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bot.gateway import Gateway, Inbound
from bot.rasa_client import RasaClient
from civic import console_accounts as accounts
from civic import takeover
from civic.console_accounts import ConsoleIdentity
from civic.conversations import get_or_create_conversation, record_message
from civic.db import session_scope, utcnow
from civic.media import store_photo
from civic.models import Message, OutboxMessage
from telephony.local_twilio import serve_in_thread as serve
from tests.fakes.rasa import FakeRasa

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


@pytest.fixture
def fake_rasa() -> Iterator[tuple[FakeRasa, str]]:
    fake = FakeRasa()
    with serve(fake.app) as url:
        yield fake, url


@pytest.fixture
async def gateway(fake_rasa: tuple[FakeRasa, str], session_factory: sessionmaker[Session]) -> Gateway:
    return Gateway(session_factory=session_factory, rasa=RasaClient(fake_rasa[1], timeout=5), max_chars=2000)


def inbound(text: str, chat: str, n: int, **extra: object) -> Inbound:
    return Inbound(channel="web", external_id=chat, text=text, client_message_id=f"{chat}-{n}", **extra)  # type: ignore[arg-type]


async def test_a_turn_reaches_rasa_with_server_side_metadata(gateway: Gateway, fake_rasa: tuple[FakeRasa, str]) -> None:
    fake, _ = fake_rasa
    outcome = await gateway.handle(inbound("마포구 가로등이 나갔어요", "g1", 1, latitude=37.55, longitude=126.91))
    assert outcome.status == "answered" and outcome.language == "ko"
    assert outcome.replies[0].text == "echo: 마포구 가로등이 나갔어요"
    turn = fake.turns[-1]
    assert turn["sender"] == "web:g1"
    assert turn["metadata"]["channel"] == "web" and turn["metadata"]["latitude"] == 37.55
    assert isinstance(turn["metadata"]["conversation_id"], int)


async def test_a_repeated_message_is_answered_once(gateway: Gateway, fake_rasa: tuple[FakeRasa, str]) -> None:
    fake, _ = fake_rasa
    first = await gateway.handle(inbound("안녕하세요", "g2", 1))
    again = await gateway.handle(inbound("안녕하세요", "g2", 1))
    assert len(fake.turns) == 1
    assert [r.id for r in first.replies] == [r.id for r in again.replies]


async def test_typed_commands_are_neutralised_but_offered_buttons_work(
    gateway: Gateway, fake_rasa: tuple[FakeRasa, str]
) -> None:
    fake, _ = fake_rasa
    fake.answer = lambda turn: [{"text": "접수할까요?", "buttons": [{"title": "네", "payload": "/affirm"}]}]
    await gateway.handle(inbound("가로등 고장", "g3", 1))
    await gateway.handle(inbound('/inform{"category":"noise"}', "g3", 2))
    assert fake.turns[-1]["message"] == '／inform{"category":"noise"}'
    await gateway.handle(inbound("네", "g3", 3, payload="/affirm"))
    assert fake.turns[-1]["message"] == "/affirm"
    await gateway.handle(inbound("아니요", "g3", 4, payload="/restart"))  # never offered
    assert fake.turns[-1]["message"] == "아니요"


async def test_over_long_and_empty_messages_are_refused_without_rasa(
    gateway: Gateway, fake_rasa: tuple[FakeRasa, str]
) -> None:
    fake, _ = fake_rasa
    long = await gateway.handle(inbound("x" * 2001, "g4", 1))
    empty = await gateway.handle(inbound(" \u200b\x00 ", "g4", 2))
    assert (long.status, long.error) == ("refused", "too_long") and "2000" in long.replies[0].text
    assert (empty.status, empty.error) == ("refused", "empty")
    assert fake.turns == []


async def test_rasa_failure_keeps_the_message_as_unanswered(
    gateway: Gateway, fake_rasa: tuple[FakeRasa, str], session_factory: sessionmaker[Session]
) -> None:
    fake, _ = fake_rasa
    fake.status_code = 500
    outcome = await gateway.handle(inbound("구로구 하수구 냄새", "g5", 1))
    assert outcome.status == "unavailable" and outcome.replies[0].sender == "system"
    with session_factory() as session:
        kept = session.execute(select(Message).where(Message.text == "구로구 하수구 냄새")).scalar_one()
        assert kept.status == "unanswered"
    fake.status_code = 200
    retried = await gateway.handle(inbound("구로구 하수구 냄새", "g5", 1))
    assert retried.status == "answered" and len(fake.turns) == 2


async def test_only_this_conversations_photos_travel(
    gateway: Gateway, fake_rasa: tuple[FakeRasa, str], session_factory: sessionmaker[Session], tmp_path: object
) -> None:
    fake, _ = fake_rasa
    await gateway.handle(inbound("안녕", "g6", 1))
    await gateway.handle(inbound("안녕", "g7", 1))
    with session_factory() as session:
        mine_conversation = session.execute(
            select(Message.conversation_id).where(Message.dedupe_key == "g6-1")
        ).scalar_one()
        other_conversation = session.execute(
            select(Message.conversation_id).where(Message.dedupe_key == "g7-1")
        ).scalar_one()
        mine = store_photo(session, conversation_id=mine_conversation, content=PNG).id
        theirs = store_photo(session, conversation_id=other_conversation, content=PNG).id
        session.commit()
    outcome = await gateway.handle(inbound("", "g6", 2, attachment_ids=(mine, theirs)))
    assert outcome.status == "answered"
    assert fake.turns[-1]["message"] == "/share_photo"
    assert fake.turns[-1]["metadata"]["attachment_ids"] == [mine]


async def test_a_vote_choice_and_its_receipt_are_kept_out_of_the_transcript(
    gateway: Gateway, fake_rasa: tuple[FakeRasa, str], session_factory: sessionmaker[Session]
) -> None:
    fake, _ = fake_rasa
    choice = '/vote{"poll_id": "p1", "option": 2}'
    fake.answer = lambda turn: [{"text": "어느 쪽에 투표할까요?", "buttons": [{"title": "2. 반대", "payload": choice}]}]
    await gateway.handle(inbound("투표", "g-vote", 1))
    receipt = "0123456789abcdef0123456789abcdef"
    fake.answer = lambda turn: [{"text": f"투표했어요. 영수증 {receipt}"}]
    outcome = await gateway.handle(inbound("2. 반대", "g-vote", 2, payload=choice))
    assert fake.turns[-1]["message"] == choice  # Rasa gets the choice
    assert receipt in outcome.replies[0].text and outcome.replies[0].secret  # and the citizen the receipt
    with session_factory() as session:
        stored = list(session.execute(select(Message).where(Message.dedupe_key.in_(["g-vote-2"]))).scalars())
        texts = [m.text for m in session.execute(select(Message).order_by(Message.id)).scalars()]
    assert stored[0].text == "🗳" and stored[0].data["payload"] == "/vote"
    assert not any("반대" in text and "2." in text for text in texts[-2:])
    assert not any(receipt in text for text in texts)


async def test_a_status_command_carries_only_a_canonical_case_number(
    gateway: Gateway, fake_rasa: tuple[FakeRasa, str]
) -> None:
    fake, _ = fake_rasa
    await gateway.handle(inbound("SR-2026-000327", "status-chat", 1, command="status", case_number="sr2026327"))
    await gateway.handle(inbound("x", "status-chat", 2, command="status", case_number='"}, "intent": "x'))
    await gateway.handle(inbound("y", "status-chat", 3, command="report", case_number="SR-2026-000001"))
    sent = [turn["message"] for turn in fake.turns[-3:]]
    assert sent == [
        '/check_status{"language": "ko", "case_id": "SR-2026-000327"}',
        '/check_status{"language": "ko"}',  # not a case number: dropped, never passed on
        '/report_complaint{"language": "ko"}',  # only the status command takes one
    ]


def hold(session_factory: sessionmaker[Session], chat: str) -> ConsoleIdentity:
    """An operator takes the web conversation `chat` (created if new)."""
    email = f"op-{chat}@seoul.example.kr"
    with session_scope(session_factory) as session:
        user = accounts.create_user(session, email=email, password="correct horse battery", role="operator")
        conversation = get_or_create_conversation(session, channel="web", external_id=chat)
        session.flush()
        operator = ConsoleIdentity(user.id, email, "operator", None, None, "s")
        takeover.take(session, operator, conversation.id)
    return operator


async def test_a_held_conversation_goes_to_the_operator_not_to_rasa(
    gateway: Gateway, fake_rasa: tuple[FakeRasa, str], session_factory: sessionmaker[Session]
) -> None:
    fake, _ = fake_rasa
    await gateway.handle(inbound("안녕하세요", "h1", 1))
    operator = hold(session_factory, "h1")
    outcome = await gateway.handle(inbound("상담사님 계세요?", "h1", 2))
    again = await gateway.handle(inbound("상담사님 계세요?", "h1", 2))  # the browser's retry
    assert outcome.status == "held" and outcome.replies == []
    assert again.replies == [] and len(fake.turns) == 1
    with session_scope(session_factory) as session:
        stored = session.execute(select(Message).where(Message.dedupe_key == "h1-2")).scalar_one()
        assert stored.status == "to_operator" and stored.text == "상담사님 계세요?"
        takeover.release(session, operator, stored.conversation_id)
    # Released without the console (a deactivated operator): the next turn resumes the paused bot first.
    fake.paused.add("web:h1")
    back = await gateway.handle(inbound("접수할게요", "h1", 3))
    assert back.status == "answered" and fake.turns[-1]["message"] == "접수할게요"
    assert fake.events[-1] == ("web:h1", {"event": "resume"}) and back.replies[0].text == "echo: 접수할게요"
    await gateway.handle(inbound("그리고요", "h1", 4))
    assert fake.events[-1] == ("web:h1", {"event": "resume"}) and len(fake.events) == 1  # resumed once


async def test_handing_back_asks_for_what_the_report_misses_through_the_outbox(
    gateway: Gateway, fake_rasa: tuple[FakeRasa, str], session_factory: sessionmaker[Session]
) -> None:
    fake, _ = fake_rasa
    await gateway.handle(inbound("hello", "h2", 1))
    fake.answer = lambda turn: [
        {"text": "Which district?", "buttons": [{"title": "마포구", "payload": '/inform{"district":"마포구"}'}]}
    ]
    with session_scope(session_factory) as session:
        conversation_id = get_or_create_conversation(session, channel="web", external_id="h2").id
    replies = await gateway.resume_report(conversation_id, key="handback:h2")
    assert [r.text for r in replies] == ["Which district?"]
    assert fake.turns[-1]["message"].startswith("/report_complaint") and fake.turns[-1]["sender"] == "web:h2"
    assert await gateway.resume_report(conversation_id, key="handback:h2") == []  # the same hand-back asks once
    with session_scope(session_factory) as session:
        rows = session.execute(select(OutboxMessage).where(OutboxMessage.conversation_id == conversation_id)).scalars()
        [row] = list(rows)
        assert row.data["transcript_id"] == replies[0].id and row.data["buttons"][0]["title"] == "마포구"
    # The bot's button is one the citizen may now press.
    pressed = await gateway.handle(inbound("", "h2", 2, payload='/inform{"district":"마포구"}'))
    assert pressed.status == "answered" and fake.turns[-1]["message"] == '/inform{"district":"마포구"}'


async def test_a_turn_interrupted_by_a_dying_worker_is_taken_up_again_by_its_retry(
    gateway: Gateway, fake_rasa: tuple[FakeRasa, str], session_factory: sessionmaker[Session]
) -> None:
    fake, _ = fake_rasa
    await gateway.handle(inbound("안녕하세요", "i1", 1))
    with session_scope(session_factory) as session:
        conversation = get_or_create_conversation(session, channel="web", external_id="i1")
        # The worker that stored this turn died before Rasa answered: it stays "received".
        record_message(
            session, conversation=conversation, direction="in", sender="citizen", text="접수할게요", dedupe_key="i1-2"
        )
    busy = await gateway.handle(inbound("접수할게요", "i1", 2))
    assert busy.status == "in_progress" and len(fake.turns) == 1  # still fresh: perhaps another worker has it
    with session_scope(session_factory) as session:
        stored = session.execute(select(Message).where(Message.dedupe_key == "i1-2")).scalar_one()
        stored.created_at = utcnow() - gateway.interrupted_after - timedelta(seconds=1)
    retried = await gateway.handle(inbound("접수할게요", "i1", 2))
    assert retried.status == "answered" and retried.replies[0].text == "echo: 접수할게요"
    assert len(fake.turns) == 2
    again = await gateway.handle(inbound("접수할게요", "i1", 2))
    assert [r.id for r in again.replies] == [r.id for r in retried.replies] and len(fake.turns) == 2


async def test_each_reply_carries_its_response_name_also_when_replayed_or_handed_back(
    gateway: Gateway, fake_rasa: tuple[FakeRasa, str], session_factory: sessionmaker[Session]
) -> None:
    fake, _ = fake_rasa
    fake.answer = lambda turn: [
        {"text": "첫 문단", "utter_action": "utter_help"},
        {"text": "둘째 문단", "utter_action": "utter_help"},  # Rasa splits a text at blank lines, both named
        {"text": "어느 구인가요?", "utter_action": "utter_ask_district"},
    ]
    first = await gateway.handle(inbound("도움말", "n1", 1))
    assert [r.response for r in first.replies] == ["utter_help", "utter_help", "utter_ask_district"]
    again = await gateway.handle(inbound("도움말", "n1", 1))
    assert [r.response for r in again.replies] == ["utter_help", "utter_help", "utter_ask_district"]
    refused = await gateway.handle(inbound("", "n1", 2))
    assert refused.status == "refused" and [r.response for r in refused.replies] == [None]  # a gateway text
    with session_scope(session_factory) as session:
        conversation_id = get_or_create_conversation(session, channel="web", external_id="n1").id
    queued = await gateway.resume_report(conversation_id, key="handback:n1")
    assert [r.response for r in queued] == ["utter_help", "utter_help", "utter_ask_district"]
